"""Load a frozen V-JEPA 2 encoder once per process and turn video batches into clip vectors.

A clip vector is the mean of the encoder's `last_hidden_state` tokens, with the predictor
skipped. `load_encoder` resolves the model name (a `HEATERS_MODEL_DIR/<name>` directory when
it exists, else the hub id or local path itself), picks the device and dtype, and caches the
result per (path, device, dtype).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from heaters_db import devices
from heaters_db.embedding.preprocess import PROCESSOR_FILES, VideoPreprocessing
from heaters_db.errors import HeatersError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "facebook/vjepa2-vitl-fpc64-256"

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


class ModelLoadError(HeatersError):
    """The V-JEPA 2 encoder could not be loaded (missing files, wrong model type, no weights)."""


def resolve_model_path(name_or_path: str, model_dir: str | Path | None = None) -> str:
    """`<model_dir>/<name>` when that directory exists, else `name_or_path` unchanged."""
    if model_dir:
        candidate = Path(model_dir) / name_or_path
        if candidate.is_dir():
            return str(candidate)
    return name_or_path


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """heaters_db.devices.resolve_device, its refusal raised as the model's load error."""
    try:
        return devices.resolve_device(device)
    except devices.UnknownDevice as error:
        raise ModelLoadError(str(error)) from None


def resolve_dtype(device: torch.device, dtype: str | torch.dtype | None = None) -> torch.dtype:
    """bfloat16 on CUDA (float16 where bf16 is unsupported), float32 on CPU, unless given."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is not None:
        try:
            return _DTYPES[str(dtype).lower()]
        except KeyError:
            raise ModelLoadError(f"unknown dtype {dtype!r}; use one of {sorted(_DTYPES)}") from None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _hub_commit(name_or_path: str) -> str | None:
    """The commit of a hub model's cached snapshot (.../snapshots/<commit>/config.json)."""
    if Path(name_or_path).exists():
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    cached = try_to_load_from_cache(name_or_path, "config.json")
    if not isinstance(cached, str):
        return None
    match = re.search(r"snapshots/([0-9a-f]{40})/", cached.replace(os.sep, "/"))
    return match.group(1) if match else None


def model_version(config: Any, name_or_path: str) -> str:
    """The hub commit when known (older transformers: config._commit_hash; else the cache
    snapshot), otherwise the first 12 hex digits of sha256 over the canonical config json."""
    commit = getattr(config, "_commit_hash", None) or _hub_commit(name_or_path)
    if commit:
        return str(commit)
    settings = {
        key: value
        for key, value in config.to_dict().items()
        if not key.startswith("_") and key not in ("transformers_version", "dtype", "torch_dtype")
    }
    canonical = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _is_oom(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError)


def run_in_halves(
    function: Callable[[torch.Tensor], np.ndarray], batch: torch.Tensor
) -> np.ndarray:
    """`function(batch)`, splitting the batch in halves recursively on out-of-memory.

    A batch of one that still runs out of memory re-raises. The CUDA cache is emptied before
    each retry so the halves start from a clean allocator.
    """
    try:
        return function(batch)
    except torch.OutOfMemoryError:
        if batch.shape[0] <= 1:
            raise
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    middle = batch.shape[0] // 2
    log.warning(
        "out of memory; splitting batch",
        extra={"action": "embed_split", "batch_size": int(batch.shape[0])},
    )
    return np.concatenate(
        [run_in_halves(function, batch[:middle]), run_in_halves(function, batch[middle:])]
    )


@dataclass
class Encoder:
    """A loaded V-JEPA 2 encoder, ready for `embed`."""

    model: Any
    name: str
    path: str
    dim: int
    model_version: str
    device_used: str
    dtype: torch.dtype
    crop_size: int
    tubelet_size: int
    frames_per_clip: int
    preprocessing: VideoPreprocessing
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _forward(self, batch: torch.Tensor) -> np.ndarray:
        pixels = batch.to(device=self.device_used, dtype=self.dtype, non_blocking=True)
        with torch.inference_mode():
            hidden = self.model(pixel_values_videos=pixels, skip_predictor=True).last_hidden_state
            # Mean over tokens in float32: bf16 sums over thousands of tokens lose digits.
            pooled = hidden.float().mean(dim=1)
        vectors: np.ndarray = pooled.cpu().numpy().astype(np.float32, copy=False)
        return vectors

    def embed(self, batch: torch.Tensor) -> np.ndarray:
        """float (B, T, 3, crop, crop) -> float32 numpy (B, dim).

        T must be a multiple of the tubelet size (2). On CUDA out-of-memory the batch is split
        in halves recursively rather than failing.
        """
        if batch.ndim != 5 or batch.shape[2] != 3:
            raise ValueError(f"expected (B, T, 3, H, W), got {tuple(batch.shape)}")
        if batch.shape[1] % self.tubelet_size:
            raise ValueError(
                f"frame count {batch.shape[1]} is not a multiple of the tubelet size {self.tubelet_size}"
            )
        if tuple(batch.shape[-2:]) != (self.crop_size, self.crop_size):
            raise ValueError(
                f"frames are {tuple(batch.shape[-2:])}, the model expects {self.crop_size}x{self.crop_size}"
            )
        # One model call at a time: prefetch threads may share the encoder.
        with self.lock:
            return run_in_halves(self._forward, batch)


_CACHE: dict[tuple[str, str, str], Encoder] = {}
_CACHE_LOCK = threading.Lock()


def _load_preprocessing(path: str, config: Any) -> VideoPreprocessing:
    """The checkpoint's processor settings, else the processor defaults for its crop size."""
    if Path(path).is_dir():
        return VideoPreprocessing.from_pretrained(path)
    try:
        from transformers.utils import cached_file

        for name in PROCESSOR_FILES:
            local = cached_file(
                path,
                name,
                _raise_exceptions_for_missing_entries=False,
                _raise_exceptions_for_connection_errors=False,
            )
            if local:
                return VideoPreprocessing.from_dict(
                    json.loads(Path(local).read_text()), crop_size=config.crop_size
                )
    except (OSError, ValueError) as error:
        log.warning(
            "no processor config; using defaults",
            extra={"action": "load_encoder", "model": path, "error": str(error)},
        )
    return VideoPreprocessing.from_pretrained(config)


def load_encoder(
    name_or_path: str = DEFAULT_MODEL,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype | None = None,
    *,
    model_dir: str | Path | None = None,
) -> Encoder:
    """Load (or reuse) the V-JEPA 2 encoder `name_or_path`.

    model_dir: where local copies live (`<model_dir>/<name>`); default HEATERS_MODEL_DIR.
    Loads with sdpa attention, in eval mode. Hub downloads follow the usual HF settings
    (HF_HOME, HF_HUB_OFFLINE=1 to stay offline). Raises ModelLoadError.
    """
    if model_dir is None:
        from heaters_db.settings import get_settings

        model_dir = get_settings().model_dir
    path = resolve_model_path(name_or_path, model_dir)
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(torch_device, dtype)
    key = (path, str(torch_device), str(torch_dtype))
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        encoder = _load(name_or_path, path, torch_device, torch_dtype)
        _CACHE[key] = encoder
        return encoder


def _load(name: str, path: str, device: torch.device, dtype: torch.dtype) -> Encoder:
    try:
        from transformers import AutoConfig, VJEPA2Model
    except ImportError as error:
        raise ModelLoadError(
            "transformers (with VJEPA2Model) is not installed: install heaters-db[video]"
        ) from error
    if Path(path).is_absolute() and not Path(path).exists():
        raise ModelLoadError(f"{name}: no model directory at {path}")
    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as error:
        where = path if Path(path).exists() else f"{path} (not a local directory; tried the hub)"
        raise ModelLoadError(
            f"{name}: cannot read the model config from {where}: {error}"
        ) from error
    if getattr(config, "model_type", None) != "vjepa2":
        raise ModelLoadError(
            f"{name}: model type {getattr(config, 'model_type', None)!r} is not vjepa2"
        )
    try:
        model = VJEPA2Model.from_pretrained(path, dtype=dtype, attn_implementation="sdpa")
    except (OSError, ValueError, RuntimeError) as error:
        raise ModelLoadError(f"{name}: cannot load weights from {path} ({error})") from error
    # transformers types .to() for dtypes only (its decorator); a device is what it gets here.
    model = model.to(device).eval().requires_grad_(False)  # type: ignore[arg-type]
    preprocessing = _load_preprocessing(path, config)
    if preprocessing.crop_size != config.crop_size:
        raise ModelLoadError(
            f"{name}: processor crop {preprocessing.crop_size} differs from the model's "
            f"crop_size {config.crop_size}"
        )
    encoder = Encoder(
        model=model,
        name=name,
        path=path,
        dim=int(config.hidden_size),
        model_version=model_version(config, path),
        device_used=str(device),
        dtype=dtype,
        crop_size=int(config.crop_size),
        tubelet_size=int(config.tubelet_size),
        frames_per_clip=int(config.frames_per_clip),
        preprocessing=preprocessing,
    )
    log.info(
        "encoder loaded",
        extra={
            "action": "load_encoder",
            "model": name,
            "path": path,
            "device": encoder.device_used,
            "dtype": str(dtype),
            "dim": encoder.dim,
            "model_version": encoder.model_version,
        },
    )
    return encoder


def clear_encoder_cache() -> None:
    """Forget loaded encoders (tests; freeing GPU memory in a long-lived process)."""
    with _CACHE_LOCK:
        _CACHE.clear()
