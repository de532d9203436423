"""`heaters-db daemon` as a real process: real PostgreSQL, real H.264 files, the tiny V-JEPA 2.

Daemons run as subprocesses with short leases (5 s) and poll intervals (0.5 s); waits poll the
database with a deadline. To catch a daemon "mid-job" deterministically, a test holds a row
lock on the clip: the daemon's embedding insert (its foreign-key check) then waits on it.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from heaters_db.daemon import Daemon
from heaters_db.db import connect
from heaters_db.queue import Job, SkipJob
from heaters_db.settings import Settings
from tests.integration.conftest import (
    BAD_CLIPS,
    TINY_DIM,
    MediaRoot,
    embedding_count,
    insert_clips,
    job_rows,
    settled,
    wait_until,
)
from tests.support.daemon_runs import (
    DAEMON_START_TIMEOUT,
    DaemonDb,
    StartDaemon,
    blocked_on_lock,
    embed_and_wait,
    own_cluster,
    run_in_thread,
    settings_for,
    statuses,
    wait_for_daemons,
)
from tests.support.daemon_runs import daemon_env as daemon_env  # the `env` fixture
from tests.support.tiny_model import TINY_MODEL_NAME


def test_daemon_embeds_new_clips_and_survives_bad_inputs(env: DaemonDb) -> None:
    db_url, conn, tiny_variant = env.url, env.conn, env.variant
    media_root, start_daemon = env.media, env.start
    daemon = start_daemon(db_url, "--batch-size", "8")
    good = [media_root.good("good-1.mp4"), media_root.good("good-2.mp4")]
    bad = [media_root.bad(name) for name in BAD_CLIPS]
    # One statement: one trigger run, one NOTIFY, one claim of all 7 jobs (a single batch).
    keys = [good[0], *bad, good[1]]
    clip_ids = insert_clips(conn, keys)
    wait_until(
        lambda: settled(conn), DAEMON_START_TIMEOUT, what=lambda: f"jobs to settle\n{daemon.log()}"
    )

    rows = {row["clip_id"]: row for row in job_rows(conn)}
    good_ids = [clip_ids[0], clip_ids[-1]]
    for clip_id in good_ids:
        assert rows[clip_id]["status"] == "done", rows[clip_id]
        assert rows[clip_id]["result"]["embedding_dim"] == TINY_DIM
    embedded = conn.execute(
        "SELECT clip_id, embedding_dim, vector_dims(embedding), model_version, generation_strategy "
        "FROM embeddings ORDER BY clip_id"
    ).fetchall()
    assert [(r[0], r[1], r[2], r[4]) for r in embedded] == [
        (clip_id, TINY_DIM, TINY_DIM, "video_full_clip") for clip_id in good_ids
    ]
    assert all(r[3] for r in embedded)  # model_version recorded
    # The variant learnt its dimension from the model, and got its HNSW index.
    assert (
        conn.execute(
            "SELECT dim FROM embedding_variants WHERE id = %s", (tiny_variant,)
        ).fetchone()[0]
        == TINY_DIM
    )
    assert conn.execute(
        "SELECT 1 FROM pg_indexes WHERE indexname = %s",
        (f"embeddings_hnsw_variant_{tiny_variant}",),
    ).fetchone()

    causes = {
        "missing.mp4": "not found",
        "zero.mp4": "empty",
        "truncated.mp4": "",
        "text.mp4": "not a readable video container",
        "audio.mp4": "no video stream",
    }
    for key, clip_id in zip(bad, clip_ids[1:-1], strict=True):
        row = rows[clip_id]
        name = Path(key).name
        # A truncated file may be an upload still being written: retried later. The others
        # can never decode as they stand: dead at once, after one attempt.
        expected = "queued" if name == "truncated.mp4" else "dead"
        assert row["status"] == expected and row["attempts"] == 1, row
        assert name in row["last_error"], row["last_error"]
        assert causes[name] in row["last_error"], row["last_error"]
        assert row["last_traceback"]
    # The clips themselves are untouched.
    assert conn.execute("SELECT clip_filepath FROM clips ORDER BY id").fetchall() == [
        (k,) for k in keys
    ]

    # The daemon carries on: a later clip is embedded too.
    assert daemon.alive(), daemon.log()
    (later,) = insert_clips(conn, [media_root.good("good-3.mp4")])
    wait_until(
        lambda: embedding_count(conn, [later]) == 1, 60, what=lambda: f"later clip\n{daemon.log()}"
    )

    daemon.signal(signal.SIGTERM)
    assert daemon.wait(30) == 0
    log = daemon.log()
    assert "action=embed " in log and f"clip_id={later}" in log
    assert "action=embed_error" in log and "zero.mp4" in log


def test_kill_9_mid_job_then_second_daemon_completes_it(env: DaemonDb) -> None:
    db_url, conn, media_root, start_daemon = env.url, env.conn, env.media, env.start
    (clip_id,) = insert_clips(conn, [media_root.good("good-1.mp4")])
    with connect(db_url) as locker:
        locker.execute("SELECT 1 FROM clips WHERE id = %s FOR UPDATE", (clip_id,))
        first = start_daemon(db_url)
        wait_until(
            lambda: blocked_on_lock(conn),
            DAEMON_START_TIMEOUT,
            what=lambda: f"daemon mid-job\n{first.log()}",
        )
        first.process.kill()  # SIGKILL: no cleanup, no release
        first.wait(10)
        locker.rollback()
    (row,) = job_rows(conn)
    assert row["status"] == "running" and row["attempts"] == 1

    second = start_daemon(db_url)
    wait_until(
        lambda: job_rows(conn)[0]["status"] == "done",
        DAEMON_START_TIMEOUT,
        what=lambda: f"second daemon to finish the job\n{second.log()}",
    )
    (row,) = job_rows(conn)
    assert row["attempts"] == 2
    assert row["result"]["worker"].split(":")[1] == str(second.pid)
    assert embedding_count(conn) == 1


def test_daemon_carries_on_after_postgres_restarts(
    tmp_path_factory: pytest.TempPathFactory, media_root: MediaRoot, start_daemon: StartDaemon
) -> None:
    with own_cluster(tmp_path_factory, "restart-pg") as (cluster, url):
        daemon = start_daemon(url)
        with connect(url, autocommit=True) as conn:
            embed_and_wait(conn, media_root, "good-1.mp4", daemon, DAEMON_START_TIMEOUT)

        cluster.restart()

        with connect(url, autocommit=True) as conn:
            embed_and_wait(conn, media_root, "good-2.mp4", daemon, 60)
        assert daemon.alive()
        assert "action=db_reconnect" in daemon.log()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0


def test_two_daemons_share_twenty_jobs(env: DaemonDb) -> None:
    db_url, conn, media_root, start_daemon = env.url, env.conn, env.media, env.start
    daemons = [start_daemon(db_url, "--batch-size", "2") for _ in range(2)]
    wait_for_daemons(conn, 2)
    clip_ids = insert_clips(conn, [media_root.good(f"share-{i}.mp4") for i in range(20)])
    wait_until(
        lambda: all(r["status"] == "done" for r in job_rows(conn)),
        DAEMON_START_TIMEOUT,
        what=lambda: "20 jobs done\n" + "\n".join(d.log() for d in daemons),
    )
    rows = job_rows(conn)
    assert len(rows) == 20 and all(r["attempts"] == 1 for r in rows)
    assert embedding_count(conn, clip_ids) == 20
    assert conn.execute("SELECT count(DISTINCT clip_id) FROM embeddings").fetchone()[0] == 20
    workers = {r["result"]["worker"] for r in rows}
    assert len(workers) == 2, f"one daemon did all the work: {workers}"
    for daemon in daemons:
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0


def test_sigterm_finishes_current_batch_releases_the_rest_and_exits_0(env: DaemonDb) -> None:
    db_url, conn, media_root, start_daemon = env.url, env.conn, env.media, env.start
    clip_ids = insert_clips(conn, [media_root.good(f"term-{i}.mp4") for i in range(6)])
    with connect(db_url) as locker:
        locker.execute("SELECT 1 FROM clips WHERE id = %s FOR UPDATE", (clip_ids[0],))
        daemon = start_daemon(db_url, "--batch-size", "2")
        wait_until(lambda: blocked_on_lock(conn), DAEMON_START_TIMEOUT, what=daemon.log)
        # Batch 1 is in the model/database stage, batch 2 is claimed and decoding.
        wait_until(lambda: list(statuses(conn).values()).count("running") == 4, 30, what=daemon.log)
        daemon.signal(signal.SIGTERM)
        locker.rollback()
    assert daemon.wait(60) == 0, daemon.log()

    rows = job_rows(conn)
    assert [r["status"] for r in rows] == ["done", "done", "queued", "queued", "queued", "queued"]
    assert all(r["attempts"] == 0 and r["lease_owner"] is None for r in rows[2:])
    assert embedding_count(conn) == 2
    assert "action=release" in daemon.log()


def test_once_drains_and_exits(env: DaemonDb) -> None:
    db_url, conn, media_root, start_daemon = env.url, env.conn, env.media, env.start
    clip_ids = insert_clips(conn, [media_root.good(f"once-{i}.mp4") for i in range(5)])
    # A job that is not due yet stays for a later run.
    (later,) = insert_clips(conn, [media_root.good("once-later.mp4")])
    conn.execute(
        "UPDATE pipeline_jobs SET run_after = now() + interval '1 hour' WHERE clip_id = %s",
        (later,),
    )

    # A video that is not one (dead at once) and a truncated one (retried later): still exit 0,
    # and the drained line counts them.
    dead, retried = insert_clips(
        conn, [media_root.bad("text.mp4"), media_root.bad("truncated.mp4")]
    )

    daemon = start_daemon(db_url, "--once")
    assert daemon.wait(DAEMON_START_TIMEOUT) == 0, daemon.log()
    assert embedding_count(conn, clip_ids) == 5
    outcome = {row["clip_id"]: row["status"] for row in job_rows(conn)}
    assert outcome == {
        **dict.fromkeys(clip_ids, "done"),
        later: "queued",
        dead: "dead",
        retried: "queued",
    }
    (drained,) = [line for line in daemon.log().splitlines() if "action=drained" in line]
    assert (
        "queue drained: 5 jobs done, 1 failed and queued to retry, 1 dead "
        "(their errors: heaters-db jobs)" in drained
    ), drained


def test_a_failed_re_embed_keeps_the_old_vector_and_the_backfill_tries_again(env: DaemonDb) -> None:
    """A clip whose new video cannot decode keeps serving its old vector (nothing is lost), and
    `embed --missing` (embeddings_needed) asks for it again instead of counting it done."""
    db_url, conn, media_root, start_daemon = env.url, env.conn, env.media, env.start
    moved, kept = insert_clips(conn, [media_root.good("moved.mp4"), media_root.good("kept.mp4")])
    assert start_daemon(db_url, "--once").wait(DAEMON_START_TIMEOUT) == 0
    assert embedding_count(conn, [moved, kept]) == 2
    vector = "SELECT embedding::text FROM embeddings WHERE clip_id = %s"
    (before,) = conn.execute(vector, (moved,)).fetchone()
    # Embedded a minute ago (the timestamps are heaters' whole seconds).
    conn.execute("UPDATE embeddings SET updated_at = updated_at - interval '1 minute'")
    assert conn.execute("SELECT * FROM embeddings_needed()").fetchall() == []

    conn.execute(
        "UPDATE clips SET clip_filepath = %s WHERE id = %s", (media_root.bad("text.mp4"), moved)
    )
    daemon = start_daemon(db_url, "--once")
    assert daemon.wait(DAEMON_START_TIMEOUT) == 0, daemon.log()
    latest = job_rows(conn)[-1]
    assert (latest["clip_id"], latest["status"]) == (moved, "dead")
    assert conn.execute(vector, (moved,)).fetchone() == (before,)
    assert conn.execute("SELECT clip_id FROM embeddings_needed()").fetchall() == [(moved,)]
    added = conn.execute("SELECT enqueue_embed_jobs(NULL, only_missing => true)").fetchone()[0]
    assert added == 1 and job_rows(conn)[-1]["clip_id"] == moved

    # A vector written after the death (`heaters-db embed --clip` on a repaired file) is
    # current: the backfill leaves it alone.
    conn.execute("DELETE FROM pipeline_jobs WHERE status = 'queued'")
    conn.execute(
        "UPDATE embeddings SET updated_at = (now() AT TIME ZONE 'utc') + interval '1 minute' "
        "WHERE clip_id = %s",
        (moved,),
    )
    assert conn.execute("SELECT * FROM embeddings_needed()").fetchall() == []


def test_once_as_a_login_that_is_only_a_worker(
    worker_url: str,
    conn: psycopg.Connection,
    tiny_variant: int,
    media_root: MediaRoot,
    start_daemon: StartDaemon,
) -> None:
    """The daemon needs no more than heaters_worker: claim, decode, embed, upsert, index."""
    clip_ids = insert_clips(conn, [media_root.good(f"worker-{i}.mp4") for i in range(2)])
    daemon = start_daemon(worker_url, "--once")
    assert daemon.wait(DAEMON_START_TIMEOUT) == 0, daemon.log()
    assert embedding_count(conn, clip_ids) == 2
    assert {row["status"] for row in job_rows(conn)} == {"done"}
    index = f"embeddings_hnsw_variant_{tiny_variant}"
    assert conn.execute("SELECT to_regclass(%s) IS NOT NULL", (index,)).fetchone() == (True,)
    assert "permission denied" not in daemon.log()


# ---- in-process: the Daemon class with handlers and retries --------------------------------
def in_process_daemon(db_url: str, model_dir: Path, media: MediaRoot, **kwargs) -> Daemon:
    return Daemon(settings_for(db_url, model_dir, media), db_url, **kwargs)


def test_retries_with_backoff_then_dead_letter(env: DaemonDb) -> None:
    db_url, conn, tiny_model_dir, media_root = env.url, env.conn, env.model_dir, env.media
    conn.execute("UPDATE heaters_db_settings SET value = '3' WHERE name = 'job_max_attempts'")
    (clip_id,) = insert_clips(conn, [media_root.bad("truncated.mp4")])
    daemon = in_process_daemon(db_url, tiny_model_dir, media_root, retry_delay_seconds=0.3)
    thread = run_in_thread(daemon)
    try:
        wait_until(lambda: job_rows(conn)[0]["status"] == "dead", 60, what="dead letter")
    finally:
        daemon.request_stop()
        thread.join(30)
    (row,) = job_rows(conn)
    assert row["attempts"] == 3 and row["max_attempts"] == 3
    assert "truncated.mp4" in row["last_error"] and "VideoDecodeError" in row["last_error"]
    assert "attempt 3/3" in row["last_traceback"]
    # Backoff: waits of 0.3 s then 0.6 s between the three attempts.
    assert (row["finished_at"] - row["inserted_at"]).total_seconds() >= 0.9
    (error,) = conn.execute("SELECT job_id, status FROM pipeline_job_errors").fetchall()
    assert error == (row["id"], "dead")
    assert conn.execute("SELECT count(*) FROM clips WHERE id = %s", (clip_id,)).fetchone()[0] == 1


def test_registered_handlers_run_other_kinds(
    db_url: str, conn: psycopg.Connection, tiny_model_dir: Path, media_root: MediaRoot
) -> None:
    seen: list[Job] = []

    def train(connect_: Callable[[], psycopg.Connection], job: Job, settings: Settings) -> dict:
        with connect_() as own:  # a connection of its own, committed on success
            own.execute("SELECT 1")
        seen.append(job)
        return {"trained": job.mode}

    def reproject(_connect: Callable, job: Job, _settings: Settings) -> dict:
        if job.payload.get("skip"):
            raise SkipJob("nothing to project", {"clips": 0})
        raise RuntimeError("projection exploded")

    conn.execute(
        "INSERT INTO pipeline_jobs (kind, mode, projection_head_id, payload) VALUES "
        "('train_head', 'trick_similarity', NULL, '{}'), ('reproject', NULL, 1, '{\"skip\": true}'), "
        "('reproject', NULL, 2, '{}')"
    )
    daemon = in_process_daemon(
        db_url,
        tiny_model_dir,
        media_root,
        kinds=["train_head", "reproject"],
        handlers={"train_head": train, "reproject": reproject},
        once=True,
    )
    assert daemon.run() == 0
    rows = job_rows(conn)
    assert [r["status"] for r in rows] == ["done", "skipped", "queued"]
    assert rows[0]["result"]["trained"] == "trick_similarity" and seen[0].mode == "trick_similarity"
    assert rows[1]["result"] == {"clips": 0, "reason": "nothing to project"}
    assert rows[2]["last_error"] == "RuntimeError: projection exploded"
    assert "Traceback" in rows[2]["last_traceback"]


def test_unknown_kind_without_handler_is_refused(
    db_url: str, tiny_model_dir: Path, media_root: MediaRoot
) -> None:
    from heaters_db.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="no handler for job kind"):
        in_process_daemon(db_url, tiny_model_dir, media_root, kinds=["reproject"], handlers={})


def test_skips_and_job_errors_that_are_not_the_video(
    db_url: str, conn: psycopg.Connection, tiny_model_dir: Path, media_root: MediaRoot
) -> None:
    """No trick metadata: skipped, never retried. A variant declared with another dimension,
    or a model that does not load: a clear job error."""
    conn.execute("UPDATE embedding_variants SET enabled = false")
    variants = dict(
        conn.execute(
            "INSERT INTO embedding_variants (model_name, generation_strategy, num_frames, dim) VALUES "
            "(%(tiny)s, 'video_trick_window', 8, NULL), (%(tiny)s, 'video_centered_64', 8, 64), "
            "('no/such-model', 'video_full_clip', 8, NULL) RETURNING generation_strategy, id",
            {"tiny": TINY_MODEL_NAME},
        ).fetchall()
    )
    (clip_id,) = insert_clips(conn, [media_root.good("good-1.mp4")])
    daemon = in_process_daemon(db_url, tiny_model_dir, media_root, kinds=["embed"], once=True)
    assert daemon.run() == 0

    rows = {r["variant_id"]: r for r in job_rows(conn)}
    trick = rows[variants["video_trick_window"]]
    assert trick["status"] == "skipped" and trick["attempts"] == 1
    assert "no trick metadata" in trick["result"]["reason"]
    mismatch = rows[variants["video_centered_64"]]
    assert mismatch["status"] == "queued" and "VariantDimensionMismatch" in mismatch["last_error"]
    assert (
        "has dim 64" in mismatch["last_error"]
        and f"produces {TINY_DIM}-d" in mismatch["last_error"]
    )
    missing = rows[variants["video_full_clip"]]
    assert missing["status"] == "queued" and "ModelLoadError" in missing["last_error"]
    assert "no/such-model" in missing["last_error"]
    assert embedding_count(conn, [clip_id]) == 0


def test_unmigrated_database_is_a_clear_error(
    empty_db_url: str, tiny_model_dir: Path, media_root: MediaRoot
) -> None:
    from heaters_db.errors import ConfigurationError

    daemon = in_process_daemon(empty_db_url, tiny_model_dir, media_root, kinds=["embed"], once=True)
    with pytest.raises(ConfigurationError, match="run `heaters-db migrate`"):
        daemon.run()
