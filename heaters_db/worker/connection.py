"""The worker's side of the database: its connections, the wait for work, and who is to blame
when a connection is lost.

- `WorkerConnection.open()`: a new autocommit connection (application_name shows the worker in
  pg_stat_activity), the queue's schema checked, LISTEN heaters_db_jobs. After every lost
  connection the worker opens it again, on the same URL.
- `wait_for_work`: until a NOTIFY, the next due retry or lease expiry, or the poll interval.
- `charge_lost_connection`: a connection lost while a job's code held it is either an outage
  (the database does not answer right after: the attempt is given back, nothing is the job's
  fault) or the job's own doing (the database answers at once: the job ended its own
  connection, `pg_terminate_backend(pg_backend_pid())` or a statement that kills its backend).
  The second counts an attempt, so such a job dead-letters at max_attempts instead of
  reconnecting forever. A job that crashes its backend takes the whole server through crash
  recovery, so the database does not answer right after; the worker remembers the job, and when
  the same job is running at a second loss it counts that attempt once reconnected (`charge`,
  LOST_AGAIN). An outage thus gives each job's attempt back once per worker.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import traceback
from collections.abc import Sequence

import psycopg

from heaters_db.db import connect as db_connect
from heaters_db.db import redact
from heaters_db.errors import ConfigurationError, HeatersError
from heaters_db.failures import first_line
from heaters_db.queue import Job, Queue
from heaters_db.settings import Settings

log = logging.getLogger(__name__)

PROBE_CONNECT_TIMEOUT = 3  # seconds: "answers right after" means within this
LOST_BY_THE_JOB = (
    "connection lost while the job ran, and the database answered right after: the job is "
    "taken to have ended its own connection (attempt counted)"
)
LOST_AGAIN = (
    "connection lost while the job ran, again (the database was away each time): the job is "
    "taken to crash its backend (attempt counted)"
)


class WorkerConnection:
    """One worker's queue connection; `queue` is None while it is closed."""

    def __init__(
        self, database_url: str, worker: str, settings: Settings, retry_delay_seconds: float
    ) -> None:
        self.database_url = database_url
        self.worker = worker
        self.settings = settings
        self.retry_delay_seconds = retry_delay_seconds
        self.queue: Queue | None = None

    def connect_autocommit(self, **kwargs: object) -> psycopg.Connection:
        # application_name shows the worker in pg_stat_activity (63 bytes at most).
        name = f"heaters-db {self.worker}"[:63]
        return db_connect(self.database_url, autocommit=True, application_name=name, **kwargs)

    def open(self, *, listen: bool = True) -> Queue:
        conn = self.connect_autocommit()
        self.queue = Queue(conn, self.worker, self.settings.lease_seconds, self.retry_delay_seconds)
        if listen:
            if not self.queue.schema_ready():
                raise ConfigurationError(
                    f"{redact(self.database_url)} has no heaters-db job queue: "
                    "run `heaters-db migrate`"
                )
            self.queue.listen()
        return self.queue

    def close(self) -> None:
        if self.queue is not None:
            with contextlib.suppress(psycopg.Error):
                self.queue.conn.close()
        self.queue = None

    def wait_for_work(self, kinds: Sequence[str], stop: threading.Event) -> None:
        """Sleep until a NOTIFY, the next due job, or the poll interval, whichever comes first."""
        assert self.queue is not None
        timeout = self.settings.poll_seconds
        due = self.queue.seconds_until_next(kinds)
        if due is not None:
            timeout = min(timeout, max(due, 0.05))
        deadline = time.monotonic() + timeout
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            # Short slices so a signal is noticed promptly.
            for _ in self.queue.conn.notifies(timeout=min(remaining, 0.5), stop_after=1):
                return

    def charge_lost_connection(self, job: Job, error: BaseException) -> str | None:
        """Count an attempt for `job` when the database answers right away (see the module
        docstring); returns the job's status then ('queued' or 'dead'), None for an outage
        (or when the job is no longer this worker's)."""
        try:
            with self.connect_autocommit(connect_timeout=PROBE_CONNECT_TIMEOUT) as probe:
                queue = Queue(
                    probe, self.worker, self.settings.lease_seconds, self.retry_delay_seconds
                )
                return charge(queue, job, error, LOST_BY_THE_JOB)
        except (psycopg.Error, HeatersError):
            return None  # the database is away (or went away again): an outage


def charge(queue: Queue, job: Job, error: BaseException, reason: str) -> str | None:
    """fail_job for a connection lost while `job` ran, `reason` first in its last_error."""
    message = f"{reason}: {type(error).__name__}: {first_line(error)}"
    status = queue.fail(job.id, message, "".join(traceback.format_exception(error)))
    log.warning(
        "%s: %s",
        job.describe(),
        reason,
        extra={
            "action": "job_connection_lost",
            "job_id": job.id,
            "status": status or "lease_lost",
            "worker": queue.worker,
        },
    )
    return status
