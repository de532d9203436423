"""The learning jobs under faults: fencing of train_head and reproject, rows a broken head could
not project caught up by a queued job, queued projection, window projections caught up on a
rollback to a retired head.

The fencing tests run real `heaters-db daemon` processes against the real cluster: the first
daemon is held on a table lock the test takes (before any write of its job), SIGSTOPped there
past its 5 s lease, another daemon takes the job over and finishes it, then SIGCONT: the first
one must write nothing (its first fenced write raises LeaseLost and rolls back).
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable

import numpy as np
import psycopg
import pytest

from heaters_db.daemon import Daemon
from heaters_db.db import connect
from heaters_db.errors import LeaseLost
from heaters_db.learning import jobs, store
from heaters_db.learning.data import VariantNotReady
from heaters_db.learning.fence import Fence
from heaters_db.learning.reproject import catch_up_head
from heaters_db.queue import Queue
from heaters_db.settings import Settings
from tests.integration.conftest import DaemonProcess, job_rows, wait_until
from tests.integration.test_apply_head_sql import (
    INPUT_DIM,
    apply_in_sql,
    insert_head,
    random_head,
    vector_text,
)
from tests.integration.test_learning_loop import prepare
from tests.integration.test_projection_freshness import add_clips_with_embeddings, assert_fresh
from tests.support.simulated_sorter import SimulatedSorter, sort_round

StartDaemon = Callable[..., DaemonProcess]
LEARNING_KINDS = "train_head,reproject"
RNG = np.random.default_rng(11)


# ---- fencing with real daemon processes ---------------------------------------------------
def snapshot(conn: psycopg.Connection) -> dict[str, list]:
    """Every row the learning jobs write, with its xmin (a rewrite changes it)."""
    return {
        table: conn.execute(f"SELECT xmin::text, * FROM {table} ORDER BY 2, 3").fetchall()
        for table in ("projection_heads", "projected_embeddings", "projected_moment_embeddings")
    } | {
        "jobs": conn.execute(
            "SELECT id, kind, status, attempts, result::text, xmin::text FROM pipeline_jobs "
            "ORDER BY id"
        ).fetchall()
    }


def waits_on_lock(conn: psycopg.Connection) -> bool:
    """Some other backend of this database waits for a lock (the handler's connections carry
    no application_name, so any waiter counts: the test runs nothing else)."""
    return bool(
        conn.execute(
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        ).fetchone()
    )


def stall_past_lease(
    conn: psycopg.Connection, start_daemon: StartDaemon, db_url: str, lock: str
) -> tuple[DaemonProcess, dict]:
    """Start a learning daemon held on `lock` inside its job, SIGSTOP it there and wait until
    its lease has expired. Returns the stopped daemon and its job row."""
    with connect(db_url) as locker:
        locker.execute(lock)
        stopped = start_daemon(db_url, "--kinds", LEARNING_KINDS)
        wait_until(lambda: waits_on_lock(conn), 60, what=lambda: f"the job\n{stopped.log()}")
        (job,) = [row for row in job_rows(conn) if row["status"] == "running"]
        assert int(job["lease_owner"].split(":")[1]) == stopped.pid
        stopped.signal(signal.SIGSTOP)
        locker.rollback()
    wait_until(
        lambda: conn.execute(
            "SELECT lease_expires_at < clock_timestamp() FROM pipeline_jobs WHERE id = %s",
            (job["id"],),
        ).fetchone()[0],
        30,
        what="the stopped daemon's lease to expire",
    )
    return stopped, job


def take_over_and_resume(
    conn: psycopg.Connection, start_daemon: StartDaemon, db_url: str, stopped: DaemonProcess
) -> dict:
    """A second daemon finishes every learning job; then the stopped one resumes. Returns the
    snapshot taken after the takeover, which the resumed daemon must leave as it is."""
    try:
        other = start_daemon(db_url, "--kinds", LEARNING_KINDS)
        wait_until(
            lambda: all(row["status"] == "done" for row in job_rows(conn)),
            180,
            what=lambda: f"the other daemon to finish the jobs\n{other.log()}",
        )
        other.stop()
        before = snapshot(conn)
    finally:
        stopped.signal(signal.SIGCONT)
    wait_until(lambda: "status=lease_lost" in stopped.log(), 120, what=lambda: stopped.log())
    assert "LeaseLost" in stopped.log() or "lease lost" in stopped.log()
    assert stopped.alive(), stopped.log()  # it carries on, without the job
    return before


def test_a_training_stopped_past_its_lease_stores_no_head(
    db_url: str, conn: psycopg.Connection, start_daemon: StartDaemon
) -> None:
    library = prepare(conn)
    sort_round(conn, library, SimulatedSorter(library, "trick", seed=0), 160, seed=10)
    (train,) = job_rows(conn)  # the retrain trigger queued it
    assert train["kind"] == "train_head"
    # The daemon waits on this lock while it reads the events, before training or any write.
    stopped, job = stall_past_lease(
        conn, start_daemon, db_url, "LOCK TABLE clip_sorting_events IN ACCESS EXCLUSIVE MODE"
    )
    assert job["id"] == train["id"]
    before = take_over_and_resume(conn, start_daemon, db_url, stopped)
    heads = before["projection_heads"]
    assert len(heads) == 1  # the other daemon's head, activated by its reproject job
    assert snapshot(conn) == before  # the resumed daemon trained, then wrote nothing
    done = {row["id"]: row for row in job_rows(conn)}[train["id"]]
    assert done["result"]["worker"].split(":")[1] != str(stopped.pid)
    assert done["attempts"] == 2


def test_a_reprojection_stopped_past_its_lease_writes_no_row(
    db_url: str, conn: psycopg.Connection, start_daemon: StartDaemon
) -> None:
    bases = add_clips_with_embeddings(conn, 50)
    head_id = insert_head(conn, random_head(21), 1, "candidate")
    conn.execute("SELECT project_head_later(%s, 'test', false)", (head_id,))
    # The daemon waits on this lock in its read of the base vectors, before any write.
    stopped, job = stall_past_lease(
        conn, start_daemon, db_url, "LOCK TABLE embeddings IN ACCESS EXCLUSIVE MODE"
    )
    assert job["kind"] == "reproject"
    before = take_over_and_resume(conn, start_daemon, db_url, stopped)
    assert conn.execute(
        "SELECT status FROM projection_heads WHERE id = %s", (head_id,)
    ).fetchone() == ("active",)
    assert len(before["projected_embeddings"]) == len(bases)
    assert snapshot(conn) == before  # no row deleted, rewritten or added after the takeover
    for clip_id, base in bases.items():
        assert_fresh(conn, head_id, clip_id, base)


def claimed(conn: psycopg.Connection, worker: str, lease_seconds: int = 60):
    (job,) = Queue(conn, worker, lease_seconds).claim(["reproject"], 1)
    return job


def test_every_fenced_write_commits_only_under_the_lease(
    db_url: str, conn: psycopg.Connection
) -> None:
    """In-process, both answers of each check: the claim's fence writes, a lost one does not."""
    add_clips_with_embeddings(conn, 5)
    head_id = insert_head(conn, random_head(22), 1, "candidate")
    conn.execute("SELECT project_head_later(%s, 'test', false)", (head_id,))
    job = claimed(conn, "worker-a")
    fence = Fence.of(job)
    assert fence is not None and fence.worker == "worker-a"
    taken_over = Fence(job.id, "worker-b", job.started_at, "taken over")
    stale_claim = Fence(job.id, "worker-a", job.started_at.replace(year=2000), "an older claim")
    for lost in (taken_over, stale_claim):
        with pytest.raises(LeaseLost):
            store.activate_head(conn, head_id, lost)
        assert store.get_head(conn, head_id).status == "candidate"
        with pytest.raises(LeaseLost):
            catch_up_head(lambda: connect(db_url, autocommit=True), head_id, lost)
    assert conn.execute(
        "SELECT count(*) FROM projected_embeddings WHERE projection_head_id = %s", (head_id,)
    ).fetchone() == (0,)
    assert store.activate_head(conn, head_id, fence)["caught_up"] == 5
    # An expired lease is lost too, even before another worker claims it.
    conn.execute("UPDATE pipeline_jobs SET lease_expires_at = now() - interval '1 s'")
    with pytest.raises(LeaseLost):
        catch_up_head(lambda: connect(db_url, autocommit=True), head_id, fence)
    assert Fence.of(None) is None


# ---- rows a broken head could not project ---------------------------------------------------
def break_weights(conn: psycopg.Connection, head_id: int) -> bytes:
    (weights,) = conn.execute(
        "SELECT weights FROM projection_heads WHERE id = %s", (head_id,)
    ).fetchone()
    conn.execute(
        "UPDATE projection_heads SET weights = 'not safetensors'::bytea, "
        "weights_checksum = encode(sha256('not safetensors'::bytea), 'hex') WHERE id = %s",
        (head_id,),
    )
    return bytes(weights)


def run_daemon_once(db_url: str, retry_delay: float = 3.0) -> None:
    daemon = Daemon(
        Settings(device="cpu", lease_seconds=30),
        db_url,
        kinds=["reproject"],
        once=True,
        retry_delay_seconds=retry_delay,
    )
    assert daemon.run() == 0


def projected_count(conn: psycopg.Connection, head_id: int, clip_ids) -> int:
    return conn.execute(
        "SELECT count(*) FROM projected_embeddings WHERE projection_head_id = %s "
        "AND clip_id = ANY (%s)",
        (head_id, list(clip_ids)),
    ).fetchone()[0]


def test_rows_a_broken_head_skipped_are_caught_up_by_a_queued_job(
    db_url: str, conn: psycopg.Connection
) -> None:
    head_id = insert_head(conn, random_head(23), 1, "candidate")
    conn.execute("SELECT activate_head(%s)", (head_id,))
    weights = break_weights(conn, head_id)
    notices: list[str] = []
    conn.add_notice_handler(lambda diagnostic: notices.append(diagnostic.message_primary or ""))
    bases = add_clips_with_embeddings(conn, 4) | add_clips_with_embeddings(conn, 3)
    assert projected_count(conn, head_id, bases) == 0  # not projected yet, inserts went through
    assert any("catch-up job queued" in n for n in notices), notices
    (job,) = job_rows(conn)  # two failed inserts, one pending job
    assert (job["kind"], job["projection_head_id"], job["payload"]["catch_up"]) == (
        "reproject",
        head_id,
        True,
    )

    # Still broken: the attempt counts, the error is kept, the rows wait.
    run_daemon_once(db_url)
    (job,) = job_rows(conn)
    assert (job["status"], job["attempts"]) == ("queued", 1)
    assert "apply_head" in job["last_error"] or "safetensors" in job["last_error"]
    assert projected_count(conn, head_id, bases) == 0

    # The head readable again: the retry projects every skipped row, nobody else acts.
    conn.execute(
        "UPDATE projection_heads SET weights = %s, weights_checksum = encode(sha256(%s), 'hex') "
        "WHERE id = %s",
        (weights, weights, head_id),
    )
    wait_until(
        lambda: conn.execute("SELECT run_after <= now() FROM pipeline_jobs").fetchone()[0],
        30,
        what="the retry to fall due",
    )
    run_daemon_once(db_url)
    (job,) = job_rows(conn)
    assert (job["status"], job["result"]["caught_up"]) == ("done", 7)
    for clip_id, base in bases.items():
        assert_fresh(conn, head_id, clip_id, base)


def test_queued_projection_leaves_the_insert_to_a_daemon_job(
    db_url: str, conn: psycopg.Connection
) -> None:
    head_id = insert_head(conn, random_head(24), 1, "candidate")
    conn.execute("SELECT activate_head(%s)", (head_id,))
    projected_now = add_clips_with_embeddings(conn, 3)  # the default: the trigger projects
    assert projected_count(conn, head_id, projected_now) == 3
    assert job_rows(conn) == []
    with connect(db_url) as bulk:
        bulk.execute("SET LOCAL heaters_db.project_embeddings = 'queued'")
        queued = add_clips_with_embeddings(bulk, 5)
    assert projected_count(conn, head_id, queued) == 0
    (job,) = job_rows(conn)
    assert job["payload"]["catch_up"] is True
    run_daemon_once(db_url)
    assert job_rows(conn)[0]["result"]["caught_up"] == 5
    for clip_id, base in queued.items():
        assert_fresh(conn, head_id, clip_id, base)


def test_catch_ups_are_deduplicated_among_queued_jobs_only(conn: psycopg.Connection) -> None:
    head_id = insert_head(conn, random_head(25), 1, "candidate")

    def later(catch_up: bool) -> int | None:
        query = "SELECT project_head_later(%s, 'test', %s)"
        return conn.execute(query, (head_id, catch_up)).fetchone()[0]

    first = later(True)
    assert first is not None and later(True) is None  # one queued catch-up per head
    full = later(False)
    assert full is not None and later(False) is None  # one full re-projection, as before
    # Once the catch-up runs, it may have read the embeddings before newer rows committed:
    # another one queues behind it.
    Queue(conn, "worker-a", 60).claim(["reproject"], 1)
    running = conn.execute("SELECT id FROM pipeline_jobs WHERE status = 'running'").fetchone()[0]
    assert running == first
    behind = later(True)
    assert behind is not None and behind != first and later(True) is None
    assert later(False) is None  # the full one is still queued


def test_a_queued_catch_up_waits_for_the_statement_that_joined_it(
    db_url: str, conn: psycopg.Connection
) -> None:
    """A bulk statement that finds a catch-up already queued relies on that job for its rows:
    the job must not start (and read the embeddings) before those rows commit, or they would be
    left unprojected with no job pending."""
    head_id = insert_head(conn, random_head(26), 1, "candidate")
    conn.execute("SELECT activate_head(%s)", (head_id,))
    first = conn.execute("SELECT project_head_later(%s, 'earlier rows', true)", (head_id,))
    queued_id = first.fetchone()[0]
    worker = Queue(conn, "worker-a", 60)
    with connect(db_url) as bulk:
        bulk.execute("SET LOCAL heaters_db.project_embeddings = 'queued'")
        rows = add_clips_with_embeddings(bulk, 4)
        (pending,) = job_rows(bulk)  # joined the queued job, queued none of its own
        assert pending["id"] == queued_id
        assert worker.claim(["reproject"], 1) == []  # held until the bulk statement commits
    (job,) = worker.claim(["reproject"], 1)
    assert job.id == queued_id
    with connect(db_url, autocommit=True) as other:
        assert catch_up_head(lambda: connect(db_url, autocommit=True), head_id)["caught_up"] == 4
        for clip_id, base in rows.items():
            assert_fresh(other, head_id, clip_id, base)


def test_a_catch_up_claimed_before_the_join_gets_a_successor(
    db_url: str, conn: psycopg.Connection
) -> None:
    """The other order: the queued catch-up is claimed first (it may read the embeddings before
    a later statement commits), so that statement queues a job of its own behind it."""
    head_id = insert_head(conn, random_head(27), 1, "candidate")
    conn.execute("SELECT activate_head(%s)", (head_id,))
    first = conn.execute("SELECT project_head_later(%s, 'earlier rows', true)", (head_id,))
    running_id = first.fetchone()[0]
    (claimed,) = Queue(conn, "worker-a", 60).claim(["reproject"], 1)
    assert claimed.id == running_id
    with connect(db_url) as bulk:
        bulk.execute("SET LOCAL heaters_db.project_embeddings = 'queued'")
        add_clips_with_embeddings(bulk, 2)
    statuses = {row["id"]: row["status"] for row in job_rows(conn)}
    assert statuses.pop(running_id) == "running"
    assert list(statuses.values()) == ["queued"]


# ---- window projections on a rollback ------------------------------------------------------
def add_windows(
    conn: psycopg.Connection, variant_id: int, clip_ids, count: int, first_start: float
) -> dict:
    """`count` windows spread over the clips, starting at `first_start` s; {id: vector}."""
    vectors = RNG.normal(size=(count, INPUT_DIM)).astype(np.float32)
    rows = conn.execute(
        "INSERT INTO moment_embeddings (clip_id, variant_id, start_seconds, end_seconds, embedding) "
        "SELECT c, %s, s, s + 1, e::vector "
        "FROM unnest(%s::integer[], %s::float8[], %s::text[]) AS u(c, s, e) RETURNING id",
        (
            variant_id,
            [clip_ids[i % len(clip_ids)] for i in range(count)],
            [first_start + i for i in range(count)],
            [vector_text(v) for v in vectors],
        ),
    ).fetchall()
    return {row[0]: vector for row, vector in zip(rows, vectors, strict=True)}


def window_projection(conn: psycopg.Connection, head_id: int, window_id: int):
    row = conn.execute(
        "SELECT embedding::text FROM projected_moment_embeddings "
        "WHERE projection_head_id = %s AND moment_embedding_id = %s",
        (head_id, window_id),
    ).fetchone()
    return None if row is None else np.array(json.loads(row[0]), dtype=np.float64)


def test_rollback_to_a_retired_head_catches_up_its_window_projections(
    conn: psycopg.Connection,
) -> None:
    clips = list(add_clips_with_embeddings(conn, 3))
    (windows_variant,) = conn.execute(
        "INSERT INTO embedding_variants (model_name, generation_strategy, num_frames, dim, "
        "window_seconds, window_stride_seconds) "
        "SELECT model_name, 'video_moment_windows', num_frames, dim, 1, 1 FROM embedding_variants "
        "WHERE is_default RETURNING id"
    ).fetchone()
    early = add_windows(conn, windows_variant, clips, 4, 0.0)
    old = insert_head(conn, random_head(26), 1, "candidate")
    conn.execute("SELECT project_moment_embeddings(%s)", (old,))
    conn.execute("SELECT activate_head(%s)", (old,))
    new = insert_head(conn, random_head(27), 2, "candidate")
    conn.execute("SELECT project_moment_embeddings(%s)", (new,))
    conn.execute("SELECT activate_head(%s)", (new,))

    # While the old head is retired: new windows (projected under the active head only) and
    # a window whose vector was rewritten.
    later = add_windows(conn, windows_variant, clips, 3, 100.0)
    rewritten = next(iter(early))
    early[rewritten] = RNG.normal(size=INPUT_DIM).astype(np.float32)
    conn.execute(
        "UPDATE moment_embeddings SET embedding = %s::vector, updated_at = clock_timestamp() "
        "WHERE id = %s",
        (vector_text(early[rewritten]), rewritten),
    )
    assert all(window_projection(conn, old, w) is None for w in later)
    assert all(window_projection(conn, new, w) is not None for w in later)

    result = conn.execute("SELECT rollback_head('spot_similarity')").fetchone()[0]
    assert (result["head_id"], result["moments_caught_up"]) == (old, len(later) + 1)
    for window_id, vector in (early | later).items():
        np.testing.assert_allclose(
            window_projection(conn, old, window_id), apply_in_sql(conn, old, vector), atol=1e-6
        )
    # Nothing left to catch up: a second activation pass writes nothing.
    assert conn.execute("SELECT project_stale_moment_embeddings(%s)", (old,)).fetchone() == (0,)


def test_a_job_row_nobody_can_run_is_dead_at_once_saying_why(
    conn: psycopg.Connection, db_url: str
) -> None:
    """Job rows are anyone's to write: a payload that is no JSON object or holds a value of the
    wrong type, a reproject job for a rejected or a missing head can never succeed as they
    stand, so each is dead at its first attempt with the reason (not retried job_max_attempts
    times on a TypeError from deep inside training)."""
    conn.execute("INSERT INTO clips (clip_identifier) SELECT 'f' || g FROM generate_series(1, 3) g")
    rejected = insert_head(conn, random_head(3), 1, "rejected")
    bad = {
        "payload a string": ("train_head", "trick_similarity", None, '"garbage"'),
        "max_epochs as text": ("train_head", "spot_similarity", None, '{"max_epochs": "5"}'),
        "rejected head": ("reproject", None, rejected, "{}"),
        "missing head": ("reproject", None, 999_999, "{}"),
    }
    ids = {
        name: conn.execute(
            "INSERT INTO pipeline_jobs (kind, mode, projection_head_id, payload, max_attempts) "
            "VALUES (%s, %s, %s, %s::jsonb, 5) RETURNING id",
            values,
        ).fetchone()[0]
        for name, values in bad.items()
    }
    daemon = Daemon(
        Settings(device="cpu", lease_seconds=30),
        db_url,
        kinds=["train_head", "reproject"],
        once=True,
        retry_delay_seconds=0,
    )
    daemon.run()
    rows = {
        job_id: (status, attempts, error)
        for job_id, status, attempts, error in conn.execute(
            "SELECT id, status, attempts, last_error FROM pipeline_jobs WHERE id = ANY (%s)",
            (list(ids.values()),),
        ).fetchall()
    }
    assert {name: rows[i][:2] for name, i in ids.items()} == {name: ("dead", 1) for name in bad}
    assert "payload must be a JSON object, got 'garbage'" in rows[ids["payload a string"]][2]
    assert (
        "payload max_epochs must be an integer of at least 0, got '5'"
        in (rows[ids["max_epochs as text"]][2])
    )
    assert "is rejected" in rows[ids["rejected head"]][2]
    assert "999999" in rows[ids["missing head"]][2]


def test_rollback_undoes_the_last_activation_whichever_head_it_was(
    conn: psycopg.Connection,
) -> None:
    """Rollback is a stack of activations, not of versions: after v1, v2 and v1 again by hand,
    rolling back brings v2 back, then v1, then the base space; heads that went live in version
    order roll back as before."""
    add_clips_with_embeddings(conn, 4)
    v1, v2, v3 = (insert_head(conn, random_head(40 + v), v, "candidate") for v in (1, 2, 3))

    def serving() -> int | None:
        row = conn.execute("SELECT active_head_id('spot')").fetchone()
        return row[0]

    def rollback() -> int | None:
        result = conn.execute("SELECT rollback_head('spot')").fetchone()[0]
        assert "activation_id" not in result  # a rollback undoes an activation, it is none
        return result["head_id"]

    for head in (v1, v2, v1):
        conn.execute("SELECT activate_head(%s)", (head,))
    assert [rollback(), rollback(), rollback()] == [v2, v1, None]
    assert serving() is None

    for head in (v1, v2, v3):
        conn.execute("SELECT activate_head(%s)", (head,))
    assert rollback() == v2
    conn.execute("SELECT activate_head(%s)", (v3,))  # forward again, then back twice
    assert [rollback(), rollback()] == [v2, v1]
    assert serving() == v1
    # Past the recorded history the old rule holds: the highest retired version below.
    conn.execute("DELETE FROM projection_head_activations")
    conn.execute("SELECT activate_head(%s)", (v3,))
    conn.execute("DELETE FROM projection_head_activations")
    assert rollback() == v2


def test_training_on_a_variant_that_does_not_exist_names_it(db_url: str) -> None:
    # `train --variant 3` printed "variant: expected one row, the database returned none".
    with pytest.raises(VariantNotReady, match="no embedding variant 99999 .*variant list"):
        jobs.train_mode(lambda: psycopg.connect(db_url, autocommit=True), "trick", variant_id=99999)
