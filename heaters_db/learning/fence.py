"""Fencing for the learning jobs: a train_head or reproject job writes only while it holds its lease.

A daemon paused past its lease (SIGSTOP, a long GC, a frozen VM) must not write after another
worker took the job over. Every transaction that commits part of a job's result (storing a head,
the projected rows, the window projections, the activation, a follow-up job) first calls
``Fence.hold(conn)``: ``lock_job_lease`` (sql/functions/lock_job_lease.sql) locks the job row
while the lease is still this claim's (same owner, same claim time, not expired). Held until
that transaction ends, the lock keeps the lease from being requeued between the check and the
commit; a lost lease raises ``LeaseLost`` and the caller's transaction rolls back. The daemon
then records the attempt as not its own (``fail_job`` returns NULL, log status=lease_lost).

Outside the daemon (``heaters-db train --now``, tests) there is no job: ``Fence.of(None)`` is
``None`` and ``hold(conn, None)`` does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from heaters_db.errors import LeaseLost
from heaters_db.queue import lock_job_lease


@dataclass(frozen=True)
class Fence:
    """The claim a learning job runs under (pipeline_jobs id, lease owner, claim time)."""

    job_id: int
    worker: str
    claimed_at: datetime
    label: str

    @classmethod
    def of(cls, job: Any) -> Fence | None:
        """The fence of a claimed ``heaters_db.queue.Job``; None without a claim to check."""
        owner = getattr(job, "lease_owner", None)
        claimed_at = getattr(job, "started_at", None)
        if job is None or owner is None or claimed_at is None:
            return None
        describe = getattr(job, "describe", None)
        return cls(job.id, owner, claimed_at, describe() if callable(describe) else str(job.id))

    def hold(self, conn: psycopg.Connection) -> None:
        """Inside the writing transaction: lock the job row, or raise LeaseLost."""
        if conn.autocommit and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            raise RuntimeError("Fence.hold must run inside the transaction that writes")
        if lock_job_lease(conn, self.job_id, self.worker, self.claimed_at) is None:
            raise LeaseLost(f"{self.label}: lease lost, the write was rolled back")


def hold(conn: psycopg.Connection, fence: Fence | None) -> None:
    """``fence.hold(conn)`` when there is a fence."""
    if fence is not None:
        fence.hold(conn)
