"""The job queue, seen from Python: thin calls to the SQL functions that hold its rules.

Layering: db -> queue -> job kinds (embed_handler, learning.jobs) -> worker. Every decision (which job is runnable, FOR UPDATE SKIP LOCKED,
backoff, dead-letter, lease expiry) is made by the functions under sql/functions/; this module
only calls them (named blocks in sql/queries/queue.sql) and turns rows into `Job` objects.

- `Queue(conn, worker, lease_seconds)`: claim / extend / finish / fail / release for one worker.
  The connection must be in autocommit mode: each call is its own transaction, so a claimed
  lease is visible to other workers at once.
- `Handler`, `SkipJob`: what a job kind's handler is and how it says "nothing to do"; the
  worker (heaters_db.worker) takes an explicit mapping of kind -> handler.
- `JobLease`: a background thread that keeps the leases of the jobs a worker holds alive (on its
  own connection) until they are finished, failed or released.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from heaters_db.errors import HeatersError
from heaters_db.queries import query

if TYPE_CHECKING:
    from heaters_db.settings import Settings

log = logging.getLogger(__name__)

QUERIES = "queue.sql"
KINDS = ("embed", "train_head", "reproject")
DEFAULT_RETRY_DELAY_SECONDS = 5.0


def make_worker_id() -> str:
    """host:pid:random — unique per process, readable in `heaters-db jobs` and in logs."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class Job:
    """One claimed row of pipeline_jobs (created by alembic revision 0004)."""

    id: int
    kind: str
    clip_id: int | None = None
    variant_id: int | None = None
    mode: str | None = None
    projection_head_id: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    max_attempts: int = 0
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    started_at: datetime | None = None  # when this claim was made: the lease's fencing token
    last_error: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Job:
        names = cls.__dataclass_fields__
        values = {k: v for k, v in row.items() if k in names}
        values["payload"] = values.get("payload") or {}
        return cls(**values)

    def describe(self) -> str:
        """Short text for logs: `embed#12 clip=3 variant=1`."""
        parts = [f"{self.kind}#{self.id}"]
        for name in ("clip_id", "variant_id", "mode", "projection_head_id"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name.removesuffix('_id')}={value}")
        return " ".join(parts)


ConnectionFactory = Callable[[], psycopg.Connection]
"""Opens a NEW connection (autocommit off, pgvector adapters registered); the caller owns it."""

Handler = Callable[[ConnectionFactory, Job, "Settings"], dict[str, Any] | None]
"""A job kind's handler: `handle(connect, job, settings) -> result dict` (the job's `result`,
status done). `with connect() as conn: ...` commits on success and closes. Raise `SkipJob` for
"nothing to do"; any other exception fails the attempt (see heaters_db.failures for which are
retried, dead at once, or give the attempt back)."""


class SkipJob(HeatersError):
    """The job has nothing to do; it ends as skipped with this reason and is never retried."""

    def __init__(self, reason: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.result = result


def lock_job_lease(
    conn: psycopg.Connection, job_id: int, worker: str, claimed_at: datetime | None
) -> dict[str, Any] | None:
    """Fencing, inside the transaction that writes a job's result: lock the job row while its
    lease is still this claim's (`worker`, `claimed_at`); returns the job's payload, or None when
    the lease was lost (the caller must roll its write back). The one check every fenced write
    uses: the worker's batch commits (heaters_db.job_session) and the learning jobs' writes
    (heaters_db.learning.fence)."""
    row = conn.execute(
        query(QUERIES, "lock_job_lease"),
        {"job_id": job_id, "worker": worker, "claimed_at": claimed_at},
    ).fetchone()
    return None if row is None or row[0] is None else dict(row[0])


class Queue:
    """Queue operations for one worker over one autocommit connection."""

    def __init__(
        self,
        conn: psycopg.Connection,
        worker: str,
        lease_seconds: int,
        retry_delay_seconds: float = DEFAULT_RETRY_DELAY_SECONDS,
    ) -> None:
        self.conn = conn
        self.worker = worker
        self.lease_seconds = int(lease_seconds)
        self.retry_delay_seconds = float(retry_delay_seconds)

    def _rows(self, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query(QUERIES, name), params)
            return cur.fetchall()

    def _value(self, name: str, params: dict[str, Any]) -> Any:
        rows = self._rows(name, params)
        return next(iter(rows[0].values())) if rows else None

    def schema_ready(self) -> bool:
        """The queue's tables and functions exist (`heaters-db migrate` has run)."""
        return bool(self._value("schema_ready", {}))

    def listen(self) -> None:
        """LISTEN heaters_db_jobs on this connection (again after every reconnect)."""
        self.conn.execute(query(QUERIES, "listen"))

    def claim(self, kinds: Iterable[str], max_jobs: int) -> list[Job]:
        requeued = self.requeue_expired()  # claim_jobs does it too; here it is logged
        if requeued:
            log.warning(
                "requeued %s job(s) whose lease expired",
                requeued,
                extra={"action": "lease_requeued", "jobs": requeued, "worker": self.worker},
            )
        rows = self._rows(
            "claim_jobs",
            {
                "worker": self.worker,
                "kinds": list(kinds),
                "max_jobs": int(max_jobs),
                "lease_seconds": self.lease_seconds,
            },
        )
        return [Job.from_row(row) for row in rows]

    def extend(self, job_ids: Iterable[int]) -> set[int]:
        """Push the leases forward; returns the ids still owned (others were taken away)."""
        ids = list(job_ids)
        if not ids:
            return set()
        rows = self._rows(
            "extend_job_leases",
            {"worker": self.worker, "job_ids": ids, "lease_seconds": self.lease_seconds},
        )
        return {row["id"] for row in rows}

    def finish(self, job_id: int, status: str = "done", result: dict | None = None) -> bool:
        """done or skipped; False when the job was no longer ours (lease lost)."""
        return bool(
            self._value(
                "finish_job",
                {
                    "job_id": job_id,
                    "worker": self.worker,
                    "status": status,
                    "result": Jsonb(result) if result is not None else None,
                },
            )
        )

    def lock_lease(self, job: Job) -> dict[str, Any] | None:
        """Fencing, inside the transaction that writes the job's result (lock_job_lease)."""
        return lock_job_lease(self.conn, job.id, self.worker, job.started_at)

    def dead_letter(self, job_id: int, error: str, traceback: str | None = None) -> str | None:
        """A permanent input error: dead at once with the reason; None when not ours."""
        return self._value(
            "dead_letter_job",
            {"job_id": job_id, "worker": self.worker, "error": error, "traceback": traceback},
        )

    def fail(self, job_id: int, error: str, traceback: str | None = None) -> str | None:
        """Record a failed attempt; returns 'queued' (will retry), 'dead', or None (not ours)."""
        return self._value(
            "fail_job",
            {
                "job_id": job_id,
                "worker": self.worker,
                "error": error,
                "traceback": traceback,
                "base_delay_seconds": self.retry_delay_seconds,
            },
        )

    def postpone(self, job_id: int, reason: str, delay_seconds: float) -> str | None:
        """Hand a job back without spending an attempt, runnable after ``delay_seconds``;
        returns 'queued', or None (not ours)."""
        return self._value(
            "postpone_job",
            {
                "job_id": job_id,
                "worker": self.worker,
                "reason": reason,
                "delay_seconds": delay_seconds,
            },
        )

    def release(self, job_ids: Iterable[int]) -> int:
        """Hand unfinished jobs back without spending an attempt (clean shutdown)."""
        ids = list(job_ids)
        if not ids:
            return 0
        return int(self._value("release_jobs", {"worker": self.worker, "job_ids": ids}) or 0)

    def requeue_expired(self) -> int:
        return int(self._value("requeue_expired_jobs", {}) or 0)

    def seconds_until_next(self, kinds: Iterable[str]) -> float | None:
        """Seconds until a queued job or an expiring lease makes work claimable (None: none)."""
        kinds = list(kinds)
        waits = [
            self._value("seconds_until_next_job", {"kinds": kinds}),
            self._value("seconds_until_next_lease_expiry", {"kinds": kinds}),
        ]
        known = [float(w) for w in waits if w is not None]
        return min(known) if known else None


class JobLease:
    """Keeps the leases of held jobs alive from a background thread.

    `connect` opens a fresh autocommit connection; the thread uses its own so a long query or a
    LISTEN wait on the worker's main connection never delays a heartbeat. The heartbeat runs
    every lease/3 seconds; a failed heartbeat (database restarting) reconnects on the next tick.
    Jobs the database no longer leases to this worker are dropped from the set; the worker
    learns it for sure when `finish`/`fail` return that the job was not its own any more.

    Call `remove` after finishing a job, not before: a job must stay leased until its outcome
    is committed.

    Each job is added with a maximum running time (settings `embed_max_seconds`,
    `train_head_max_seconds`, `reproject_max_seconds`): past it the heartbeat stops renewing
    its lease, so a hung decode or training is reclaimed by another worker once the lease runs
    out, and this worker's late result is refused by the fencing check (`Queue.lock_lease`).
    """

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection],
        worker: str,
        lease_seconds: int,
        interval: float | None = None,
    ) -> None:
        self._connect = connect
        self.worker = worker
        self.lease_seconds = int(lease_seconds)
        self.interval = interval if interval is not None else max(0.5, lease_seconds / 3)
        self._held: set[int] = set()
        self._deadlines: dict[int, float] = {}  # job id -> monotonic time to stop renewing
        self._overdue: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection | None = None

    # ---- what is held ------------------------------------------------------------------
    def add(self, job_ids: Iterable[int], max_seconds: float | None = None) -> None:
        ids = list(job_ids)
        with self._lock:
            self._held.update(ids)
            if max_seconds is not None:
                deadline = time.monotonic() + max_seconds
                self._deadlines.update(dict.fromkeys(ids, deadline))

    def remove(self, job_ids: Iterable[int]) -> None:
        ids = set(job_ids)
        with self._lock:
            self._held.difference_update(ids)
            self._overdue.difference_update(ids)
            for job_id in ids:
                self._deadlines.pop(job_id, None)

    def _renewable(self) -> set[int]:
        """Held jobs still within their maximum running time (overdue ones are logged once)."""
        now = time.monotonic()
        with self._lock:
            overdue = {j for j in self._held if self._deadlines.get(j, now + 1) <= now}
            newly = overdue - self._overdue
            self._overdue |= overdue
            renewable = self._held - overdue
        if newly:
            log.warning(
                "job(s) %s ran past their maximum running time: lease no longer renewed",
                sorted(newly),
                extra={"action": "lease_not_renewed", "worker": self.worker},
            )
        return renewable

    def held(self) -> set[int]:
        with self._lock:
            return set(self._held)

    # ---- thread ------------------------------------------------------------------------
    def start(self) -> JobLease:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="heaters-lease", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._close()

    def __enter__(self) -> JobLease:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def beat(self) -> None:
        """One heartbeat, now (the thread calls this every `interval`)."""
        ids = self._renewable()
        if not ids:
            return
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        queue = Queue(self._conn, self.worker, self.lease_seconds)
        kept = queue.extend(ids)
        gone = ids - kept
        if gone:
            # Finished meanwhile by the main thread, or taken back after a stall: stop renewing.
            self.remove(gone)
            log.debug("no longer leased: %s", sorted(gone), extra={"action": "heartbeat"})

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception as error:  # keep beating: the database may come back
                log.warning(
                    "heartbeat failed: %s",
                    str(error).strip().splitlines()[0] if str(error).strip() else error,
                    extra={"action": "heartbeat_error", "worker": self.worker},
                )
                self._close()
