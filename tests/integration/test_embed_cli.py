"""`heaters-db embed`, `jobs` and `variant ...` through the click commands, in-process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from heaters_db.cli import cli
from heaters_db.heads.module import ProjectionHead
from heaters_db.learning import store
from heaters_db.settings import get_settings
from tests.integration.conftest import (
    TINY_DIM,
    TINY_FRAMES,
    MediaRoot,
    embedding_count,
    insert_clips,
    job_rows,
)
from tests.support.tiny_model import TINY_MODEL_NAME

Invoke = Callable[..., Result]


@pytest.fixture
def invoke(
    db_url: str,
    tiny_model_dir: Path,
    media_root: MediaRoot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Invoke]:
    """invoke("variant", "list") -> click Result, with the test database and tiny model."""
    for name, value in {
        "HEATERS_DATABASE_URL": str(db_url),
        "HEATERS_MODEL_DIR": str(tiny_model_dir),
        "HEATERS_MEDIA_ROOT": str(media_root.root),
        "HEATERS_HOME": str(tmp_path / "home"),
        "HEATERS_DEVICE": "cpu",
        "HF_HUB_OFFLINE": "1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str, expect: int = 0) -> Result:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == expect, result.output
        return result

    yield run
    get_settings.cache_clear()


def add_tiny_variant(invoke: Invoke, *extra: str) -> Result:
    return invoke(
        "variant", "add", TINY_MODEL_NAME, "video_full_clip", "--frames", str(TINY_FRAMES), *extra
    )


def test_variant_add_default_backfills_existing_clips(
    invoke: Invoke, conn: psycopg.Connection, media_root: MediaRoot
) -> None:
    seeded = conn.execute("SELECT id FROM embedding_variants WHERE is_default").fetchone()[0]
    clip_ids = insert_clips(conn, [media_root.good("cli-1.mp4"), media_root.good("cli-2.mp4")])
    conn.execute("UPDATE pipeline_jobs SET status = 'done'")  # the seeded variant's jobs ran

    result = add_tiny_variant(invoke, "--default")
    assert "added, now the default" in result.output
    assert "enqueued 2 embed jobs" in result.output
    variant_id, is_default, num_frames = conn.execute(
        "SELECT id, is_default, num_frames FROM embedding_variants WHERE model_name = %s",
        (TINY_MODEL_NAME,),
    ).fetchone()
    assert (is_default, num_frames) == (True, TINY_FRAMES)
    assert (
        conn.execute(
            "SELECT is_default FROM embedding_variants WHERE id = %s", (seeded,)
        ).fetchone()[0]
        is False
    )
    queued = [(r["clip_id"], r["variant_id"]) for r in job_rows(conn) if r["status"] == "queued"]
    assert sorted(queued) == [(clip_id, variant_id) for clip_id in clip_ids]

    # Adding it again changes nothing and enqueues nothing new.
    again = add_tiny_variant(invoke)
    assert "enabled" in again.output and "enqueued 0 embed jobs" in again.output

    listing = invoke("variant", "list").output
    assert TINY_MODEL_NAME in listing and "facebook/vjepa2-vitl-fpc64-256" in listing


def test_variant_disable_refuses_default_and_skips_queued_jobs(
    invoke: Invoke, conn: psycopg.Connection, media_root: MediaRoot
) -> None:
    add_tiny_variant(invoke, "--no-backfill")
    refused = invoke(
        "variant", "disable", "facebook/vjepa2-vitl-fpc64-256", "video_full_clip", expect=1
    )
    assert "is the default" in refused.output

    tiny = conn.execute(
        "SELECT id FROM embedding_variants WHERE model_name = %s", (TINY_MODEL_NAME,)
    ).fetchone()[0]
    # A head that serves (or may go live) from the variant's vectors keeps it enabled: new
    # clips would get no vector of it, and its mode would never find them.
    head = store.insert_head(
        conn,
        mode="spot_similarity",
        base_variant_id=tiny,
        head=ProjectionHead(TINY_DIM, 8, 16),
        status="candidate",
        trained_through_event_id=0,
        training_event_count=0,
        metrics={},
    )
    held = invoke("variant", "disable", TINY_MODEL_NAME, "video_full_clip", expect=1)
    assert f"is what spot_similarity v1 (head {head.id}, candidate) projects" in held.output
    conn.execute("UPDATE projection_heads SET status = 'rejected' WHERE id = %s", (head.id,))

    insert_clips(conn, [media_root.good("cli-1.mp4")])  # one job per enabled variant: 2
    result = invoke("variant", "disable", TINY_MODEL_NAME, "video_full_clip")
    assert "1 queued jobs skipped" in result.output
    rows = {r["variant_id"]: r for r in job_rows(conn)}
    assert rows[tiny]["status"] == "skipped" and "disabled" in rows[tiny]["last_error"]
    assert (
        conn.execute("SELECT enabled FROM embedding_variants WHERE id = %s", (tiny,)).fetchone()[0]
        is False
    )

    unknown = invoke("variant", "disable", "no/such-model", "video_full_clip", expect=1)
    assert "no embedding variant" in unknown.output


def test_changing_the_frames_of_a_variant_with_vectors_needs_reembed(
    invoke: Invoke, conn: psycopg.Connection, media_root: MediaRoot
) -> None:
    """One variant, one way of making its vectors: a new frame count is refused while vectors
    made with the old one exist (they would be compared as alike), unless --reembed re-embeds
    every clip; with no vectors yet, or the same count, nothing is refused."""
    spec = f"{TINY_MODEL_NAME}:video_full_clip"
    frames = "SELECT num_frames FROM embedding_variants WHERE model_name = %s"
    first, second = insert_clips(
        conn, [media_root.good("frames-1.mp4"), media_root.good("frames-2.mp4")]
    )
    conn.execute("UPDATE pipeline_jobs SET status = 'done'")
    add_tiny_variant(invoke, "--no-backfill")
    wider = str(2 * TINY_FRAMES)
    invoke("variant", "add", TINY_MODEL_NAME, "video_full_clip", "--frames", wider, "--no-backfill")
    add_tiny_variant(invoke, "--no-backfill")  # no vectors yet: free to change, and back
    invoke("embed", "--clip", str(first), "--variant", spec)

    refused = invoke(
        "variant", "add", TINY_MODEL_NAME, "video_full_clip", "--frames", wider, expect=1
    )
    assert f"has 1 vectors made the old way (num_frames {TINY_FRAMES} -> {wider})" in refused.output
    assert "--reembed" in refused.output
    assert conn.execute(frames, (TINY_MODEL_NAME,)).fetchone() == (TINY_FRAMES,)
    assert "enqueued 1 embed jobs" in add_tiny_variant(invoke).output  # the same count: fine

    conn.execute("UPDATE pipeline_jobs SET status = 'done'")
    done = invoke(
        "variant", "add", TINY_MODEL_NAME, "video_full_clip", "--frames", wider, "--reembed"
    )
    assert "enqueued 2 embed jobs to re-embed every clip" in done.output
    assert conn.execute(frames, (TINY_MODEL_NAME,)).fetchone() == (2 * TINY_FRAMES,)
    queued = sorted(r["clip_id"] for r in job_rows(conn) if r["status"] == "queued")
    assert queued == [first, second]


def test_embed_missing_enqueues_once(
    invoke: Invoke, conn: psycopg.Connection, media_root: MediaRoot
) -> None:
    clip_ids = insert_clips(conn, [media_root.good("cli-1.mp4"), media_root.good("cli-2.mp4")])
    conn.execute("DELETE FROM pipeline_jobs")  # as if the clips predate heaters-db

    first = invoke("embed", "--missing")
    assert "2 clips lack" in first.output and "enqueued 2 new embed jobs" in first.output
    second = invoke("embed", "--missing")
    assert "enqueued 0 new embed jobs" in second.output
    assert sorted(r["clip_id"] for r in job_rows(conn)) == clip_ids


def test_embed_clip_now_writes_embeddings_and_reports_failures(
    invoke: Invoke, conn: psycopg.Connection, media_root: MediaRoot
) -> None:
    add_tiny_variant(invoke, "--default", "--no-backfill")
    conn.execute(
        "UPDATE embedding_variants SET enabled = false WHERE model_name <> %s", (TINY_MODEL_NAME,)
    )
    good, bad = insert_clips(conn, [media_root.good("cli-1.mp4"), media_root.bad("text.mp4")])

    result = invoke("embed", "--clip", str(good))
    assert (
        f"clip {good} {TINY_MODEL_NAME}:video_full_clip:{TINY_FRAMES}: embedding" in result.output
    )
    assert embedding_count(conn, [good]) == 1
    assert conn.execute("SELECT vector_dims(embedding) FROM embeddings").fetchone()[0] == TINY_DIM
    # Idempotent: again, still one row.
    invoke("embed", "--clip", str(good), "--variant", f"{TINY_MODEL_NAME}:video_full_clip")
    assert embedding_count(conn, [good]) == 1

    failed = invoke("embed", "--clip", str(good), "--clip", str(bad), expect=1)
    assert "FAILED UnusableVideo" in failed.output and "text.mp4" in failed.output
    assert "not a readable video container" in failed.output
    assert embedding_count(conn, [bad]) == 0

    missing = invoke("embed", "--clip", "999999", expect=1)
    assert "no clip with id 999999" in missing.output


def test_jobs_shows_counts_leases_and_errors(
    invoke: Invoke, conn: psycopg.Connection, media_root: MediaRoot
) -> None:
    insert_clips(
        conn,
        [media_root.good("cli-1.mp4"), media_root.bad("zero.mp4"), media_root.good("cli-2.mp4")],
    )
    ids = [r["id"] for r in job_rows(conn)]
    conn.execute("SELECT claim_jobs('host:1:abc', ARRAY['embed'], 2, 60)")
    conn.execute(
        "SELECT fail_job(%s, 'host:1:abc', 'VideoDecodeError: clips/zero.mp4: file is empty (0 bytes)', "
        "'Traceback (most recent call last): ...')",
        (ids[1],),
    )
    output = invoke("jobs", "--traceback").output
    assert "queue" in output and "running" in output and "recent errors" in output
    assert "host:1:abc" in output  # the running lease
    assert "clips/zero.mp4: file is empty (0 bytes)" in output
    assert "Traceback (most recent call last)" in output
    as_json = invoke("jobs", "--json").output
    assert '"status"' in as_json and '"errors"' in as_json


def test_requeue_runs_a_dead_job_again_unless_newer_work_is_pending(
    invoke: Invoke, conn: psycopg.Connection, media_root: MediaRoot
) -> None:
    """A dead job, its cause fixed, runs again from attempt 1; a job not dead, an unknown id, or
    a dead embed whose clip and variant already have a pending job are left alone and said so
    (exit 1), where the SQL recipe failed on the pending-embed unique index."""
    first, second = insert_clips(conn, [media_root.good("rq-1.mp4"), media_root.good("rq-2.mp4")])
    jobs = {r["clip_id"]: r["id"] for r in job_rows(conn)}
    conn.execute("SELECT claim_jobs('host:1:abc', ARRAY['embed'], 2, 60)")
    for clip in (first, second):
        conn.execute(
            "SELECT dead_letter_job(%s, 'host:1:abc', 'ClipFileMissing: gone')", (jobs[clip],)
        )
    # The second clip's work is queued again by the backfill: its dead job must stay dead.
    assert conn.execute("SELECT enqueue_embed_jobs(%s)", ([second],)).fetchone()[0] == 1

    done = invoke("requeue", str(jobs[first]))
    assert done.output.strip() == f"job {jobs[first]} (embed) requeued"
    status = "SELECT status, attempts, last_error FROM pipeline_jobs WHERE id = %s"
    assert conn.execute(status, (jobs[first],)).fetchone() == ("queued", 0, "ClipFileMissing: gone")

    refused = invoke("requeue", str(jobs[second]), str(jobs[first]), "999999", expect=1).output
    assert (
        f"job {jobs[second]} not requeued: a queued or running job already does the same work "
        f"(Key (clip_id, variant_id)=({second}, "
    ) in refused
    assert f"job {jobs[first]} not requeued: it is queued" in refused
    assert "job 999999 not requeued: no such job" in refused
    assert conn.execute(status, (jobs[second],)).fetchone()[0] == "dead"


def test_usage_errors_are_clear(invoke: Invoke) -> None:
    assert "either --missing or --clip" in invoke("embed", expect=2).output
    assert (
        "--variant applies to --clip"
        in invoke("embed", "--missing", "--variant", "1", expect=2).output
    )
    odd = invoke("variant", "add", TINY_MODEL_NAME, "video_full_clip", "--frames", "7", expect=2)
    assert "must be even" in odd.output
    unknown = invoke("embed", "--clip", "1", "--variant", "99999", expect=2)
    assert "no variant 99999" in unknown.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["daemon"], ["SIGTERM", "--once", "HEATERS_LEASE_SECONDS", "--kinds", "action=embed"]),
        (["embed"], ["--missing", "--clip", "daemon"]),
        (["jobs"], ["dead", "expired", "--traceback", "requeue"]),
        (["requeue"], ["dead", "attempts", "queued or running"]),
        (["variant"], ["ENABLED", "DEFAULT"]),
        (["variant", "add"], ["--frames", "--default", "backfill", "video_trick_window"]),
        (["variant", "disable"], ["default"]),
        (["variant", "list"], ["dimension"]),
    ],
)
def test_every_command_has_helpful_help(args: list[str], words: list[str]) -> None:
    output = CliRunner().invoke(cli, [*args, "--help"]).output
    for word in words:
        assert word in output, f"{' '.join(args)} --help lacks {word!r}:\n{output}"


def test_a_variant_row_the_database_refuses_fails_its_job_instead_of_looping(
    invoke: Invoke,
    conn: psycopg.Connection,
    db_url: str,
    media_root: MediaRoot,
    start_daemon,
) -> None:
    """The daemon records a new variant's dimension on its row before the first vector; an
    error there (here a trigger, as an operator's freeze or a constraint would) ended the batch
    in the queue loop, whose reconnect handed the jobs back uncharged: the daemon retried the
    same batch forever. Now it is the job's failure, counted, with the database's message."""
    add_tiny_variant(invoke, "--default", "--no-backfill")
    conn.execute(
        "UPDATE embedding_variants SET enabled = false WHERE model_name <> %s", (TINY_MODEL_NAME,)
    )
    conn.execute(
        """
        CREATE FUNCTION test_freeze_variants() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'embedding_variants is frozen for maintenance'; END $$;
        CREATE TRIGGER test_freeze_variants BEFORE UPDATE ON embedding_variants
            FOR EACH ROW EXECUTE FUNCTION test_freeze_variants();
        """
    )
    (clip_id,) = insert_clips(conn, [media_root.good("frozen.mp4")])
    daemon = start_daemon(db_url, "--once")
    assert daemon.wait(120) == 0, daemon.log()
    assert "database error in the queue loop" not in daemon.log()
    (job,) = [row for row in job_rows(conn) if row["clip_id"] == clip_id]
    assert (job["status"], job["attempts"]) == ("queued", 1)  # retried later, with backoff
    assert "embedding_variants is frozen for maintenance" in job["last_error"]
    assert embedding_count(conn, [clip_id]) == 0
