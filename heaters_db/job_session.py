"""How a job kind settles its jobs: the worker's queue connection and leases, one job at a time.

Layering: db -> queue -> job_session -> job kinds (heaters_db.embed_handler) -> worker. A kind
whose jobs run in batches (`BatchKind`, the embed kind) claims and settles through a
`JobSession`; plain handlers (`heaters_db.queue.Handler`) never see one, the worker settles
them.

- `claim`: jobs of some kinds, leased to this worker and kept alive by its `JobLease` (each
  with its kind's maximum running time).
- `commit`: the fenced write of a job's result. The job row is locked while the lease is still
  this claim's (`lock_job_lease`) and the write and the job's status commit in ONE transaction,
  or neither does (lease lost: rolled back; the job's input changed meanwhile, payload.requeue:
  rolled back and requeued).
- `finish` / `fail` / `requeue`: the other ends of a job, each removing it from the lease set
  after the database recorded it.
- `running_job`: the job whose code had the connection when a connection-class error left
  it (the worker decides from it whether the job is to blame, heaters_db.worker.connection).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import psycopg

from heaters_db.errors import HeatersError, LeaseLost
from heaters_db.failures import is_connection_lost
from heaters_db.queue import Job, JobLease, Queue
from heaters_db.settings import Settings

log = logging.getLogger(__name__)

Committed = Literal["done", "lease_lost", "requeued"]


class _Requeue(HeatersError):
    """The job's input changed while it ran (payload.requeue): write nothing, run it again."""


@runtime_checkable
class BatchKind(Protocol):
    """A job kind whose jobs run in batches (the embed kind, heaters_db.embed_handler).

    `steps(session)` is a generator: each step claims what it needs through the session, runs
    one batch and settles every job of it, then yields; it ends when nothing is claimable. The
    worker closes it between steps to run another kind's job or to stop; jobs it had claimed
    and not settled stay in the lease set and the worker hands them back.
    """

    def steps(self, session: JobSession) -> Generator[None, None, None]: ...

    def close(self) -> None: ...


@dataclass
class JobTally:
    """Jobs settled: done, failed and queued to retry, dead. A worker keeps one over all its
    connections and hands it to each session (its drained and stop log lines report it)."""

    done: int = 0
    retrying: int = 0
    dead: int = 0
    postponed: int = 0

    def failed(self, status: str | None) -> None:
        """Count a failed attempt by the job's status after it ('dead', 'queued'; None: the
        job was no longer ours, nothing to count)."""
        if status == "dead":
            self.dead += 1
        elif status is not None:
            self.retrying += 1


@dataclass
class JobSession:
    """One worker's queue operations over its current connection (a new one per reconnect)."""

    queue: Queue
    lease: JobLease
    settings: Settings
    stopping: Callable[[], bool]
    running_job: Job | None = None  # see `running`
    tally: JobTally = field(default_factory=JobTally)  # the worker's, shared by its sessions

    @property
    def conn(self) -> psycopg.Connection:
        """The worker's autocommit connection (reads and fenced writes of batch kinds)."""
        return self.queue.conn

    @property
    def worker(self) -> str:
        return self.queue.worker

    # ---- claim ----------------------------------------------------------------------------
    def claim(self, kinds: str | Sequence[str], max_jobs: int) -> list[Job]:
        """Up to `max_jobs` runnable jobs of `kinds`, leased; none once the worker is stopping."""
        if self.stopping():
            return []
        jobs = self.queue.claim([kinds] if isinstance(kinds, str) else list(kinds), max_jobs)
        for job in jobs:
            self.lease.add([job.id], self.settings.max_running_seconds(job.kind))
        return jobs

    @contextmanager
    def running(self, job: Job) -> Iterator[None]:
        """While the body runs, `job` is the one to blame for a connection it ends itself."""
        self.running_job = job
        try:
            yield
        except BaseException as error:
            if not is_connection_lost(error):
                self.running_job = None
            raise
        self.running_job = None

    # ---- settle ---------------------------------------------------------------------------
    def commit(self, job: Job, write: Callable[[psycopg.Connection], dict[str, Any]]) -> Committed:
        """Run `write` (it returns the job's result) and mark the job done, fenced, in one
        transaction. Database errors other than a lost lease propagate (nothing committed)."""
        try:
            with self.running(job), self.conn.transaction():
                payload = self.queue.lock_lease(job)
                if payload is None:
                    raise LeaseLost(f"{job.describe()}: lease lost, the write was rolled back")
                if payload.get("requeue"):
                    raise _Requeue()
                self.queue.finish(job.id, "done", write(self.conn))
        except LeaseLost:
            self.lease.remove([job.id])
            warn_lease_lost(job, self.worker)
            return "lease_lost"
        except _Requeue:
            self.requeue(job, "its input changed while it ran: requeued, result not written")
            return "requeued"
        self.lease.remove([job.id])
        self.tally.done += 1
        return "done"

    def requeue_requested(self, job: Job) -> bool:
        """The job is still ours and its input changed while it ran (payload.requeue: the
        clips trigger sets it when clip_filepath changes)."""
        with self.conn.transaction():
            payload = self.queue.lock_lease(job)
        return bool(payload and payload.get("requeue"))

    def requeue(self, job: Job, why: str) -> None:
        """Back to the queue without spending an attempt."""
        self.queue.release([job.id])
        self.lease.remove([job.id])
        log.info(
            "%s: %s",
            job.describe(),
            why,
            extra={"action": f"{job.kind}_requeued", "job_id": job.id, "clip_id": job.clip_id},
        )

    def finish(self, job: Job, status: str, result: dict[str, Any]) -> None:
        """done or skipped (finish_job checks the lease owner), and its log line."""
        self.lease.remove([job.id])
        finished = self.queue.finish(job.id, status, result)
        action = f"{job.kind}_skipped" if status == "skipped" else "job_done"
        log.info(
            "%s %s%s",
            job.describe(),
            status,
            f": {result.get('reason')}" if status == "skipped" else "",
            extra={"action": action, "job_id": job.id, "clip_id": job.clip_id},
        )
        if not finished:
            warn_lease_lost(job, self.worker)
        elif status == "done":
            self.tally.done += 1

    def fail(self, job: Job, error: str, detail: str | None, *, permanent: bool) -> str | None:
        """A failed attempt: dead at once when permanent, else retried with backoff (dead
        after max_attempts). Returns the job's status, None when it was no longer ours."""
        if permanent:
            status = self.queue.dead_letter(job.id, error, detail)
        else:
            status = self.queue.fail(job.id, error, detail)
        self.lease.remove([job.id])
        self.tally.failed(status)
        return status

    def postpone(self, job: Job, reason: str, seconds: float) -> str | None:
        """Hand a job back that could not start (no attempt spent), runnable after ``seconds``;
        returns 'queued', None when it was no longer ours."""
        status = self.queue.postpone(job.id, reason, seconds)
        self.lease.remove([job.id])
        if status is None:
            warn_lease_lost(job, self.worker)
        else:
            self.tally.postponed += 1
            log.info(
                "%s postponed for %.0f s: %s",
                job.describe(),
                seconds,
                reason,
                extra={"action": "job_postponed", "job_id": job.id, "seconds": seconds},
            )
        return status

    def release(self, job_ids: Iterable[int]) -> int:
        """Hand jobs back unstarted (no attempt spent)."""
        ids = list(job_ids)
        released = self.queue.release(ids)
        self.lease.remove(ids)
        return released


def warn_lease_lost(job: Job, worker: str) -> None:
    log.warning(
        "%s was no longer leased to this worker (lease expired); another worker may redo it",
        job.describe(),
        extra={"action": "lease_lost", "job_id": job.id, "worker": worker},
    )
