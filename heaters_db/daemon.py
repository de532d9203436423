"""`heaters-db daemon`: drains pipeline_jobs; Postgres is the only coordinator.

Loop: claim (FOR UPDATE SKIP LOCKED, leased) -> run -> finish / fail / release; when nothing is
runnable, wait for NOTIFY heaters_db_jobs, at most `poll_seconds` (and no longer than until the
next retry or lease expiry falls due). Any number of daemons on any number of hosts may share
one queue. A background thread renews the leases of every job this process holds; a job whose
daemon died (kill -9, host lost) is requeued by the next claim once its lease expires.

Embed jobs run in batches through `heaters_db.embed_jobs`: while the model runs on one batch,
the next is already claimed and decoding in a thread pool. Results are upserted on
(clip_id, model_name, generation_strategy), so a job that runs twice writes one row. After a
variant's first embedding in this process its HNSW index is ensured (`ensure_variant_index`).

Outcomes: done (result jsonb: embedding id, dim, model_version, seconds per stage, worker);
skipped (nothing to do, never retried: no trick metadata, variant disabled, no video);
failed, classified by `heaters_db.failures`: a job error (`fail_job`: retried with exponential
backoff, dead after max_attempts, error and traceback kept) or a permanent input error
(`dead_letter_job`: dead at once with the reason); see `heaters-db jobs`.

Fencing: the transaction that writes an embedding first locks the job row while the lease is
still this claim's (`lock_job_lease`: same owner, same claim time, not expired); a lost lease
rolls the write back (action=lease_lost). A clip whose clip_filepath changed while its job ran
is requeued instead (action=embed_requeued). Each kind has a maximum running time
(settings `*_max_seconds`) after which the heartbeat stops renewing its lease.

Robustness: a lost database connection (restart, failover; connection-class SQLSTATEs only)
is caught, the daemon backs off, reconnects to the same URL, LISTENs again and hands back the
jobs it held (no attempt spent). Other database errors in the loop itself are retried the same
way. SIGTERM/SIGINT: the batch whose vectors are computed is written, jobs not started are
released (no attempt spent), exit 0; a second signal stops at once (held jobs are still
released). `--once` drains what is runnable now and exits; it always returns (exit 1 after
ONCE_RETRIES failed reconnects). Before a train/reproject job runs, prefetched embed jobs are
released so other workers can take them.

Logs (key=value, grep-able): action=embed clip_id= variant= seconds=, action=embed_error,
action=embed_skipped, action=job_done / job_error (other kinds), action=db_reconnect /
db_reconnected / db_error, action=lease_lost, action=lease_requeued, action=lease_not_renewed,
action=release, action=start / stop.

Job kinds other than embed are plugged in through a registry. A handler is::

    def handle(connect: Callable[[], psycopg.Connection], job: Job, settings: Settings) -> dict

- `connect()` opens a NEW connection (autocommit off, pgvector adapters registered); the handler
  owns it: `with connect() as conn: ...` commits on success and closes.
- `job` is the claimed `heaters_db.queue.Job` (kind, mode, projection_head_id, payload, attempts).
- The returned dict (JSON-serialisable) becomes the job's `result`, status done.
- `raise SkipJob("reason", result=None)`: the job ends as skipped with that reason (and the
  optional result dict), never retried.
- Any other exception (preferably a `HeatersError` subclass whose message says what is wrong)
  fails the attempt: retried with backoff, then dead-lettered with the error and traceback;
  a `PermanentJobError` (or SQLSTATE 55000 / class 22) is dead at once; a lost connection
  (SQLSTATE class 08, 57P01-57P03) gives the attempt back.
- Only the final status is fenced for these kinds (finish_job checks the lease owner); the
  handler's own writes commit on its own connections.
- The lease is renewed while the handler runs; handlers run one at a time in the main thread.

`heaters_db.learning.jobs` (when present) exposes `HANDLERS = {"train_head": ..., "reproject": ...}`
or functions `handle_train_head` / `handle_reproject`; `available_handlers()` picks them up.
Tests or embedders may pass `handlers=` explicitly.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import psycopg

from heaters_db.db import connect as db_connect
from heaters_db.db import redact
from heaters_db.embed_jobs import EmbedPipeline, Outcome, PendingBatch, load_targets_for_jobs
from heaters_db.errors import ConfigurationError, DatabaseUnavailable, HeatersError, LeaseLost
from heaters_db.failures import PERMANENT, classify, is_connection_lost
from heaters_db.queue import DEFAULT_RETRY_DELAY_SECONDS, Job, JobLease, Queue, make_worker_id
from heaters_db.settings import Settings

log = logging.getLogger(__name__)

ConnectionFactory = Callable[[], psycopg.Connection]
Handler = Callable[[ConnectionFactory, Job, Settings], dict[str, Any] | None]

EMBED = "embed"
OTHER_KINDS = ("train_head", "reproject")
HEADS_HANDLERS_MODULE = "heaters_db.learning.jobs"
RECONNECT_MAX_SECONDS = 30.0
ONCE_RETRIES = 3  # --once: reconnect attempts before it exits 1 (it always returns)


class SkipJob(HeatersError):
    """The job has nothing to do; it ends as skipped with this reason and is never retried."""

    def __init__(self, reason: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.result = result


class _PathChanged(Exception):
    """The clip's clip_filepath changed while its embed job ran: requeue, write nothing."""


class _StopNow(BaseException):
    """Second SIGTERM/SIGINT: leave at once (held jobs are still released)."""


def available_handlers() -> dict[str, Handler]:
    """Handlers for the non-embed kinds that are installed (heaters_db.learning.jobs.HANDLERS)."""
    if importlib.util.find_spec(HEADS_HANDLERS_MODULE) is None:
        return {}
    module = importlib.import_module(HEADS_HANDLERS_MODULE)
    handlers = dict(getattr(module, "HANDLERS", {}))
    for kind in OTHER_KINDS:  # or plain functions named handle_<kind>
        function = getattr(module, f"handle_{kind}", None)
        if kind not in handlers and callable(function):
            handlers[kind] = function
    return handlers


@dataclass
class _EmbedBatch:
    jobs: dict[int, Job]
    pending: PendingBatch


class Daemon:
    """One worker process. `run()` returns the exit code (0 after a clean stop)."""

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
        handlers: dict[str, Handler] | None = None,
        worker: str | None = None,
    ) -> None:
        self.settings = settings
        self.database_url = database_url
        self.handlers = available_handlers() if handlers is None else dict(handlers)
        self.kinds = list(kinds) if kinds else [EMBED, *self.handlers]
        unknown = [k for k in self.kinds if k != EMBED and k not in self.handlers]
        if unknown:
            raise ConfigurationError(
                f"no handler for job kind(s) {', '.join(unknown)} "
                f"(installed: {', '.join([EMBED, *self.handlers])})"
            )
        self.batch_size = batch_size or settings.batch_size
        self.once = once
        self.worker = worker or make_worker_id()
        self.retry_delay_seconds = retry_delay_seconds
        self.device = device or settings.device
        self._stop = threading.Event()
        self._signals = 0
        self._conn: psycopg.Connection | None = None
        self._queue: Queue | None = None
        self._lease = JobLease(self._connect_autocommit, self.worker, settings.lease_seconds)
        self._pipeline: EmbedPipeline | None = None
        self._in_flight: list[_EmbedBatch] = []
        self.processed = 0

    # ---- connections --------------------------------------------------------------------
    def _connect_autocommit(self) -> psycopg.Connection:
        # application_name shows the worker in pg_stat_activity (63 bytes at most).
        return db_connect(
            self.database_url, autocommit=True, application_name=f"heaters-db {self.worker}"[:63]
        )

    def connect(self) -> psycopg.Connection:
        """What handlers get: a new transactional connection with pgvector adapters."""
        return db_connect(self.database_url)

    def _open(self) -> None:
        self._conn = self._connect_autocommit()
        self._queue = Queue(
            self._conn, self.worker, self.settings.lease_seconds, self.retry_delay_seconds
        )
        if not self._queue.schema_ready():
            raise ConfigurationError(
                f"{redact(self.database_url)} has no heaters-db job queue: run `heaters-db migrate`"
            )
        self._queue.listen()
        leftover = self._lease.held()
        if leftover:  # jobs claimed before the connection was lost: hand them back now
            released = self._queue.release(leftover)
            self._lease.remove(leftover)
            log.info(
                "released jobs held before the connection was lost",
                extra={"action": "release", "jobs": released, "worker": self.worker},
            )

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        self._conn, self._queue = None, None

    # ---- signals ------------------------------------------------------------------------
    def request_stop(self) -> None:
        self._stop.set()

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: stop after the current batch; a second one: stop now."""

        def handle(signum: int, _frame: Any) -> None:
            self._signals += 1
            log.info(
                "%s received: %s",
                signal.Signals(signum).name,
                "stopping after the current batch" if self._signals == 1 else "stopping now",
                extra={"action": "signal", "worker": self.worker},
            )
            self._stop.set()
            if self._signals > 1:
                raise _StopNow()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    # ---- main loop ----------------------------------------------------------------------
    def run(self) -> int:
        log.info(
            "daemon started",
            extra={
                "action": "start",
                "worker": self.worker,
                "kinds": ",".join(self.kinds),
                "batch_size": self.batch_size,
                "device": self.device,
                "once": self.once,
            },
        )
        if EMBED in self.kinds:
            self._pipeline = EmbedPipeline(self.settings, self.device)
        self._lease.start()
        backoff = 0.5
        failures = 0  # consecutive, for --once: it gives up instead of retrying forever
        code = 0
        try:
            while not self._stop.is_set():
                try:
                    self._open()
                    if failures:
                        log.info(
                            "database connection is back",
                            extra={"action": "db_reconnected", "worker": self.worker},
                        )
                    backoff, failures = 0.5, 0
                    self._loop()
                    break
                except (psycopg.Error, DatabaseUnavailable) as error:
                    # A job's own database errors are settled where the job runs; what gets
                    # here met the loop itself (claim, LISTEN, a lost connection).
                    self._abandon_in_flight()
                    self._close()
                    failures += 1
                    lost = is_connection_lost(error)
                    log.warning(
                        "%s (%s); %s in %.1f s",
                        "database connection lost" if lost else "database error in the queue loop",
                        _first_line(error),
                        "giving up (--once)"
                        if self.once and failures > ONCE_RETRIES
                        else "retrying",
                        backoff,
                        extra={
                            "action": "db_reconnect" if lost else "db_error",
                            "worker": self.worker,
                            "sqlstate": getattr(error, "sqlstate", None),
                        },
                    )
                    if self.once and failures > ONCE_RETRIES:
                        code = 1
                        break
                    if self._stop.wait(backoff):
                        break
                    backoff = min(backoff * 2, RECONNECT_MAX_SECONDS)
        except _StopNow:
            self._abandon_in_flight()
        finally:
            self._shutdown()
        return code

    def _loop(self) -> None:
        while not self._stop.is_set():
            worked = self._run_one_other_job()
            if EMBED in self.kinds:
                current = self._in_flight.pop(0) if self._in_flight else self._claim_embed()
                if current is not None:
                    self._in_flight.insert(0, current)
                    current.pending.wait()
                    if not self._stop.is_set():
                        following = self._claim_embed()  # decodes while the model runs below
                        if following is not None:
                            self._in_flight.append(following)
                    if self._stop.is_set():
                        break  # not run yet: released by _shutdown
                    self._complete(current)
                    self._in_flight.remove(current)
                    continue
            if worked:
                continue
            if self.once:
                log.info("queue drained", extra={"action": "drained", "worker": self.worker})
                break
            self._wait_for_work()

    def _wait_for_work(self) -> None:
        """Sleep until a NOTIFY, the next due job, or the poll interval, whichever comes first."""
        assert self._conn is not None and self._queue is not None
        timeout = self.settings.poll_seconds
        due = self._queue.seconds_until_next(self.kinds)
        if due is not None:
            timeout = min(timeout, max(due, 0.05))
        deadline = time.monotonic() + timeout
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            # Short slices so a signal is noticed promptly.
            for _ in self._conn.notifies(timeout=min(remaining, 0.5), stop_after=1):
                return

    # ---- embed jobs ---------------------------------------------------------------------
    def _claim_embed(self) -> _EmbedBatch | None:
        assert self._queue is not None and self._conn is not None and self._pipeline is not None
        jobs = self._queue.claim([EMBED], self.batch_size)
        if not jobs:
            return None
        self._lease.add((job.id for job in jobs), self.settings.max_running_seconds(EMBED))
        targets = load_targets_for_jobs(self._conn, [job.id for job in jobs])
        for job in jobs:
            if job.id not in targets:  # clip or variant deleted since the job was queued
                self._settle_simple(job, "skipped", {"reason": "clip or variant no longer exists"})
        pending = self._pipeline.submit(
            self._conn, [targets[j.id] for j in jobs if j.id in targets]
        )
        return _EmbedBatch({job.id: job for job in jobs if job.id in targets}, pending)

    def _complete(self, batch: _EmbedBatch) -> None:
        assert self._pipeline is not None
        for outcome in self._pipeline.run(batch.pending):
            job = batch.jobs[outcome.target.job_id]  # type: ignore[index]
            self._settle_embed(job, outcome)

    def _settle_embed(self, job: Job, outcome: Outcome) -> None:
        assert self._queue is not None and self._conn is not None and self._pipeline is not None
        target = outcome.target
        context = {
            "job_id": job.id,
            "clip_id": target.clip_id,
            "variant": target.variant,
            "attempt": job.attempts,
        }
        if outcome.status == "ok":
            started = time.perf_counter()
            try:
                with self._conn.transaction():
                    # Fencing: the job row is locked while the lease is still this claim's,
                    # so the embedding and the job's status commit together or not at all.
                    payload = self._queue.lock_lease(job)
                    if payload is None:
                        raise LeaseLost(f"{job.describe()}: lease lost before the write")
                    if payload.get("requeue"):
                        raise _PathChanged()
                    self._pipeline.store(self._conn, outcome)
                    outcome.seconds["database"] = time.perf_counter() - started
                    self._queue.finish(job.id, "done", outcome.result_json(self.worker))
            except LeaseLost:
                self._lease.remove([job.id])
                _warn_lease_lost(job, self.worker)
                return
            except _PathChanged:
                self._queue.release([job.id])
                self._lease.remove([job.id])
                log.info(
                    "clip_filepath changed while the job ran: requeued, result not written",
                    extra=context | {"action": "embed_requeued"},
                )
                return
            except psycopg.DatabaseError as error:
                if is_connection_lost(error):
                    raise
                outcome.status, outcome.error_type = "error", type(error).__name__
                outcome.message = f"writing the embedding failed: {_first_line(error)}"
                outcome.traceback = traceback.format_exc()
                outcome.permanent = classify(error) == PERMANENT
            else:
                self._pipeline.ensure_index(self._conn, target)
                self._lease.remove([job.id])
                self.processed += 1
                seconds = outcome.seconds
                log.info(
                    "embedded clip %s",
                    target.clip_id,
                    extra=context
                    | {
                        "action": "embed",
                        "seconds": round(sum(seconds.values()), 3),
                        **{k: round(v, 3) for k, v in seconds.items()},
                    },
                )
                return
        if self._clip_moved(job):  # the failure or skip was about the old file
            self._queue.release([job.id])
            self._lease.remove([job.id])
            log.info(
                "clip_filepath changed while the job ran: requeued",
                extra=context | {"action": "embed_requeued"},
            )
            return
        if outcome.status == "skipped":
            self._settle_simple(job, "skipped", outcome.result_json(self.worker))
            return
        # The embedder reports clip errors as results, without a Python traceback; keep at
        # least where it happened so a dead-lettered job explains itself.
        detail = outcome.traceback or (
            f"{outcome.error}\n  job {job.id} attempt {job.attempts}/{job.max_attempts}, clip "
            f"{target.clip_id} ({target.clip_filepath!r}), variant {target.variant}, "
            f"worker {self.worker}"
        )
        if outcome.permanent:
            status = self._queue.dead_letter(job.id, outcome.error, detail)
        else:
            status = self._queue.fail(job.id, outcome.error, detail)
        self._lease.remove([job.id])
        log.warning(
            "embed failed%s: %s",
            " (permanent: dead at once)" if outcome.permanent else "",
            outcome.error,
            extra=context | {"action": "embed_error", "status": status or "lease_lost"},
        )

    def _clip_moved(self, job: Job) -> bool:
        """The job is still ours and its clip got another clip_filepath while it ran."""
        assert self._queue is not None and self._conn is not None
        with self._conn.transaction():
            payload = self._queue.lock_lease(job)
        return bool(payload and payload.get("requeue"))

    def _settle_simple(self, job: Job, status: str, result: dict[str, Any]) -> None:
        """finish_job with done/skipped, and its log line."""
        assert self._queue is not None
        self._lease.remove([job.id])
        finished = self._queue.finish(job.id, status, result)
        action = f"{job.kind}_skipped" if status == "skipped" else "job_done"
        log.info(
            "%s %s%s",
            job.describe(),
            status,
            f": {result.get('reason')}" if status == "skipped" else "",
            extra={"action": action, "job_id": job.id, "clip_id": job.clip_id},
        )
        if not finished:
            _warn_lease_lost(job, self.worker)

    # ---- other kinds --------------------------------------------------------------------
    def _run_one_other_job(self) -> bool:
        kinds = [k for k in self.kinds if k != EMBED]
        if not kinds:
            return False
        assert self._queue is not None
        jobs = self._queue.claim(kinds, 1)
        if not jobs:
            return False
        (job,) = jobs
        self._lease.add([job.id], self.settings.max_running_seconds(job.kind))
        # A training run can take minutes: embed jobs prefetched for the next batch must not
        # stay leased (and unprocessed) meanwhile; other workers may take them.
        self._release_in_flight("before running " + job.describe())
        started = time.perf_counter()
        try:
            result = self.handlers[job.kind](self.connect, job, self.settings) or {}
        except SkipJob as skip:
            self._settle_simple(job, "skipped", {**(skip.result or {}), "reason": skip.reason})
            return True
        except Exception as error:
            failure = classify(error)
            if failure == "connection":
                raise  # reconnect; the job is handed back without spending an attempt
            message = f"{type(error).__name__}: {error}"
            if failure == PERMANENT:
                status = self._queue.dead_letter(job.id, message, traceback.format_exc())
            else:
                status = self._queue.fail(job.id, message, traceback.format_exc())
            self._lease.remove([job.id])
            log.warning(
                "%s failed%s: %s",
                job.describe(),
                " (permanent: dead at once)" if failure == PERMANENT else "",
                _first_line(error),
                extra={
                    "action": "job_error",
                    "job_id": job.id,
                    "status": status or "lease_lost",
                    "sqlstate": getattr(error, "sqlstate", None),
                },
            )
            return True
        result.setdefault("seconds", round(time.perf_counter() - started, 3))
        result.setdefault("worker", self.worker)
        self._settle_simple(job, "done", result)
        self.processed += 1
        return True

    def _release_in_flight(self, why: str) -> None:
        """Hand back prefetched embed batches (no attempt spent)."""
        if not self._in_flight:
            return
        assert self._queue is not None
        ids = [job_id for batch in self._in_flight for job_id in batch.jobs]
        self._abandon_in_flight()
        released = self._queue.release(ids)
        self._lease.remove(ids)
        log.info(
            "released %s prefetched embed job(s) %s",
            released,
            why,
            extra={"action": "release", "jobs": released, "worker": self.worker},
        )

    # ---- stopping -----------------------------------------------------------------------
    def _abandon_in_flight(self) -> None:
        """Forget batches in progress (their jobs stay in the lease set, released later)."""
        for batch in self._in_flight:
            batch.pending.wait()
        self._in_flight.clear()

    def _shutdown(self) -> None:
        self._abandon_in_flight()
        held = self._lease.held()
        self._lease.stop()
        if held:
            try:
                if self._queue is None:
                    self._open_for_release()
                assert self._queue is not None
                released = self._queue.release(held)
                log.info(
                    "released %s unfinished jobs",
                    released,
                    extra={"action": "release", "jobs": released, "worker": self.worker},
                )
            except (psycopg.Error, HeatersError) as error:
                log.warning(
                    "could not release jobs (their leases will expire): %s",
                    _first_line(error),
                    extra={"action": "release_error", "worker": self.worker},
                )
        self._close()
        if self._pipeline is not None:
            self._pipeline.close()
        log.info(
            "daemon stopped",
            extra={"action": "stop", "worker": self.worker, "processed": self.processed},
        )

    def _open_for_release(self) -> None:
        self._conn = self._connect_autocommit()
        self._queue = Queue(self._conn, self.worker, self.settings.lease_seconds)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _warn_lease_lost(job: Job, worker: str) -> None:
    log.warning(
        "%s was no longer leased to this worker (lease expired); another worker may redo it",
        job.describe(),
        extra={"action": "lease_lost", "job_id": job.id, "worker": worker},
    )
