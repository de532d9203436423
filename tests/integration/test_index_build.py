"""HNSW builds with CREATE INDEX CONCURRENTLY from the client: a heaters-side insert never waits
for one (a plain CREATE INDEX would queue it behind its SHARE lock), and an index left INVALID by
an interrupted build is built again. A head index the worker must build through the owner's
function (a plain build) does not hold up embedding inserts either: the trigger queues their
projection."""

from __future__ import annotations

import threading

import numpy as np
import psycopg

from heaters_db.daemon import Daemon
from heaters_db.db import connect
from heaters_db.index_build import build_concurrently
from heaters_db.settings import Settings
from tests.integration.conftest import wait_until
from tests.integration.test_apply_head_sql import insert_head, random_head
from tests.integration.test_projection_freshness import add_clips_with_embeddings, assert_fresh

DIM = 1024  # the seeded default variant


def default_variant(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT id FROM embedding_variants WHERE is_default").fetchone()[0]


def insert_embedding(conn: psycopg.Connection, name: str) -> None:
    clip_id = conn.execute(
        "INSERT INTO clips (clip_identifier) VALUES (%s) RETURNING id", (name,)
    ).fetchone()[0]
    conn.execute(
        "INSERT INTO embeddings (clip_id, embedding, model_name, generation_strategy) "
        "SELECT %s, %s, model_name, generation_strategy FROM embedding_variants WHERE is_default",
        (clip_id, np.random.default_rng(clip_id).normal(size=DIM).astype(np.float32)),
    )


def index_state(conn: psycopg.Connection, name: str) -> bool | None:
    row = conn.execute(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname = %s",
        (name,),
    ).fetchone()
    return None if row is None else row[0]


def test_an_insert_does_not_wait_for_a_variant_index_build(
    db_url: str, conn: psycopg.Connection
) -> None:
    variant = default_variant(conn)
    for number in range(3):
        insert_embedding(conn, f"before-{number}")
    result: dict = {}
    with connect(db_url) as open_writer:
        # A writer in the middle of its transaction: the build has to wait for it to finish.
        insert_embedding(open_writer, "open-writer")

        def build() -> None:
            with connect(db_url, autocommit=True) as own:
                result.update(build_concurrently(own, "variant", variant))

        builder = threading.Thread(target=build)
        builder.start()
        wait_until(
            lambda: conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE 'CREATE INDEX CONCURRENTLY%%'"
            ).fetchone(),
            30,
            what="the build waiting for the open writer",
        )
        # Meanwhile heaters inserts: it must not queue behind the build.
        with connect(db_url, autocommit=True) as heaters:
            heaters.execute("SET lock_timeout = '2s'")
            insert_embedding(heaters, "during-build")
        open_writer.commit()
    builder.join(60)
    assert result["built"] is True and result["index"] == f"embeddings_hnsw_variant_{variant}"
    assert index_state(conn, result["index"]) is True
    with connect(db_url, autocommit=True) as own:  # built already: nothing to do
        assert build_concurrently(own, "variant", variant)["built"] is False


def test_an_invalid_index_left_by_an_interrupted_build_is_built_again(
    db_url: str, conn: psycopg.Connection
) -> None:
    variant = default_variant(conn)
    insert_embedding(conn, "one")
    with connect(db_url, autocommit=True) as own:
        name = build_concurrently(own, "variant", variant)["index"]
    conn.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", (name,))
    assert index_state(conn, name) is False
    with connect(db_url, autocommit=True) as own:
        assert build_concurrently(own, "variant", variant)["built"] is True
    assert index_state(conn, name) is True


def test_a_login_that_does_not_own_the_table_builds_through_the_owner_function(
    worker_url: str, db_url: str, conn: psycopg.Connection, caplog
) -> None:
    """heaters_worker may not CREATE INDEX on embeddings at all: the build goes through
    ensure_variant_index (the owner's rights) instead of failing, and says it blocks writes."""
    variant = default_variant(conn)
    insert_embedding(conn, "worker-built")
    with connect(worker_url, autocommit=True) as worker, caplog.at_level("WARNING"):
        result = build_concurrently(worker, "variant", variant)
    assert result["built"] is True
    assert index_state(conn, result["index"]) is True
    assert "not the table's owner" in caplog.text
    with connect(db_url, autocommit=True) as owner:
        assert build_concurrently(owner, "variant", variant)["built"] is False


def test_an_insert_does_not_wait_for_a_head_index_built_through_the_owner_function(
    worker_url: str, db_url: str, conn: psycopg.Connection
) -> None:
    """The worker builds a new head's index through ensure_head_index: a plain CREATE INDEX,
    whose SHARE lock on projected_embeddings lasts the whole build. An embedding inserted
    meanwhile would have waited for it in the projection trigger; it commits at once, its rows
    left to a catch-up job the daemon runs once the build is done."""
    live = insert_head(conn, random_head(11), 1, "candidate")
    conn.execute("SELECT activate_head(%s)", (live,))
    candidate = insert_head(conn, random_head(12), 2, "candidate")
    add_clips_with_embeddings(conn, 3)
    conn.execute("SELECT refresh_head_projections(%s)", (candidate,))
    with connect(worker_url) as builder:  # the build's transaction stays open: its lock holds
        builder.execute("SELECT ensure_head_index(%s)", (candidate,))
        bases: dict = {}

        def heaters_insert() -> None:
            with connect(db_url, autocommit=True) as heaters:
                bases.update(add_clips_with_embeddings(heaters, 2))

        # Without the queued projection the insert waits for the build's commit, below.
        inserter = threading.Thread(target=heaters_insert)
        inserter.start()
        inserter.join(60)
        assert not inserter.is_alive(), "the insert waited for the head index build"
        assert conn.execute(
            "SELECT count(*) FROM projected_embeddings WHERE projection_head_id = %s "
            "AND clip_id = ANY(%s)",
            (live, list(bases)),
        ).fetchone() == (0,)
        builder.commit()
    (reason,) = conn.execute(
        "SELECT payload ->> 'reason' FROM pipeline_jobs WHERE kind = 'reproject' "
        "AND projection_head_id = %s AND status = 'queued' AND payload ? 'catch_up'",
        (live,),
    ).fetchone()
    assert "locked against writes" in reason
    assert Daemon(Settings(device="cpu"), worker_url, kinds=["reproject"], once=True).run() == 0
    for clip_id, base in bases.items():
        assert_fresh(conn, live, clip_id, base)
