# heaters-db on a CUDA GPU host: `heaters-db daemon` (embedding, head training) and, from the same
# image, the sorting page (`heaters-db sort`) and `heaters-db migrate`.
#
# Base: Debian 12 with Python 3.11, the same system and Python as the machines the tests run on.
# No CUDA base image is needed: torch==2.13.0 from PyPI is the CUDA build on Linux x86_64 and brings
# the CUDA user-space libraries as pip packages (CUDA 13.0, cuDNN 9); the host supplies only the
# NVIDIA driver (>= 580 for CUDA 13), through the NVIDIA Container Toolkit.
#
# Build from the repository root:  docker build -f docker/daemon.Dockerfile -t heaters-db/daemon .
FROM python:3.11-slim-bookworm

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/heaters-db \
    PATH=/opt/heaters-db/bin:$PATH \
    # What the NVIDIA Container Toolkit mounts into the container: CUDA compute and nvidia-smi.
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

RUN python -m venv "$VIRTUAL_ENV"

# torch first, in its own layer (several GB): source changes do not download it again.
# The pin is the project's (pyproject.toml); on Linux x86_64 PyPI's 2.13.0 wheel is the CUDA build.
RUN pip install torch==2.13.0

# The package itself, not editable: the wheel carries sql/, plpython/ and alembic/.
COPY pyproject.toml README.md alembic.ini /tmp/heaters-db-src/
COPY heaters_db /tmp/heaters-db-src/heaters_db
COPY sql /tmp/heaters-db-src/sql
COPY plpython /tmp/heaters-db-src/plpython
COPY alembic /tmp/heaters-db-src/alembic

# Extras: video (transformers, decord, av), s3 (boto3), web (the sorting page).
# torchvision must never be present: it breaks transformers' VJEPA2Model import; nothing here
# should pull it in, and it is removed if something does. The last line proves the image works:
# the model class imports, decord and PyAV load, and torch is a CUDA build.
RUN pip install "/tmp/heaters-db-src[video,s3,web]" \
 && rm -rf /tmp/heaters-db-src \
 && if pip show torchvision >/dev/null 2>&1; then pip uninstall -y torchvision; fi \
 && python -c "import torch, decord, av; from transformers import VJEPA2Model; assert torch.__version__.startswith('2.13.0'), torch.__version__; assert torch.version.cuda, 'torch is a CPU-only build'; print('torch', torch.__version__, 'cuda', torch.version.cuda)" \
 && heaters-db --help >/dev/null

# A non-root user. Its Hugging Face cache (model weights) and heaters-db home (object-store clip
# cache) exist before the volumes are mounted, so new named volumes take the user's ownership.
RUN useradd --create-home --uid 10001 --user-group --shell /usr/sbin/nologin heaters \
 && mkdir -p /home/heaters/.cache/huggingface /home/heaters/.heaters \
 && chown -R heaters:heaters /home/heaters
ENV HF_HOME=/home/heaters/.cache/huggingface \
    HEATERS_HOME=/home/heaters/.heaters \
    HEATERS_MEDIA_ROOT=/srv/heaters/media
VOLUME ["/home/heaters/.cache/huggingface"]

# Numeric, so Kubernetes' runAsNonRoot can check it; 10001 is heaters (created above).
USER 10001:10001
WORKDIR /home/heaters

# The sorting page, when this image runs `heaters-db sort --host 0.0.0.0`.
EXPOSE 8000

# The daemon stops cleanly on SIGTERM (Docker's default stop signal): it releases its job leases.
CMD ["heaters-db", "daemon"]
