"""The kind-agnostic worker: claim -> run -> settle, over an explicit mapping kind -> handler.

Each loop turn runs at most one job of the plain kinds (`heaters_db.queue.Handler`) and one
step of each batch kind (`heaters_db.job_session.BatchKind`, the embed kind), then waits for
work (NOTIFY, the next due job, the poll interval) when none ran. `--once` leaves when a turn
found nothing. Before a plain job runs, batches a batch kind claimed ahead (prefetched) are
handed back, so a training run never keeps them leased.

Connection loss (heaters_db.failures, class CONNECTION) anywhere: close, back off, reconnect to
the same URL, hand back the jobs held; the attempt is given back, unless the job that had the
connection is to blame (`Worker._blame`, heaters_db.worker.connection). SIGTERM/SIGINT:
the step in progress finishes, what was not started is released, exit 0; a second signal
leaves at once (held jobs are still released).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import traceback
from collections.abc import Generator, Iterable, Mapping
from typing import Any

import psycopg

from heaters_db.db import connect as db_connect
from heaters_db.errors import ConfigurationError, DatabaseUnavailable, HeatersError, JobPostponed
from heaters_db.failures import CONNECTION, PERMANENT, classify, first_line, is_connection_lost
from heaters_db.job_session import BatchKind, JobSession, JobTally
from heaters_db.queue import (
    DEFAULT_RETRY_DELAY_SECONDS,
    Handler,
    Job,
    JobLease,
    SkipJob,
    make_worker_id,
)
from heaters_db.settings import Settings
from heaters_db.worker.connection import LOST_AGAIN, WorkerConnection, charge

log = logging.getLogger(__name__)

RECONNECT_MAX_SECONDS = 30.0
STABLE_CONNECTION_SECONDS = 60.0  # a connection that lasted this long counts as progress
ONCE_RETRIES = 3  # --once: reconnect attempts before it exits 1 (it always returns)


class _StopNow(BaseException):
    """Second SIGTERM/SIGINT: leave at once (held jobs are still released)."""


class Worker:
    """One worker process over `handlers` (kind -> Handler or BatchKind). `run()` returns the
    exit code (0 after a clean stop, 1 when `once` gave up reconnecting)."""

    def __init__(
        self,
        settings: Settings,
        database_url: str,
        handlers: Mapping[str, Handler | BatchKind],
        *,
        kinds: Iterable[str] | None = None,
        once: bool = False,
        retry_delay_seconds: float = DEFAULT_RETRY_DELAY_SECONDS,
        worker: str | None = None,
    ) -> None:
        self.settings = settings
        self.database_url = database_url
        self.handlers = dict(handlers)
        self.kinds = list(kinds) if kinds else list(self.handlers)
        unknown = [k for k in self.kinds if k not in self.handlers]
        if unknown:
            raise ConfigurationError(
                f"no handler for job kind(s) {', '.join(unknown)} "
                f"(installed: {', '.join(self.handlers) or 'none'})"
            )
        self.batch_kinds = [k for k in self.kinds if isinstance(self.handlers[k], BatchKind)]
        self.plain_kinds = [k for k in self.kinds if k not in self.batch_kinds]
        self.once = once
        self.worker = worker or make_worker_id()
        self._stop = threading.Event()
        self._signals = 0
        self._db = WorkerConnection(database_url, self.worker, settings, retry_delay_seconds)
        self._lease = JobLease(self._db.connect_autocommit, self.worker, settings.lease_seconds)
        self._session: JobSession | None = None
        self._steps: dict[
            str, Generator[None, None, None]
        ] = {}  # batch kinds with a step generator open
        self._lost_while_running: set[int] = set()  # jobs running at an outage-class loss
        self._charge_on_reconnect: tuple[Job, BaseException] | None = None
        # Jobs this daemon settled, over every connection it had (the log lines of --once and
        # of the stop say them, so a cron user sees failures without querying the jobs).
        self.tally = JobTally()

    def connect(self) -> psycopg.Connection:
        """What plain handlers get: a new transactional connection with pgvector adapters."""
        return db_connect(self.database_url)

    # ---- signals ------------------------------------------------------------------------
    def request_stop(self) -> None:
        self._stop.set()

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: stop after the current step; a second one: stop now."""

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

    # ---- connection ---------------------------------------------------------------------
    def _open(self) -> JobSession:
        queue = self._db.open()
        self._session = JobSession(
            queue, self._lease, self.settings, self._stop.is_set, tally=self.tally
        )
        if self._charge_on_reconnect is not None:
            job, error = self._charge_on_reconnect
            self._charge_on_reconnect = None
            if job.id in self._lease.held():
                self.tally.failed(charge(queue, job, error, LOST_AGAIN))
                self._lease.remove([job.id])
        leftover = self._lease.held()
        if leftover:  # jobs claimed before the connection was lost: hand them back now
            released = self._session.release(leftover)
            log.info(
                "released jobs held before the connection was lost",
                extra={"action": "release", "jobs": released, "worker": self.worker},
            )
        return self._session

    def _close(self) -> None:
        self._session = None
        self._db.close()

    # ---- main loop ----------------------------------------------------------------------
    def run(self) -> int:
        log.info(
            "daemon started",
            extra={
                "action": "start",
                "worker": self.worker,
                "kinds": ",".join(self.kinds),
                "once": self.once,
            },
        )
        self._lease.start()
        backoff, failures, code = 0.5, 0, 0  # failures: in a row without progress, for --once
        # Progress since the last loop error (a job settled, or a connection that lasted) resets
        # the backoff: a reconnect alone does not, or an error that every reconnect meets again
        # (a trigger refusing every claim) would be retried every 0.5 s forever, --once too.
        settled_at_error: int | None = None
        connected_at = time.monotonic()
        try:
            while not self._stop.is_set():
                try:
                    session = self._open()
                    connected_at = time.monotonic()
                    if failures:
                        log.info(
                            "database connection is back",
                            extra={"action": "db_reconnected", "worker": self.worker},
                        )
                    self._loop(session)
                    break
                except (psycopg.Error, DatabaseUnavailable) as error:
                    # A job's own database errors are settled where the job runs; what gets
                    # here met the loop itself (claim, LISTEN, a lost connection).
                    lasted = time.monotonic() - connected_at > STABLE_CONNECTION_SECONDS
                    if settled_at_error != self._settled() or lasted:
                        backoff, failures = 0.5, 0
                    settled_at_error = self._settled()
                    connected_at = float("inf")  # until a connection opens again
                    failures += 1
                    give_up = self.once and failures > ONCE_RETRIES
                    self._after_loop_error(error, backoff, give_up)
                    if give_up:
                        code = 1
                        break
                    if self._stop.wait(backoff):
                        break
                    backoff = min(backoff * 2, RECONNECT_MAX_SECONDS)
        except _StopNow:
            self._close_steps()
        finally:
            self._shutdown()
        return code

    def _settled(self) -> int:
        return self.tally.done + self.tally.retrying + self.tally.dead + self.tally.postponed

    def _after_loop_error(self, error: BaseException, backoff: float, give_up: bool) -> None:
        """Close everything, decide about the job that had the connection, log the retry."""
        suspect = self._session.running_job if self._session else None
        self._close_steps()
        self._close()
        lost = is_connection_lost(error)
        if lost and suspect is not None:
            self._blame(suspect, error)
        log.warning(
            "%s (%s); %s in %.1f s",
            "database connection lost" if lost else "database error in the queue loop",
            first_line(error),
            "giving up (--once)" if give_up else "retrying",
            backoff,
            extra={
                "action": "db_reconnect" if lost else "db_error",
                "worker": self.worker,
                "sqlstate": getattr(error, "sqlstate", None),
            },
        )

    def _blame(self, job: Job, error: BaseException) -> None:
        """A connection was lost while `job`'s code held it: its attempt counts when the
        database answers right after, or when it is the second loss while this job ran (a job
        that crashes its backend); otherwise it is given back on reconnect (an outage)."""
        status = self._db.charge_lost_connection(job, error)
        if status is not None:
            self.tally.failed(status)
            self._lease.remove([job.id])
        elif job.id in self._lost_while_running:
            self._charge_on_reconnect = (job, error)
        else:
            self._lost_while_running.add(job.id)

    def _loop(self, session: JobSession) -> None:
        while not self._stop.is_set():
            worked = self._run_one_plain_job(session)
            if self._step_batch_kinds(session) or worked:
                continue
            if self.once:
                tally = self.tally
                log.info(
                    "queue drained: %d jobs done, %d failed and queued to retry, %d dead%s%s",
                    tally.done,
                    tally.retrying,
                    tally.dead,
                    f", {tally.postponed} postponed" if tally.postponed else "",
                    " (their errors: heaters-db jobs)" if tally.retrying or tally.dead else "",
                    extra={
                        "action": "drained",
                        "worker": self.worker,
                        "done": tally.done,
                        "retrying": tally.retrying,
                        "dead": tally.dead,
                        "postponed": tally.postponed,
                    },
                )
                break
            self._db.wait_for_work(self.kinds, self._stop)

    @property
    def processed(self) -> int:
        return self.tally.done

    @property
    def retrying(self) -> int:
        return self.tally.retrying

    @property
    def dead(self) -> int:
        return self.tally.dead

    def _step_batch_kinds(self, session: JobSession) -> bool:
        """One step of the first batch kind that has work; False when none had any."""
        for kind in self.batch_kinds:
            if self._stop.is_set():
                return False
            steps = self._steps.get(kind)
            if steps is None:
                handler = self.handlers[kind]
                assert isinstance(handler, BatchKind)
                steps = self._steps[kind] = handler.steps(session)
            try:
                next(steps)
                return True
            except StopIteration:
                del self._steps[kind]
        return False

    # ---- plain kinds --------------------------------------------------------------------
    def _run_one_plain_job(self, session: JobSession) -> bool:
        if not self.plain_kinds:
            return False
        jobs = session.claim(self.plain_kinds, 1)
        if not jobs:
            return False
        (job,) = jobs
        # A training run can take minutes: jobs prefetched for a batch kind's next batch must
        # not stay leased (and unprocessed) meanwhile; other workers may take them.
        self._release_prefetched(session, "before running " + job.describe(), keep=job.id)
        handler = self.handlers[job.kind]
        assert not isinstance(handler, BatchKind)
        started = time.perf_counter()
        try:
            with session.running(job):
                result = handler(self.connect, job, self.settings) or {}
        except SkipJob as skip:
            session.finish(job, "skipped", {**(skip.result or {}), "reason": skip.reason})
            return True
        except JobPostponed as busy:
            session.postpone(job, busy.reason, busy.seconds)
            return True
        except Exception as error:
            failure = classify(error)
            if failure == CONNECTION:
                raise  # reconnect; whether the attempt counts is decided in run()
            message = f"{type(error).__name__}: {error}"
            detail = traceback.format_exc()
            status = session.fail(job, message, detail, permanent=failure == PERMANENT)
            log.warning(
                "%s failed%s: %s",
                job.describe(),
                " (permanent: dead at once)" if failure == PERMANENT else "",
                first_line(error),
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
        session.finish(job, "done", result)
        return True

    def _release_prefetched(self, session: JobSession, why: str, keep: int) -> None:
        """Close the batch kinds' open steps and hand back what they claimed ahead."""
        kinds = list(self._steps)
        self._close_steps()
        held = self._lease.held() - {keep}
        if not held:
            return
        released = session.release(held)
        log.info(
            "released %s prefetched %s job(s) %s",
            released,
            "/".join(kinds) or "batch",
            why,
            extra={"action": "release", "jobs": released, "worker": self.worker},
        )

    # ---- stopping -----------------------------------------------------------------------
    def _close_steps(self) -> None:
        """Close the open step generators: a decode in progress is waited for; the jobs they
        claimed stay in the lease set (released by the caller or at shutdown)."""
        steps, self._steps = self._steps, {}
        for generator in steps.values():
            generator.close()

    def _shutdown(self) -> None:
        self._close_steps()
        held = self._lease.held()
        self._lease.stop()
        if held:
            try:
                queue = self._db.queue or self._db.open(listen=False)
                released = queue.release(held)
                log.info(
                    "released %s unfinished jobs",
                    released,
                    extra={"action": "release", "jobs": released, "worker": self.worker},
                )
            except (psycopg.Error, HeatersError) as error:
                log.warning(
                    "could not release jobs (their leases will expire): %s",
                    first_line(error),
                    extra={"action": "release_error", "worker": self.worker},
                )
        self._close()
        for handler in self.handlers.values():
            if isinstance(handler, BatchKind):
                handler.close()
        log.info(
            "daemon stopped",
            extra={
                "action": "stop",
                "worker": self.worker,
                "processed": self.tally.done,
                "retrying": self.tally.retrying,
                "dead": self.tally.dead,
            },
        )
