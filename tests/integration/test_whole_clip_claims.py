"""Whole-clip claims: claim_jobs hands out a clip's runnable embed jobs together, so a clip with
a full-clip and a window variant is decoded once (heaters_db/moments.py) even when the daemon
claims one job at a time; and the rules around it: backoff, locks, how max_jobs counts."""

from __future__ import annotations

import re

import psycopg

from heaters_db.db import connect
from tests.integration.conftest import MediaRoot, insert_clips, job_rows
from tests.integration.test_embed_cli import Invoke, invoke  # noqa: F401
from tests.integration.test_moments import variants  # noqa: F401

CLAIM = (
    "SELECT clip_id, variant_id FROM claim_jobs('w', ARRAY['embed'], %s, 60) "
    "ORDER BY clip_id, variant_id"
)


def job_ids(conn: psycopg.Connection) -> dict[tuple[int, int], int]:
    """(clip_id, variant_id) -> embed job id."""
    rows = conn.execute("SELECT clip_id, variant_id, id FROM pipeline_jobs WHERE kind = 'embed'")
    return {(clip, variant): job for clip, variant, job in rows.fetchall()}


def queued(conn: psycopg.Connection) -> list[tuple[int, int]]:
    return conn.execute(
        "SELECT clip_id, variant_id FROM pipeline_jobs WHERE status = 'queued' ORDER BY 1, 2"
    ).fetchall()


def test_claiming_one_job_takes_its_clips_other_variant_too(
    conn: psycopg.Connection,
    variants: dict[str, int],  # noqa: F811
) -> None:
    full, windows = variants["full"], variants["windows"]
    a, b = insert_clips(conn, ["clips/a.mp4", "clips/b.mp4"])
    assert len(job_ids(conn)) == 4  # the clip trigger: one job per clip and enabled variant

    assert conn.execute(CLAIM, (1,)).fetchall() == [(a, full), (a, windows)]
    assert queued(conn) == [(b, full), (b, windows)]  # the next clip waits for the next claim
    assert conn.execute(CLAIM, (1,)).fetchall() == [(b, full), (b, windows)]


def test_max_jobs_counts_picked_jobs_and_the_last_clip_comes_whole(
    conn: psycopg.Connection,
    variants: dict[str, int],  # noqa: F811
) -> None:
    full, windows = variants["full"], variants["windows"]
    a, b, c = insert_clips(conn, ["clips/a.mp4", "clips/b.mp4", "clips/c.mp4"])
    # Picked in queue order: a/full, a/windows, b/full; b/windows joins its clip.
    claimed = conn.execute(CLAIM, (3,)).fetchall()
    assert claimed == [(a, full), (a, windows), (b, full), (b, windows)]
    assert queued(conn) == [(c, full), (c, windows)]


def test_a_sibling_in_backoff_stays_queued(
    conn: psycopg.Connection,
    variants: dict[str, int],  # noqa: F811
) -> None:
    full, windows = variants["full"], variants["windows"]
    (a,) = insert_clips(conn, ["clips/a.mp4"])
    conn.execute(
        "UPDATE pipeline_jobs SET run_after = now() + interval '1 hour' WHERE variant_id = %s",
        (windows,),
    )
    assert conn.execute(CLAIM, (1,)).fetchall() == [(a, full)]
    assert queued(conn) == [(a, windows)]


def test_a_locked_sibling_is_skipped_not_waited_for(
    db_url: str,
    conn: psycopg.Connection,
    variants: dict[str, int],  # noqa: F811
) -> None:
    full, windows = variants["full"], variants["windows"]
    (a,) = insert_clips(conn, ["clips/a.mp4"])
    sibling = job_ids(conn)[(a, windows)]
    # Another worker's claim holds the sibling's row lock at this instant.
    with connect(db_url) as holder:
        holder.execute("SELECT id FROM pipeline_jobs WHERE id = %s FOR UPDATE", (sibling,))
        conn.execute("SET statement_timeout = '5s'")  # waiting for the lock would fail the test
        assert conn.execute(CLAIM, (1,)).fetchall() == [(a, full)]
        holder.rollback()
    assert queued(conn) == [(a, windows)]  # still there for the next claim
    assert conn.execute(CLAIM, (1,)).fetchall() == [(a, windows)]


def test_daemon_with_batch_size_1_decodes_each_clip_once_for_both_variants(
    db_url: str,
    conn: psycopg.Connection,
    media_root: MediaRoot,
    variants: dict[str, int],  # noqa: F811
    start_daemon,
) -> None:
    keys = [media_root.good(f"claims-{i}.mp4", num_frames=30, fps=10) for i in range(2)]
    clip_ids = insert_clips(conn, keys)
    daemon = start_daemon(db_url, "--once", "--batch-size", "1")
    assert daemon.wait(180) == 0, daemon.log()
    jobs = job_rows(conn)
    assert [job["status"] for job in jobs] == ["done"] * 4, daemon.log()
    # The database: each clip's two jobs came in one claim, each clip in a claim of its own.
    started = {}
    for job in jobs:
        started.setdefault(job["clip_id"], set()).add(job["started_at"])
    assert all(len(times) == 1 for times in started.values()), started
    assert len(set.union(*started.values())) == 2
    assert conn.execute("SELECT count(*) FROM moment_embeddings").fetchone()[0] >= 2 * 3
    # The log: one decode pass per clip, and it served both variants.
    passes = re.findall(r"action=decode_pass clip_id=(\d+) variant_ids=([\d,]+)", daemon.log())
    both = {str(variants["full"]), str(variants["windows"])}
    assert sorted(int(clip) for clip, _ in passes) == sorted(clip_ids), daemon.log()
    assert all(set(ids.split(",")) == both for _, ids in passes), passes
