"""`heaters-db daemon`: drains pipeline_jobs; Postgres is the only coordinator.

`Daemon` is the kind-agnostic `heaters_db.worker.Worker` with the standard mapping of job kind
to handler (`standard_handlers`): embed (`heaters_db.embed_handler.EmbedHandler`, batches),
train_head and reproject (`heaters_db.learning.jobs`). Tests and embedders pass `handlers=`
instead; a kind without a handler is refused.

Loop: claim (FOR UPDATE SKIP LOCKED, leased) -> run -> finish / fail / release; when nothing is
runnable, wait for NOTIFY heaters_db_jobs, at most `poll_seconds` (and no longer than until the
next retry or lease expiry falls due). Any number of daemons on any number of hosts may share
one queue. A background thread renews the leases of every job this process holds; a job whose
daemon died (kill -9, host lost) is requeued by the next claim once its lease expires. Each
kind has a maximum running time (settings `*_max_seconds`) after which its lease is no longer
renewed.

Embed jobs run in batches: while the model runs on one batch, the next is already claimed and
decoding in a thread pool. The embedding and the job's status commit in one transaction that
first checks the lease is still this claim's (`lock_job_lease`): a lost lease rolls the write
back (action=lease_lost); a clip whose clip_filepath changed while its job ran is requeued
(action=embed_requeued). After a variant's first embedding in this process its HNSW index is
ensured.

Outcomes: done (result jsonb: embedding id, dim, model_version, seconds per stage, worker);
skipped (nothing to do, never retried: no trick metadata, variant disabled, no video, SkipJob);
failed, classified by `heaters_db.failures`: a job error (`fail_job`: retried with exponential
backoff, dead after max_attempts, error and traceback kept) or a permanent input error
(`dead_letter_job`: dead at once with the reason); see `heaters-db jobs`.

Robustness: a lost database connection (connection-class SQLSTATEs only) is caught, the daemon
backs off, reconnects to the same URL, LISTENs again and hands back the jobs it held (no
attempt spent) -- unless the database answered right after a connection lost while a job ran:
that job ended its own connection and the attempt counts (heaters_db.worker.connection).
SIGTERM/SIGINT: the batch whose vectors are computed is written, jobs not started are released
(no attempt spent), exit 0; a second signal stops at once (held jobs are still released).
`--once` drains what is runnable now and exits; it always returns (exit 1 after ONCE_RETRIES
failed reconnects). Before a train/reproject job runs, prefetched embed jobs are released.

Logs (key=value, grep-able): action=embed clip_id= variant= seconds=, action=embed_error,
action=embed_skipped, action=job_done / job_error (other kinds), action=job_connection_lost,
action=db_reconnect / db_reconnected / db_error, action=lease_lost, action=lease_requeued,
action=lease_not_renewed, action=release, action=start / stop.

A plain handler (train_head, reproject) is `heaters_db.queue.Handler`:
`handle(connect, job, settings) -> dict` (the job's result); `connect()` opens a NEW
transactional connection the handler owns; `raise SkipJob(reason, result=None)` ends the job as
skipped. Only its final status is fenced (finish_job checks the lease owner); the lease is
renewed while it runs; plain handlers run one at a time on the main thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from heaters_db.embed_handler import EMBED, EmbedHandler
from heaters_db.errors import ConfigurationError
from heaters_db.job_session import BatchKind
from heaters_db.queue import DEFAULT_RETRY_DELAY_SECONDS, Handler
from heaters_db.settings import Settings
from heaters_db.worker import Worker

__all__ = ["EMBED", "Daemon", "standard_handlers"]


def standard_handlers(
    settings: Settings, *, device: str | None = None, batch_size: int | None = None
) -> dict[str, Handler | BatchKind]:
    """embed, train_head and reproject: every kind heaters-db ships."""
    from heaters_db.learning.jobs import handle_reproject, handle_train_head

    return {
        EMBED: EmbedHandler(settings, device=device, batch_size=batch_size),
        "train_head": handle_train_head,
        "reproject": handle_reproject,
    }


class Daemon(Worker):
    """The worker with `standard_handlers` unless `handlers=` says otherwise."""

    def __init__(
        self,
        settings: Settings,
        database_url: str,
        *,
        kinds: Iterable[str] | None = None,
        batch_size: int | None = None,
        device: str | None = None,
        once: bool = False,
        retry_delay_seconds: float = DEFAULT_RETRY_DELAY_SECONDS,
        handlers: Mapping[str, Handler | BatchKind] | None = None,
        worker: str | None = None,
    ) -> None:
        if handlers is None:
            handlers = standard_handlers(settings, device=device, batch_size=batch_size)
        elif batch_size is not None or device is not None:
            raise ConfigurationError(
                "batch_size and device configure the standard embed handler; with handlers= "
                "pass EmbedHandler(settings, batch_size=..., device=...) instead"
            )
        super().__init__(
            settings,
            database_url,
            handlers,
            kinds=kinds,
            once=once,
            retry_delay_seconds=retry_delay_seconds,
            worker=worker,
        )
