"""The daemon under faults: each error class, fencing after a lost lease, a cluster that keeps
its port, a clip that moves while its job runs, prefetched leases released before training.

Real PostgreSQL, real H.264 files, the tiny V-JEPA 2; the fencing test runs two daemon
processes (SIGSTOP one past its 5 s lease). Errors are produced by the database itself
(lock_timeout, statement_timeout, RAISE, pg_terminate_backend, the project's own
"no default embedding variant"), not imitated.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from heaters_db.daemon import Daemon
from heaters_db.db import connect
from heaters_db.embed_handler import EmbedHandler
from heaters_db.errors import DatabaseUnavailable
from heaters_db.failures import CONNECTION, JOB, PERMANENT, classify
from heaters_db.queue import Job
from heaters_db.settings import Settings
from tests.integration.conftest import (
    MediaRoot,
    embedding_count,
    insert_clips,
    job_rows,
    wait_until,
)
from tests.support.daemon_runs import (
    DAEMON_START_TIMEOUT,
    DaemonDb,
    StartDaemon,
    blocked_on_lock,
    embed_and_wait,
    jobs_by_id,
    own_cluster,
    settings_for,
    statuses,
    wait_for_daemons,
)
from tests.support.daemon_runs import daemon_env as daemon_env  # the `env` fixture

RETRY_DELAY = 3.0  # longer than a --once run, so a failed job waits for the next one
LOCKED_ROW = "SELECT 1 FROM heaters_db_settings WHERE name = 'job_max_attempts' FOR UPDATE"
JOB_ERRORS = {  # fault -> what last_error keeps
    "lock_timeout": "LockNotAvailable",
    "cancel": "QueryCanceled",
    "raise": "the job itself is broken",
}


# ---- classification ---------------------------------------------------------------------
def test_database_errors_are_classified_by_sqlstate(db_url: str, conn: psycopg.Connection):
    def error_of(statement: str, setup: str | None = None) -> psycopg.Error:
        with connect(db_url, autocommit=True) as own:
            if setup:
                own.execute(setup)
            with pytest.raises(psycopg.Error) as caught:
                own.execute(statement)
            return caught.value

    conn.execute("UPDATE embedding_variants SET is_default = false")
    assert classify(error_of("SELECT default_variant()")) == PERMANENT  # 55000
    assert classify(error_of("SELECT 1/0")) == PERMANENT  # 22012, a data exception
    assert classify(error_of("SELECT pg_sleep(1)", "SET statement_timeout = '20ms'")) == JOB
    assert classify(error_of("DO $$ BEGIN RAISE EXCEPTION 'boom'; END $$")) == JOB
    lost = error_of("SELECT pg_terminate_backend(pg_backend_pid())")
    assert lost.sqlstate == "57P01" or lost.sqlstate is None
    assert classify(lost) == CONNECTION
    with connect(db_url) as closed:
        pass
    with pytest.raises(psycopg.Error) as caught:
        closed.execute("SELECT 1")
    assert classify(caught.value) == CONNECTION


# ---- poison jobs ------------------------------------------------------------------------
def test_poison_jobs_are_bounded_keep_their_error_and_do_not_block_the_queue(env: DaemonDb) -> None:
    """One job per error class, then an embed job behind them; `--once` returns each time."""
    db_url, conn, tiny_model_dir, media_root = env.url, env.conn, env.model_dir, env.media
    terminated: list[int] = []

    def faulty(connect_: Callable[[], psycopg.Connection], job: Job, _settings: Settings) -> dict:
        fault = job.payload["fault"]
        with connect_() as own:
            if fault == "lock_timeout":
                own.execute("SET lock_timeout = '50ms'")
                own.execute(LOCKED_ROW)
            elif fault == "cancel":
                own.execute("SET statement_timeout = '50ms'")
                own.execute("SELECT pg_sleep(5)")
            elif fault == "raise":
                own.execute("DO $$ BEGIN RAISE EXCEPTION 'the job itself is broken'; END $$")
            elif fault == "no_default_variant":
                own.execute("SELECT default_variant()")
            elif fault == "connection" and not terminated:
                terminated.append(job.attempts)
                own.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return {"fault": fault}

    faults = ["lock_timeout", "cancel", "raise", "no_default_variant", "connection"]
    ids = [
        conn.execute(
            "INSERT INTO pipeline_jobs (kind, projection_head_id, payload, max_attempts) "
            "VALUES ('reproject', %s, jsonb_build_object('fault', %s::text), 2) RETURNING id",
            (number, fault),
        ).fetchone()[0]
        for number, fault in enumerate(faults, start=1)
    ]
    job_id = dict(zip(faults, ids, strict=True))
    (good,) = insert_clips(conn, [media_root.good("behind-poison.mp4")])
    (empty,) = insert_clips(conn, [""])  # an empty key: a permanent input error, not "NULL"

    def run_once() -> Daemon:
        settings = settings_for(db_url, tiny_model_dir, media_root)
        daemon = Daemon(
            settings,
            db_url,
            handlers={"embed": EmbedHandler(settings), "reproject": faulty},
            once=True,
            retry_delay_seconds=RETRY_DELAY,
        )
        finished = threading.Event()
        thread = threading.Thread(target=lambda: (daemon.run(), finished.set()), daemon=True)
        thread.start()
        assert finished.wait(90), "--once did not return"
        return daemon

    with connect(db_url) as locker:  # the lock_timeout job's row lock, held by someone else
        locker.execute(LOCKED_ROW)
        conn.execute("UPDATE embedding_variants SET is_default = false")
        daemon = run_once()
        first = jobs_by_id(conn)
        # What the drained line reports: the good clip done; the three job errors and the
        # connection the job ended (charged, not a session failure) retrying; two dead.
        assert (daemon.processed, daemon.retrying, daemon.dead) == (1, 4, 2)
        for fault, expected in JOB_ERRORS.items():
            row = first[job_id[fault]]
            assert row["status"] == "queued" and row["attempts"] == 1, row  # backoff, retried
            assert expected in row["last_error"] and row["last_traceback"], row["last_error"]
        row = first[job_id["no_default_variant"]]
        assert row["status"] == "dead" and row["attempts"] == 1, row  # dead at once
        assert "no default embedding variant" in row["last_error"]
        # The job ended its own connection and the database answered right after: the
        # attempt counts (an outage would give it back), the next run finishes the job.
        row = first[job_id["connection"]]
        assert terminated == [1] and row["status"] == "queued" and row["attempts"] == 1, row
        assert "connection lost while the job ran" in row["last_error"], row["last_error"]
        by_clip = {r["clip_id"]: r for r in first.values() if r["kind"] == "embed"}
        assert by_clip[good]["status"] == "done" and embedding_count(conn, [good]) == 1
        assert by_clip[empty]["status"] == "dead" and by_clip[empty]["attempts"] == 1
        assert "empty clip_filepath" in by_clip[empty]["last_error"]
        assert "NULL" not in by_clip[empty]["last_error"]

        time.sleep(RETRY_DELAY + 0.2)  # past the first backoff
        run_once()
    final = jobs_by_id(conn)
    assert final[job_id["connection"]]["status"] == "done", final[job_id["connection"]]
    assert final[job_id["connection"]]["attempts"] == 2
    for fault in JOB_ERRORS:
        row = final[job_id[fault]]
        assert row["status"] == "dead" and row["attempts"] == 2, row  # bounded: max_attempts
        assert JOB_ERRORS[fault] in row["last_error"], row["last_error"]


def test_once_returns_when_the_database_is_unreachable(
    tiny_model_dir: Path, media_root: MediaRoot
) -> None:
    url = "postgresql://nobody@127.0.0.1:1/nothing?connect_timeout=2"
    daemon = Daemon(settings_for(url, tiny_model_dir, media_root), url, kinds=["embed"], once=True)
    assert daemon.run() == 1


# ---- fencing ----------------------------------------------------------------------------
def test_a_daemon_stopped_past_its_lease_writes_nothing_after_another_finished(
    env: DaemonDb,
) -> None:
    db_url, conn, tiny_variant = env.url, env.conn, env.variant
    media_root, start_daemon = env.media, env.start
    daemons = [start_daemon(db_url) for _ in range(2)]
    wait_for_daemons(conn, 2)
    with connect(db_url) as locker:
        # The first daemon to claim blocks on this row (it records the model's dimension on
        # the variant before decoding), between its claim and its write. NO KEY: the new
        # job's foreign-key check (KEY SHARE) must not wait on it.
        locker.execute(
            "SELECT 1 FROM embedding_variants WHERE id = %s FOR NO KEY UPDATE", (tiny_variant,)
        )
        (clip_id,) = insert_clips(conn, [media_root.good("fenced.mp4")])
        wait_until(lambda: blocked_on_lock(conn), 30, what="a daemon to claim the job")
        (row,) = job_rows(conn)
        owner_pid = int(row["lease_owner"].split(":")[1])
        stopped = next(d for d in daemons if d.pid == owner_pid)
        other = next(d for d in daemons if d.pid != owner_pid)
        stopped.signal(signal.SIGSTOP)
        locker.rollback()
    try:
        wait_until(
            lambda: job_rows(conn)[0]["status"] == "done",
            60,
            what=lambda: f"the other daemon to take the job over\n{other.log()}",
        )
        (done,) = job_rows(conn)
        assert done["result"]["worker"].split(":")[1] == str(other.pid)
        assert done["attempts"] == 2
        before = conn.execute("SELECT xmin::text, embedding FROM embeddings").fetchall()
    finally:
        stopped.signal(signal.SIGCONT)
    wait_until(lambda: "action=lease_lost" in stopped.log(), 60, what=stopped.log)
    assert conn.execute("SELECT xmin::text, embedding FROM embeddings").fetchall() == before
    assert embedding_count(conn, [clip_id]) == 1
    assert job_rows(conn)[0]["result"] == done["result"]
    assert stopped.alive(), stopped.log()  # it carries on, without the job


def test_heartbeat_stops_renewing_a_job_past_its_maximum_running_time(
    db_url: str, conn: psycopg.Connection, tiny_variant: int, media_root: MediaRoot
) -> None:
    from heaters_db.queue import JobLease, Queue

    insert_clips(conn, [media_root.good("overdue.mp4"), media_root.good("on-time.mp4")])
    with connect(db_url, autocommit=True) as own:
        queue = Queue(own, "test-worker", 5)
        overdue, on_time = queue.claim(["embed"], 2)
        lease = JobLease(lambda: connect(db_url, autocommit=True), "test-worker", 5)
        lease.add([overdue.id], max_seconds=0.01)
        lease.add([on_time.id], max_seconds=60)
        time.sleep(1.1)  # lease timestamps move on
        lease.beat()
        lease.stop()
    expiry = dict(conn.execute("SELECT id, lease_expires_at FROM pipeline_jobs").fetchall())
    assert expiry[on_time.id] > expiry[overdue.id]  # only the job within its time was renewed
    assert (expiry[on_time.id] - expiry[overdue.id]).total_seconds() >= 1


# ---- the clip moves while its job runs --------------------------------------------------
def test_a_clip_filepath_change_during_a_running_job_requeues_it(env: DaemonDb) -> None:
    db_url, conn, tiny_variant = env.url, env.conn, env.variant
    tiny_model_dir, media_root = env.model_dir, env.media
    daemon = Daemon(settings_for(db_url, tiny_model_dir, media_root), db_url, kinds=["embed"])
    thread = threading.Thread(target=daemon.run, daemon=True)
    try:
        with connect(db_url) as locker:
            locker.execute(
                "SELECT 1 FROM embedding_variants WHERE id = %s FOR NO KEY UPDATE", (tiny_variant,)
            )
            (clip_id,) = insert_clips(conn, [media_root.good("before-move.mp4")])
            thread.start()
            wait_until(lambda: blocked_on_lock(conn), 30, what="the daemon mid-job")
            # heaters moves the clip: the running job read the old path.
            conn.execute(
                "UPDATE clips SET clip_filepath = %s WHERE id = %s",
                (media_root.bad("missing.mp4"), clip_id),
            )
            locker.rollback()
        wait_until(lambda: job_rows(conn)[0]["status"] == "dead", 60, what="the re-run")
    finally:
        daemon.request_stop()
        thread.join(30)
    (row,) = job_rows(conn)
    assert "missing.mp4" in row["last_error"] and row["attempts"] == 1, row
    assert embedding_count(conn, [clip_id]) == 0  # the old file's vector was never written


# ---- the embedded cluster keeps its port ------------------------------------------------
def test_db_down_up_with_a_connected_client_keeps_the_port_and_the_daemon_reconnects(
    tmp_path_factory: pytest.TempPathFactory, media_root: MediaRoot, start_daemon: StartDaemon
) -> None:
    with own_cluster(tmp_path_factory, "down-up-pg") as (cluster, url):
        with connect(url, autocommit=True) as client:
            daemon = start_daemon(url)
            embed_and_wait(client, media_root, "down-up-1.mp4", daemon, DAEMON_START_TIMEOUT)
            port = cluster.port
            assert cluster.down() is True  # clients connected: their sockets go to TIME_WAIT
            assert cluster.up() == url and cluster.port == port
            with pytest.raises(psycopg.OperationalError):
                client.execute("SELECT 1")  # the old session is gone; the URL is not
        with connect(url, autocommit=True) as again:
            embed_and_wait(again, media_root, "down-up-2.mp4", daemon, 60)
        log = daemon.log()
        assert "action=db_reconnect" in log and "action=db_reconnected" in log
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0


# ---- a connection lost while a job runs: an outage, or the job's own doing -----------------
def test_postgres_restart_in_the_middle_of_a_write_gives_the_attempt_back(
    tmp_path_factory: pytest.TempPathFactory, media_root: MediaRoot, start_daemon: StartDaemon
) -> None:
    """The outage answer: the database does not answer right after the loss."""
    with own_cluster(tmp_path_factory, "busy-restart-pg") as (cluster, url):
        with connect(url, autocommit=True) as conn:
            (clip_id,) = insert_clips(conn, [media_root.good("busy-restart.mp4")])
            locker = connect(url)
            # The daemon's embedding insert (its foreign-key check) waits on this row lock:
            # the restart hits it inside its write transaction.
            locker.execute("SELECT 1 FROM clips WHERE id = %s FOR UPDATE", (clip_id,))
            daemon = start_daemon(url)
            wait_until(lambda: blocked_on_lock(conn), DAEMON_START_TIMEOUT, what=daemon.log)
        cluster.restart()
        locker.close()
        with connect(url, autocommit=True) as conn:
            wait_until(
                lambda: job_rows(conn)[0]["status"] == "done",
                60,
                what=lambda: f"the job after the restart\n{daemon.log()}",
            )
            (row,) = job_rows(conn)
            assert row["attempts"] == 1, row  # the interrupted attempt was given back
            assert row["last_error"] is None, row
            assert embedding_count(conn, [clip_id]) == 1
        assert "action=db_reconnect" in daemon.log() and "action=release" in daemon.log()
        assert "action=job_connection_lost" not in daemon.log()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0


def test_a_job_that_ends_its_own_connection_spends_its_attempts_and_dead_letters(
    env: DaemonDb,
) -> None:
    """The job's answer: its write terminates its own backend (as a job that crashes its
    backend would), and the database answers right after. Each loss counts an attempt."""
    db_url, conn, media_root, start_daemon = env.url, env.conn, env.media, env.start
    conn.execute("UPDATE heaters_db_settings SET value = '2' WHERE name = 'job_max_attempts'")
    conn.execute(
        "CREATE FUNCTION end_own_connection() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$"
    )
    conn.execute(
        "CREATE TRIGGER end_own_connection BEFORE INSERT ON embeddings "
        "FOR EACH ROW EXECUTE FUNCTION end_own_connection()"
    )
    daemon = start_daemon(db_url, "--retry-delay", "0.2")
    (clip_id,) = insert_clips(conn, [media_root.good("ends-its-connection.mp4")])
    wait_until(
        lambda: job_rows(conn)[0]["status"] == "dead",
        DAEMON_START_TIMEOUT,
        what=lambda: f"the job to be dead-lettered\n{daemon.log()}",
    )
    (row,) = job_rows(conn)
    assert row["attempts"] == 2 and row["max_attempts"] == 2, row  # bounded
    assert "connection lost while the job ran" in row["last_error"], row["last_error"]
    assert "terminating connection" in row["last_error"], row["last_error"]
    assert embedding_count(conn, [clip_id]) == 0
    # The daemon carries on with other work once the job is out of the way.
    conn.execute("DROP TRIGGER end_own_connection ON embeddings")
    embed_and_wait(conn, media_root, "after-the-poison.mp4", daemon, 60)
    assert daemon.alive(), daemon.log()
    assert daemon.log().count("action=job_connection_lost") == 2


def test_a_job_that_crashes_its_backend_is_bounded_too(
    tmp_path_factory: pytest.TempPathFactory, media_root: MediaRoot, start_daemon: StartDaemon
) -> None:
    """A backend crash takes the server through crash recovery, so the database does not
    answer right after; the second loss while the same job runs counts its attempt."""
    with own_cluster(tmp_path_factory, "crash-pg") as (_cluster, url):
        with connect(url, autocommit=True) as conn:
            conn.execute(
                "UPDATE heaters_db_settings SET value = '2' WHERE name = 'job_max_attempts'"
            )
            # The fast test cluster commits asynchronously: a crash would lose the daemon's
            # committed claims (the job back to queued, its attempt undone) unless every commit
            # is written first, as on a production server.
            conn.execute("ALTER SYSTEM SET synchronous_commit = on")
            conn.execute("SELECT pg_reload_conf()")
            conn.execute(
                "CREATE FUNCTION crash_own_backend() RETURNS trigger LANGUAGE plpython3u AS "
                "$$\nimport os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n$$"
            )
            conn.execute(
                "CREATE TRIGGER crash_own_backend BEFORE INSERT ON embeddings "
                "FOR EACH ROW EXECUTE FUNCTION crash_own_backend()"
            )
            insert_clips(conn, [media_root.good("crashes-its-backend.mp4")])
        daemon = start_daemon(url, "--retry-delay", "0.2")

        def the_job() -> dict | None:  # each crash also ends this test's sessions
            try:
                with connect(url, autocommit=True) as own:
                    return job_rows(own)[0]
            except (psycopg.Error, DatabaseUnavailable):
                return None

        wait_until(
            lambda: (the_job() or {}).get("status") == "dead",
            DAEMON_START_TIMEOUT + 60,
            what=lambda: f"the crashing job to be dead-lettered\n{daemon.log()}",
        )
        row = the_job()
        assert row is not None and row["attempts"] == 2, row  # bounded: max_attempts
        assert "connection lost while the job ran" in row["last_error"], row["last_error"]
        log = daemon.log()
        # Two losses counted (the first may be given back, or counted when the database
        # answered before the crash recovery began).
        assert log.count("action=job_connection_lost") >= 2 and "action=db_reconnected" in log
        assert daemon.alive(), log


def test_a_training_job_does_not_hold_prefetched_embed_leases(
    db_url: str,
    conn: psycopg.Connection,
    tiny_variant: int,
    tiny_model_dir: Path,
    media_root: MediaRoot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="heaters_db.worker.loop")
    seen: list[tuple[int, int]] = []

    def train(connect_: Callable[[], psycopg.Connection], job: Job, _settings: Settings) -> dict:
        with connect_() as own:  # what other workers see while this one trains
            seen.append(
                own.execute(
                    "SELECT count(*) FILTER (WHERE status = 'running'), "
                    "count(*) FILTER (WHERE status = 'queued') FROM pipeline_jobs "
                    "WHERE kind = 'embed'"
                ).fetchone()
            )
        return {}

    clip_ids = insert_clips(conn, [media_root.good(f"prefetch-{i}.mp4") for i in range(6)])
    settings = settings_for(db_url, tiny_model_dir, media_root)
    daemon = Daemon(
        settings,
        db_url,
        handlers={"embed": EmbedHandler(settings, batch_size=1), "train_head": train},
    )
    thread = threading.Thread(target=daemon.run, daemon=True)
    try:
        with connect(db_url) as locker:
            # The first batch's write waits on this row lock while the second is prefetched.
            locker.execute("SELECT 1 FROM clips WHERE id = %s FOR UPDATE", (clip_ids[0],))
            thread.start()
            wait_until(lambda: blocked_on_lock(conn), 60, what="the daemon mid-write")
            wait_until(
                lambda: list(statuses(conn).values()).count("running") == 2, 30, what="a prefetch"
            )
            conn.execute(
                "INSERT INTO pipeline_jobs (kind, mode) VALUES ('train_head', 'trick_similarity')"
            )
            locker.rollback()
        wait_until(lambda: embedding_count(conn, clip_ids) == 6 and seen, 90, what="all jobs")
    finally:
        daemon.request_stop()
        thread.join(30)
    ((running, queued),) = seen
    assert running == 0 and queued > 0, seen  # the prefetched batch went back to the queue
    assert any("prefetched embed job" in r.getMessage() for r in caplog.records)
    assert all(r["attempts"] == 1 for r in job_rows(conn) if r["kind"] == "embed")


def test_a_device_the_host_does_not_have_fails_before_any_job_is_claimed(env: DaemonDb) -> None:
    (clip,) = insert_clips(env.conn, [env.media.good("untouched.mp4")])
    before = [r for r in jobs_by_id(env.conn).values() if r["clip_id"] == clip]
    daemon = env.start(env.url, "--once", "--device", "cuda:7")
    assert daemon.process.wait(DAEMON_START_TIMEOUT) == 1
    assert "error: device 'cuda:7' requested but CUDA is not available" in daemon.log()
    assert [r for r in jobs_by_id(env.conn).values() if r["clip_id"] == clip] == before


def test_an_error_every_reconnect_meets_again_backs_off_and_once_gives_up(env: DaemonDb) -> None:
    """A claim the database refuses every time (here a trigger, as a broken upgrade or an
    operator's freeze would): a reconnect used to reset the backoff and --once's count, so the
    daemon retried every 0.5 s forever. Without progress between errors the backoff grows and
    --once exits 1; the job is left as it was."""
    env.conn.execute(
        """
        CREATE FUNCTION refuse_claims() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.status = 'running' THEN RAISE EXCEPTION 'claims are frozen'; END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_claims BEFORE UPDATE ON pipeline_jobs
            FOR EACH ROW EXECUTE FUNCTION refuse_claims();
        """
    )
    (clip,) = insert_clips(env.conn, [env.media.good("frozen-claims.mp4")])
    before = [r for r in jobs_by_id(env.conn).values() if r["clip_id"] == clip]
    daemon = env.start(env.url, "--once")
    assert daemon.process.wait(DAEMON_START_TIMEOUT) == 1, daemon.log()
    log_text = daemon.log()
    assert "claims are frozen" in log_text and "giving up (--once)" in log_text
    for backoff in ("retrying in 0.5 s", "retrying in 1.0 s", "retrying in 2.0 s"):
        assert backoff in log_text, log_text
    assert [r for r in jobs_by_id(env.conn).values() if r["clip_id"] == clip] == before
