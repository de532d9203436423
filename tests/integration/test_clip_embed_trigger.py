"""The clips trigger: a clip that gets a video is queued once per enabled variant, one NOTIFY."""

from __future__ import annotations

import json

import psycopg

from heaters_db.db import connect


def pending_jobs(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT clip_id, variant_id, status FROM pipeline_jobs WHERE kind = 'embed' "
        "ORDER BY clip_id, variant_id, id"
    ).fetchall()


def add_variant(conn: psycopg.Connection, strategy: str, enabled: bool) -> int:
    return conn.execute(
        "INSERT INTO embedding_variants (model_name, generation_strategy, enabled) "
        "VALUES ('facebook/vjepa2-vitl-fpc64-256', %s, %s) RETURNING id",
        (strategy, enabled),
    ).fetchone()[0]


def test_clip_with_video_is_queued_per_enabled_variant(conn: psycopg.Connection) -> None:
    default = conn.execute("SELECT id FROM embedding_variants WHERE is_default").fetchone()[0]
    centered = add_variant(conn, "video_centered_64", enabled=True)
    add_variant(conn, "video_trick_window", enabled=False)

    conn.execute(
        "INSERT INTO clips (clip_identifier, clip_filepath) "
        "VALUES ('a', 'clips/a.mp4'), ('b', NULL), ('c', 's3://bucket/clips/c.mp4')"
    )
    assert pending_jobs(conn) == [
        (1, default, "queued"),
        (1, centered, "queued"),
        (3, default, "queued"),
        (3, centered, "queued"),
    ]

    # Another column changing is not a new video; a clip getting its video is.
    conn.execute("UPDATE clips SET ingest_state = 'exported'")
    conn.execute("UPDATE clips SET clip_filepath = 'clips/b.mp4' WHERE id = 2")
    assert [job[0] for job in pending_jobs(conn)] == [1, 1, 2, 2, 3, 3]

    # A new file while the old job is still pending: the pending job covers it (no duplicate).
    conn.execute("UPDATE clips SET clip_filepath = 'clips/a_v2.mp4' WHERE id = 1")
    assert [job[0] for job in pending_jobs(conn)] == [1, 1, 2, 2, 3, 3]
    # Once that job is done, a new file is a new job.
    conn.execute("UPDATE pipeline_jobs SET status = 'done' WHERE clip_id = 1")
    conn.execute("UPDATE clips SET clip_filepath = 'clips/a_v3.mp4' WHERE id = 1")
    assert [job for job in pending_jobs(conn) if job[0] == 1] == [
        (1, default, "done"),
        (1, default, "queued"),
        (1, centered, "done"),
        (1, centered, "queued"),
    ]
    # Losing the video enqueues nothing.
    conn.execute("UPDATE clips SET clip_filepath = NULL WHERE id = 3")
    assert len(pending_jobs(conn)) == 8


def test_bulk_insert_sends_one_notify(conn: psycopg.Connection, db_url: str) -> None:
    with connect(db_url, autocommit=True) as listener:
        listener.execute("LISTEN heaters_db_jobs")
        conn.execute(
            "INSERT INTO clips (clip_identifier, clip_filepath) "
            "SELECT 'bulk' || i, 'clips/bulk_' || i || '.mp4' FROM generate_series(1, 1000) i"
        )
        conn.execute("INSERT INTO clips (clip_identifier) VALUES ('no video')")
        conn.execute("SELECT pg_notify('heaters_db_jobs', 'end-of-test')")
        notes = [n.payload for n in listener.notifies(timeout=5, stop_after=2)]
    # The clip without a video sent nothing: the marker is the second and last notification.
    assert len(notes) == 2 and notes[1] == "end-of-test"
    assert json.loads(notes[0]) == {"kind": "embed", "count": 1000}
    assert conn.execute(
        "SELECT count(*), count(DISTINCT clip_id) FROM pipeline_jobs WHERE kind = 'embed'"
    ).fetchone() == (1000, 1000)
