"""The queue layer (heaters_db.queue over sql/functions/*jobs*.sql) against real PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import psycopg
import pytest
from psycopg.rows import dict_row

from heaters_db.db import connect
from heaters_db.queue import Job, JobLease, Queue
from tests.integration.conftest import insert_clips, wait_until

QueueFor = Callable[..., Queue]


@pytest.fixture
def queue_for(db_url: str) -> Iterator[Callable[..., Queue]]:
    """queue_for(worker, lease_seconds=60, **kwargs) -> a Queue on its own connection."""
    opened: list[psycopg.Connection] = []

    def make(worker: str, lease_seconds: int = 60, **kwargs) -> Queue:
        opened.append(connect(db_url, autocommit=True))
        return Queue(opened[-1], worker, lease_seconds, **kwargs)

    yield make
    for connection in opened:
        connection.close()


def job(conn: psycopg.Connection, job_id: int) -> dict:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT * FROM pipeline_jobs WHERE id = %s", (job_id,)).fetchone()


def embed_job_ids(conn: psycopg.Connection) -> list[int]:
    return [r[0] for r in conn.execute("SELECT id FROM pipeline_jobs ORDER BY id").fetchall()]


def test_duplicate_enqueue_is_a_no_op(conn: psycopg.Connection, queue_for: QueueFor) -> None:
    clip_ids = insert_clips(conn, ["clips/a.mp4", "clips/b.mp4", "clips/c.mp4"])
    assert len(embed_job_ids(conn)) == 3  # the trigger: one per clip and enabled variant

    added = conn.execute("SELECT enqueue_embed_jobs(%s)", (clip_ids,)).fetchone()[0]
    assert added == 0
    assert len(embed_job_ids(conn)) == 3

    # Once a job is done it is no longer pending: a new enqueue adds one again, unless
    # only_missing sees the embedding.
    worker = queue_for("w")
    (claimed,) = worker.claim(["embed"], 1)
    assert worker.finish(claimed.id, "done", {"ok": True})
    conn.execute(
        "INSERT INTO embeddings (clip_id, embedding, model_name, generation_strategy) "
        "SELECT %s, '[1,2,3]', model_name, generation_strategy FROM embedding_variants "
        "WHERE is_default",
        (claimed.clip_id,),
    )
    only_missing = "SELECT enqueue_embed_jobs(%s, only_missing => true)"
    assert conn.execute(only_missing, ([claimed.clip_id],)).fetchone()[0] == 0
    assert conn.execute("SELECT enqueue_embed_jobs(%s)", ([claimed.clip_id],)).fetchone()[0] == 1


def test_skip_locked_claims_never_share_a_job(
    db_url: str, conn: psycopg.Connection, queue_for: QueueFor
) -> None:
    insert_clips(conn, [f"clips/{i}.mp4" for i in range(10)])

    # A claims inside an open transaction: its rows stay locked until it commits. B must
    # neither wait for them nor get them.
    with connect(db_url) as holder:
        held = holder.execute("SELECT id FROM claim_jobs('a', ARRAY['embed'], 3, 60)").fetchall()
        other = queue_for("b")
        other.conn.execute("SET statement_timeout = '5s'")
        taken = other.claim(["embed"], 10)
        holder.commit()
    held_ids = {row[0] for row in held}
    assert len(held_ids) == 3
    assert {j.id for j in taken} == set(embed_job_ids(conn)) - held_ids
    assert all(j.lease_owner == "b" and j.attempts == 1 for j in taken)


def test_concurrent_claimers_each_get_distinct_jobs(
    db_url: str, conn: psycopg.Connection, queue_for: QueueFor
) -> None:
    insert_clips(conn, [f"clips/{i}.mp4" for i in range(40)])
    claimed: dict[str, list[int]] = {"a": [], "b": []}

    def drain(worker: str) -> None:
        queue = queue_for(worker)
        while batch := queue.claim(["embed"], 3):
            claimed[worker] += [j.id for j in batch]

    threads = [threading.Thread(target=drain, args=(w,)) for w in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not set(claimed["a"]) & set(claimed["b"])
    assert sorted(claimed["a"] + claimed["b"]) == embed_job_ids(conn)


def test_failures_back_off_exponentially_then_dead_letter(
    db_url: str, conn: psycopg.Connection, queue_for: QueueFor
) -> None:
    insert_clips(conn, ["clips/bad.mp4"])
    conn.execute("UPDATE pipeline_jobs SET max_attempts = 3")
    worker = queue_for("w", retry_delay_seconds=10)

    for attempt, expected_delay in ((1, 10), (2, 20)):
        (claimed,) = worker.claim(["embed"], 1)
        assert claimed.attempts == attempt
        assert worker.fail(claimed.id, f"boom {attempt}", "Traceback ...") == "queued"
        row = job(conn, claimed.id)
        now = conn.execute("SELECT now()").fetchone()[0]
        assert row["status"] == "queued" and row["lease_owner"] is None
        assert abs((row["run_after"] - now) - timedelta(seconds=expected_delay)) < timedelta(
            seconds=2
        )
        assert worker.claim(["embed"], 1) == []  # not runnable before run_after
        conn.execute("UPDATE pipeline_jobs SET run_after = now()")  # skip the wait

    (claimed,) = worker.claim(["embed"], 1)
    assert worker.fail(claimed.id, "boom 3", "Traceback (most recent call last): ...") == "dead"
    row = job(conn, claimed.id)
    assert row["status"] == "dead" and row["attempts"] == 3
    assert row["last_error"] == "boom 3"
    assert row["last_traceback"].startswith("Traceback")
    assert row["finished_at"] is not None
    assert worker.claim(["embed"], 1) == []
    errors = conn.execute("SELECT job_id, status FROM pipeline_job_errors").fetchall()
    assert errors == [(claimed.id, "dead")]


def test_expired_lease_goes_to_another_worker(
    db_url: str, conn: psycopg.Connection, queue_for: QueueFor
) -> None:
    insert_clips(conn, ["clips/a.mp4"])
    first, second = queue_for("first"), queue_for("second")
    (claimed,) = first.claim(["embed"], 1)
    assert second.claim(["embed"], 1) == []  # leased

    conn.execute("UPDATE pipeline_jobs SET lease_expires_at = now() - interval '1 second'")
    (again,) = second.claim(["embed"], 1)
    assert again.id == claimed.id and again.attempts == 2 and again.lease_owner == "second"
    # The first worker woke up late: its outcome no longer counts.
    assert first.finish(claimed.id, "done", {}) is False
    assert first.fail(claimed.id, "late", None) is None
    assert first.extend([claimed.id]) == set()
    assert second.finish(claimed.id, "done", {"by": "second"}) is True
    assert job(conn, claimed.id)["status"] == "done"


def test_release_hands_back_without_spending_an_attempt(
    db_url: str, conn: psycopg.Connection, queue_for: QueueFor
) -> None:
    insert_clips(conn, ["clips/a.mp4", "clips/b.mp4"])
    listener = connect(db_url, autocommit=True)
    listener.execute("LISTEN heaters_db_jobs")
    worker = queue_for("w")
    claimed = worker.claim(["embed"], 2)
    assert worker.release([j.id for j in claimed]) == 2
    rows = [job(conn, j.id) for j in claimed]
    assert all(
        r["status"] == "queued" and r["attempts"] == 0 and r["lease_owner"] is None for r in rows
    )
    payloads = [n.payload for n in listener.notifies(timeout=2, stop_after=1)]
    assert any('"released"' in p for p in payloads)
    listener.close()


def test_skip_keeps_the_reason(db_url: str, conn: psycopg.Connection, queue_for: QueueFor) -> None:
    insert_clips(conn, ["clips/a.mp4"])
    worker = queue_for("w")
    (claimed,) = worker.claim(["embed"], 1)
    assert worker.finish(claimed.id, "skipped", {"reason": "no trick metadata"})
    row = job(conn, claimed.id)
    assert (row["status"], row["last_error"]) == ("skipped", "no trick metadata")
    assert row["result"] == {"reason": "no trick metadata"}


def test_heartbeat_keeps_leases_alive(
    db_url: str, conn: psycopg.Connection, queue_for: QueueFor
) -> None:
    insert_clips(conn, ["clips/a.mp4", "clips/b.mp4"])
    worker = queue_for("w", lease_seconds=30)
    claimed = worker.claim(["embed"], 2)
    ids = [j.id for j in claimed]
    conn.execute("UPDATE pipeline_jobs SET lease_expires_at = now() + interval '1 second'")

    lease = JobLease(lambda: connect(db_url, autocommit=True), "w", lease_seconds=30, interval=0.1)
    lease.add(ids)
    with lease:
        wait_until(
            lambda: conn.execute(
                "SELECT bool_and(lease_expires_at > now() + interval '20 seconds') "
                "FROM pipeline_jobs WHERE id = ANY (%s)",
                (ids,),
            ).fetchone()[0],
            timeout=10,
            what="heartbeat to extend the leases",
        )
        # A job finished (not ours any more) drops out of the held set on the next beat.
        worker.finish(ids[0], "done", {})
        wait_until(lambda: lease.held() == {ids[1]}, timeout=10, what="finished job to drop out")
    assert job(conn, ids[1])["status"] == "running"


def test_job_from_row_ignores_extra_columns() -> None:
    row = {"id": 1, "kind": "embed", "clip_id": 2, "variant_id": 3, "payload": None, "status": "x"}
    parsed = Job.from_row(row)
    assert (parsed.id, parsed.payload, parsed.describe()) == (1, {}, "embed#1 clip=2 variant=3")


def test_seconds_until_next_sees_backoff(
    db_url: str, conn: psycopg.Connection, queue_for: QueueFor
) -> None:
    worker = queue_for("w")
    assert worker.seconds_until_next(["embed"]) is None
    insert_clips(conn, ["clips/a.mp4"])
    conn.execute("UPDATE pipeline_jobs SET run_after = now() + interval '7 seconds'")
    assert worker.seconds_until_next(["embed"]) == pytest.approx(7, abs=1.5)
    started = time.monotonic()
    assert worker.claim(["embed"], 1) == []
    assert time.monotonic() - started < 2
