"""`heaters-db daemon`: the worker that embeds clips and runs training jobs."""

from __future__ import annotations

import sys

import click

from heaters_db.db import database_url, redact
from heaters_db.queue import DEFAULT_RETRY_DELAY_SECONDS, KINDS
from heaters_db.settings import get_settings


def _parse_kinds(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> list[str] | None:
    if not value:
        return None
    kinds = [k.strip() for k in value.split(",") if k.strip()]
    wrong = [k for k in kinds if k not in KINDS]
    if wrong:
        raise click.BadParameter(
            f"unknown kind(s) {', '.join(wrong)}; choose from {', '.join(KINDS)}"
        )
    return kinds


@click.command()
@click.option(
    "--once",
    is_flag=True,
    help="Drain the jobs runnable now, then exit (cron, batch). Exit 0 once drained even when "
    "jobs failed or died (their inputs' fault, kept with the error: `heaters-db jobs`; the "
    "last log line, action=drained, counts the jobs done, failed and queued to retry, and "
    "dead); 1 when the daemon itself cannot run (database, device).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Clips per model call (default: HEATERS_BATCH_SIZE, 4). Larger batches use more "
    "GPU memory; on out-of-memory a batch is split, not failed.",
)
@click.option(
    "--device",
    default=None,
    help="auto (cuda if available, else cpu), cpu, cuda, cuda:1 (default: HEATERS_DEVICE).",
)
@click.option(
    "--kinds",
    callback=_parse_kinds,
    default=None,
    metavar="embed,train_head,reproject",
    help="Job kinds this daemon takes (default: embed plus every kind with an installed "
    "handler). Run GPU hosts with --kinds embed and one host with the training kinds, say.",
)
@click.option(
    "--retry-delay",
    type=click.FloatRange(min=0),
    default=DEFAULT_RETRY_DELAY_SECONDS,
    show_default=True,
    envvar="HEATERS_RETRY_DELAY_SECONDS",
    help="Base of the exponential backoff after a failed attempt: retry n waits "
    "delay * 2^(n-1) seconds (capped at an hour). Env: HEATERS_RETRY_DELAY_SECONDS.",
)
def daemon(
    once: bool,
    batch_size: int | None,
    device: str | None,
    kinds: list[str] | None,
    retry_delay: float,
) -> None:
    """Run the job worker: embed new clips, train and re-project heads.

    \b
    It LISTENs on heaters_db_jobs (the clips trigger NOTIFYs when a clip gets a video), claims
    jobs with FOR UPDATE SKIP LOCKED and a lease (HEATERS_LEASE_SECONDS, renewed while it
    works), and polls every HEATERS_POLL_SECONDS in case a NOTIFY was missed. Run as many
    daemons on as many hosts as you like against one database; each job runs once.

    \b
    Failures are retried with exponential backoff and dead-lettered after job_max_attempts
    (SQL setting, default 5); `heaters-db jobs` shows errors with tracebacks. A clip without
    trick metadata under video_trick_window ends as skipped, not failed. The daemon
    reconnects by itself when PostgreSQL restarts. A --device the host does not have fails at
    start (exit 1), before any job is claimed.

    \b
    Stop it with SIGTERM (docker stop) or Ctrl-C: it writes the batch whose vectors are
    computed, hands unstarted jobs back to the queue and exits 0. A second signal stops at
    once; jobs it still held are handed back too.

    \b
    Models load once per process: HEATERS_MODEL_DIR/<model_name> when that directory exists,
    else the Hugging Face hub id (HF_HUB_OFFLINE=1 to forbid downloads). Clip files:
    HEATERS_MEDIA_ROOT for heaters' keys, absolute paths, s3:// URLs or HEATERS_S3_BUCKET.
    Logs are key=value lines: grep action=embed, action=embed_error, action=db_reconnect.
    """
    from heaters_db.daemon import Daemon  # torch: imported only when the daemon runs
    from heaters_db.embed_jobs import hide_model_loading_bars
    from heaters_db.embedding.model import resolve_device

    hide_model_loading_bars()

    settings = get_settings()
    # A device this host does not have fails here, before any job is claimed (ModelLoadError:
    # one line, exit 1), not as an attempt of every job it would take.
    resolve_device(device or settings.device)
    url = database_url(settings)
    worker = Daemon(
        settings,
        url,
        kinds=kinds,
        batch_size=batch_size,
        device=device,
        once=once,
        retry_delay_seconds=retry_delay,
    )
    worker.install_signal_handlers()
    missing = [k for k in KINDS if k not in worker.handlers]
    click.echo(
        f"heaters-db daemon {worker.worker}: {redact(url)}, kinds {','.join(worker.kinds)}"
        + (f" (no handler installed for {', '.join(missing)})" if missing else ""),
        err=True,
    )
    sys.exit(worker.run())


COMMANDS = (daemon,)
