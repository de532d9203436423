"""The embedded local PostgreSQL cluster behind `heaters-db db up|down|status|url`.

It lives under ``$HEATERS_HOME`` (default ``./.heaters``): a data directory, a log,
``cluster.json`` with the port, and ``password`` (mode 0600): the superuser's password, generated
by ``db up`` and written once initdb has used it. It listens on 127.0.0.1 only (no unix socket, so no path-length or /var/run
permission problems) and asks every connection for a scram-sha-256 password, so other users of
the machine cannot connect: it is for one developer's machine, never for production.

PostgreSQL refuses to run as root. When invoked as root, the server runs as the unprivileged
``postgres`` user (``runuser``); if that user cannot reach ``$HEATERS_HOME`` (a checkout under
/root, say), the data directory goes to /var/lib/heaters-db/clusters/<hash> instead, and
cluster.json says where.

``up``, ``down`` and ``destroy`` hold an exclusive lock on ``$HEATERS_HOME/.lock``: two
`db up` at once (two terminals, a test run and a demo) would otherwise both run initdb, and the
password file would end up holding the password of the initdb that lost.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from heaters_db.errors import LocalDatabaseError

log = logging.getLogger(__name__)

SUPERUSER = "heaters"
DATABASE = "heaters"
SERVICE_USER = "postgres"
ROOT_FALLBACK_DIR = Path("/var/lib/heaters-db/clusters")

# Settings for a throwaway test cluster: durability traded for speed.
FAST_UNSAFE_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def find_postgres_bindir() -> Path:
    """The newest installed PostgreSQL server's bin directory (or $HEATERS_PG_BINDIR)."""
    override = os.environ.get("HEATERS_PG_BINDIR")
    if override:
        return Path(override)
    candidates = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1]
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise LocalDatabaseError(
        "No PostgreSQL server found (initdb). Run `make setup` (docker/install-system-deps.sh) "
        "or set HEATERS_PG_BINDIR to the server's bin directory."
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Whether PostgreSQL could listen on the port now. SO_REUSEADDR as PostgreSQL sets it: a
    port whose last connections sit in TIME_WAIT (right after `db down` with clients connected)
    is free for the server, so the cluster keeps its port and every printed URL keeps working."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class LocalCluster:
    home: Path
    fast_unsafe: bool = False

    def __post_init__(self) -> None:
        self.home = Path(self.home).resolve()
        self.state_file = self.home / "cluster.json"
        self.bindir = find_postgres_bindir()
        self.as_root = os.geteuid() == 0

    # ---- state -------------------------------------------------------------------------
    def _state(self) -> dict:
        if self.state_file.exists():
            return json.loads(self.state_file.read_text())
        return {}

    def _save_state(self, **values) -> None:
        state = self._state() | values
        self.home.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(state, indent=2) + "\n")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One `db up`/`down`/`destroy` at a time per HEATERS_HOME; an unusable home (not
        writable, under /proc, a file) is a clear LocalDatabaseError."""
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            lock = open(self.home / ".lock", "a")  # noqa: SIM115 - held for the whole block
        except OSError as error:
            raise LocalDatabaseError(
                f"HEATERS_HOME {self.home} cannot hold the local cluster ({error.strerror or error})"
                ": set HEATERS_HOME to a directory you can write"
            ) from error
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            except OSError as error:  # a full disk, a home that turned read-only
                raise LocalDatabaseError(
                    f"the local cluster under {self.home} failed: {error}"
                ) from error

    @property
    def data_dir(self) -> Path:
        saved = self._state().get("data_dir")
        return Path(saved) if saved else self.home / "pgdata"

    @property
    def port(self) -> int | None:
        return self._state().get("port")

    @property
    def log_file(self) -> Path:
        return self.data_dir / "postgres.log"

    @property
    def password_file(self) -> Path:
        return self.home / "password"

    def url(self, database: str = DATABASE) -> str:
        if self.port is None:
            raise LocalDatabaseError(f"No local cluster under {self.home}: run `heaters-db db up`.")
        # A cluster made before passwords (trust authentication) has no password file.
        password = self.password_file.read_text().strip() if self.password_file.exists() else None
        user = f"{SUPERUSER}:{password}" if password else SUPERUSER
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    # ---- commands ----------------------------------------------------------------------
    def _run(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(a) for a in args]
        if self.as_root:
            cmd = ["runuser", "-u", SERVICE_USER, "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if check and result.returncode != 0:
            raise LocalDatabaseError(
                f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stderr.strip() or result.stdout.strip()}"
            )
        return result

    def _prepare_data_dir(self) -> Path:
        """Choose and create a data directory the server's user can own."""
        self.home.mkdir(parents=True, exist_ok=True)
        if not self.as_root:
            data_dir = self.home / "pgdata"
            data_dir.mkdir(mode=0o700, exist_ok=True)
            return data_dir
        service = pwd.getpwnam(SERVICE_USER)
        data_dir = self.home / "pgdata"
        data_dir.mkdir(mode=0o700, exist_ok=True)
        os.chown(data_dir, service.pw_uid, service.pw_gid)
        if self._run("test", "-w", data_dir, check=False).returncode == 0:
            return data_dir
        data_dir.rmdir()
        digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:12]
        data_dir = ROOT_FALLBACK_DIR / digest
        log.info(
            "user %s cannot reach %s; keeping the cluster in %s",
            SERVICE_USER,
            self.home,
            data_dir,
            extra={"action": "db_up"},
        )
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        ROOT_FALLBACK_DIR.chmod(0o755)
        ROOT_FALLBACK_DIR.parent.chmod(0o755)
        os.chown(data_dir, service.pw_uid, service.pw_gid)
        return data_dir

    def is_initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> None:
        data_dir = self._prepare_data_dir()
        self._save_state(data_dir=str(data_dir))
        log.info("initdb %s", data_dir, extra={"action": "db_init"})
        password = secrets.token_hex(24)  # hex: safe in a URL as is
        # initdb reads the password from a file its user can read; the copy goes away at once.
        with tempfile.NamedTemporaryFile("w", prefix="heaters-db-pw-") as pwfile:
            pwfile.write(password + "\n")
            pwfile.flush()
            if self.as_root:
                service = pwd.getpwnam(SERVICE_USER)
                os.chown(pwfile.name, service.pw_uid, service.pw_gid)
            self._run(
                self.bindir / "initdb",
                "-D",
                data_dir,
                "-U",
                SUPERUSER,
                "--auth=scram-sha-256",
                f"--pwfile={pwfile.name}",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            )
        # Only now: a failed initdb leaves no password that opens nothing.
        self.password_file.touch(mode=0o600, exist_ok=True)
        self.password_file.chmod(0o600)
        self.password_file.write_text(password + "\n")
        settings = {"listen_addresses": "'127.0.0.1'", "unix_socket_directories": "''"}
        if self.fast_unsafe:
            settings |= FAST_UNSAFE_SETTINGS
        # Appending as the invoking user is fine: root may write there, and a normal user owns it.
        with open(data_dir / "postgresql.conf", "a") as conf:
            conf.write("\n# heaters-db embedded cluster\n")
            conf.writelines(f"{k} = {v}\n" for k, v in settings.items())

    def is_running(self) -> bool:
        if not self.is_initialized():
            return False
        status = self._run(self.bindir / "pg_ctl", "status", "-D", self.data_dir, check=False)
        return status.returncode == 0 and self._stale_pid() is None

    def _stale_pid(self) -> int | None:
        """The PID in postmaster.pid when it is not a PostgreSQL process: the server died
        without removing the file (a crash, a power cut, a killed container) and the PID was
        reused. pg_ctl only asks whether the PID is alive, so it reports such a cluster as
        running, and the server refuses to start while the file is there."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
            command = Path(f"/proc/{pid}/comm").read_text().strip()
        except FileNotFoundError:
            return None  # no pid file, or no such process (pg_ctl and the server see that)
        except (OSError, ValueError):
            return None  # unreadable: leave the judgement to pg_ctl and the server
        return None if command.startswith(("postgres", "postmaster")) else pid

    def up(self) -> str:
        """Create (first time) and start the cluster; return its URL. Does nothing if running."""
        with self._locked():
            return self._up()

    def _up(self) -> str:
        if not self.is_initialized():
            self.init()
        stale = self._stale_pid()
        if stale is not None:
            log.warning(
                "removing a stale postmaster.pid: PID %s is no PostgreSQL server (it died "
                "without cleaning up and the PID was reused)",
                stale,
                extra={"action": "db_up", "pid": stale},
            )
            self._run("rm", "-f", self.data_dir / "postmaster.pid")
        if not self.is_running():
            port = self.port
            if port is None:
                port = free_port()
                self._save_state(port=port)  # stored with the cluster: kept across down/up
            elif not port_is_free(port):
                raise LocalDatabaseError(
                    f"port {port} of the local cluster in {self.home} is taken by another "
                    "program; stop it (the cluster keeps its port so URLs stay valid)"
                )
            log.info("starting PostgreSQL on 127.0.0.1:%s", port, extra={"action": "db_up"})
            result = self._run(
                self.bindir / "pg_ctl",
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                self.data_dir,
                "-l",
                self.log_file,
                "-o",
                f"-p {port}",
                check=False,
            )
            if result.returncode != 0:
                tail = self._log_tail()
                raise LocalDatabaseError(
                    f"PostgreSQL did not start:\n{result.stderr.strip()}\n{tail}"
                )
            self._ensure_database()
        return self.url()

    def _log_tail(self, lines: int = 20) -> str:
        result = self._run("tail", "-n", str(lines), self.log_file, check=False)
        return result.stdout

    def _ensure_database(self) -> None:
        try:
            with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
                if exists.fetchone() is None:
                    conn.execute(f"CREATE DATABASE {DATABASE}")  # a constant, not user input
        except psycopg.Error as error:
            raise LocalDatabaseError(
                f"the local cluster under {self.home} started but refused heaters-db "
                f"({str(error).strip().splitlines()[0]}); if {self.password_file} was edited or "
                f"replaced, `heaters-db db down` and deleting {self.home} make a new, empty cluster"
            ) from error

    def down(self) -> bool:
        """Stop the cluster (fast shutdown). Returns False if it was not running."""
        with self._locked():
            return self._down()

    def _down(self) -> bool:
        if not self.is_running():
            return False
        self._run(self.bindir / "pg_ctl", "stop", "-w", "-m", "fast", "-D", self.data_dir)
        return True

    def restart(self) -> None:
        """Restart in place on the same port (used by tests of reconnecting clients)."""
        self._run(
            self.bindir / "pg_ctl",
            "restart",
            "-w",
            "-m",
            "fast",
            "-D",
            self.data_dir,
            "-l",
            self.log_file,
            "-o",
            f"-p {self.port}",
        )

    def status(self) -> dict:
        return {
            "home": str(self.home),
            "data_dir": str(self.data_dir),
            "initialized": self.is_initialized(),
            "running": self.is_running(),
            "port": self.port,
            "url": self.url() if self.port else None,
        }

    def destroy(self) -> None:
        """Stop and delete the cluster's files."""
        if not self.home.exists():
            return
        with self._locked():
            self._destroy()

    def _destroy(self) -> None:
        self._down()
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        if self.state_file.exists():
            self.state_file.unlink()
        if self.password_file.exists():
            self.password_file.unlink()
