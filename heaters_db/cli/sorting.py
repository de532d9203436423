"""`heaters-db sort`: the sorting page, served with uvicorn."""

from __future__ import annotations

import ipaddress
import logging

import click

from heaters_db.db import database_url, redact
from heaters_db.errors import ConfigurationError
from heaters_db.settings import get_settings

log = logging.getLogger(__name__)

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: only this machine can reach the page."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def loopback_hosts(host: str) -> list[str]:
    """Host headers the page answers when bound to loopback (refusing others defeats DNS
    rebinding: a web page whose name resolves to 127.0.0.1 cannot drive the sorter)."""
    return sorted({host.strip("[]"), "127.0.0.1", "localhost", "::1", "[::1]"})


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="TCP port the page listens on.",
)
@click.option(
    "--mode",
    type=click.Choice(["trick", "spot"]),
    default="trick",
    show_default=True,
    help="Mode the page opens in (t / p switch it).",
)
@click.option(
    "--undo-seconds",
    default=3.0,
    show_default=True,
    type=click.FloatRange(0, 60),
    help="How long a choice waits in the browser (z undoes it) before it is written.",
)
@click.option(
    "--candidates",
    default=8,
    show_default=True,
    type=click.IntRange(1, 9),
    help="Candidates per screen (keys 1-9).",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    help="Host header the page answers (repeat); required with a non-loopback --host "
    "(DNS-rebinding defence).",
)
def sort(
    host: str,
    port: int,
    mode: str,
    undo_seconds: float,
    candidates: int,
    allowed_hosts: tuple[str, ...],
) -> None:
    """Open the sorting page: for each anchor clip, pick the most similar candidate.

    Keys: 1-9 choose, 0 none similar, s skip, z undo (within --undo-seconds), t/p trick/spot,
    ? help. Each choice is one INSERT into clip_sorting_events. Videos come from
    HEATERS_MEDIA_ROOT (or presigned URLs when HEATERS_S3_BUCKET / s3:// paths are used).
    The page has no login: it binds to loopback unless --host says otherwise.
    """
    try:
        import uvicorn

        from heaters_db.web.app import create_app
    except ImportError as error:
        raise ConfigurationError(
            f"the sorting page needs the web extra ({error.name} is missing): "
            "pip install 'heaters-db[web]'"
        ) from error

    settings = get_settings()
    url = database_url(settings)
    loopback = is_loopback(host)
    if not loopback and not allowed_hosts:
        raise ConfigurationError(
            f"--host {host} is not a loopback address: name the Host headers the page may "
            "answer with --allowed-host (e.g. --allowed-host sorter.example.org), so that a "
            "page whose DNS name is rebound to this address cannot drive the sorter"
        )
    if not loopback and not settings.sort_access_token:
        click.secho(
            f"warning: binding to {host}: anyone who can reach this address can read the clips "
            "and record sorting events. Set HEATERS_SORT_ACCESS_TOKEN, put it behind an "
            "authenticating proxy, or use --host 127.0.0.1 and an SSH tunnel.",
            fg="yellow",
            err=True,
        )
    app = create_app(
        url,
        settings,
        mode=mode,
        undo_seconds=undo_seconds,
        candidates=candidates,
        allowed_hosts=sorted({*loopback_hosts(host), *allowed_hosts})
        if loopback
        else list(allowed_hosts),
        access_token=settings.sort_access_token,
    )
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"sorting page on http://{shown}:{port}/?mode={mode}  (database {redact(url)})")
    log.info("sorting page starting", extra={"action": "sort_serve", "host": host, "port": port})
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower(), access_log=False)


COMMANDS = (sort,)
