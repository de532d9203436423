"""Projected rows are never stale and never break a writer: the embeddings trigger projects a
statement's rows in one apply_head_batch call, records the base vector's checksum, skips a
broken head with a warning; activate_head refreshes rows whose base changed, including one
re-embedded while the activation runs."""

from __future__ import annotations

import threading

import numpy as np
import psycopg
import pytest

from heaters_db import migrations
from heaters_db.db import connect
from heaters_db.learning import reproject
from heaters_db.learning.reproject import base_checksums
from tests.integration.conftest import wait_until
from tests.integration.test_apply_head_sql import (
    INPUT_DIM,
    apply_in_sql,
    insert_head,
    random_head,
    vector_text,
)

RNG = np.random.default_rng(7)


def add_clips_with_embeddings(conn: psycopg.Connection, count: int) -> dict[int, np.ndarray]:
    """Clips (no video, so no jobs) with a base embedding of the default variant each."""
    vectors = RNG.normal(size=(count, INPUT_DIM)).astype(np.float32)
    ids = [
        row[0]
        for row in conn.execute(
            "INSERT INTO clips (clip_identifier) SELECT 'fresh-' || g FROM generate_series(1, %s) g "
            "RETURNING id",
            (count,),
        ).fetchall()
    ]
    conn.execute(
        "INSERT INTO embeddings (clip_id, embedding, model_name, generation_strategy, embedding_dim) "
        "SELECT c, e::vector, v.model_name, v.generation_strategy, %s "
        "FROM unnest(%s::integer[], %s::text[]) AS u(c, e), "
        "(SELECT * FROM embedding_variants WHERE is_default) v",
        (INPUT_DIM, ids, [vector_text(v) for v in vectors]),
    )
    return dict(zip(ids, vectors, strict=True))


def reembed(conn: psycopg.Connection, clip_id: int) -> np.ndarray:
    vector = RNG.normal(size=INPUT_DIM).astype(np.float32)
    conn.execute(
        "UPDATE embeddings SET embedding = %s::vector WHERE clip_id = %s",
        (vector_text(vector), clip_id),
    )
    return vector


def projected(conn: psycopg.Connection, head_id: int, clip_id: int) -> tuple[np.ndarray, str]:
    text, checksum = conn.execute(
        "SELECT embedding::text, base_checksum FROM projected_embeddings "
        "WHERE projection_head_id = %s AND clip_id = %s",
        (head_id, clip_id),
    ).fetchone()
    return np.array(text.strip("[]").split(","), dtype=np.float64), checksum


def assert_fresh(conn: psycopg.Connection, head_id: int, clip_id: int, base: np.ndarray) -> None:
    vector, checksum = projected(conn, head_id, clip_id)
    np.testing.assert_allclose(vector, apply_in_sql(conn, head_id, base), atol=1e-6)
    assert checksum == base_checksums(base[None, :])[0]


def test_bulk_insert_is_projected_in_one_batch_equal_to_apply_head(
    conn: psycopg.Connection,
) -> None:
    head_id = insert_head(conn, random_head(1), 1, "candidate")
    conn.execute("SELECT activate_head(%s)", (head_id,))
    bases = add_clips_with_embeddings(conn, 40)  # one INSERT statement
    for clip_id, base in bases.items():
        assert_fresh(conn, head_id, clip_id, base)


def test_reembedding_during_activation_and_while_retired_leaves_no_stale_row(
    db_url: str, conn: psycopg.Connection
) -> None:
    bases = add_clips_with_embeddings(conn, 6)
    first, moved, later = list(bases)[:3]
    head_id = insert_head(conn, random_head(2), 1, "candidate")
    assert conn.execute("SELECT refresh_head_projections(%s)", (head_id,)).fetchone()[0] == 6

    # A writer re-embeds a clip and commits only once the activation waits for its lock:
    # the activation's first pass has seen the old vector.
    with connect(db_url) as writer:
        bases[moved] = reembed(writer, moved)
        result: dict = {}

        def activate() -> None:
            with connect(db_url, autocommit=True) as own:
                result["value"] = own.execute("SELECT activate_head(%s)", (head_id,)).fetchone()[0]

        activation = threading.Thread(target=activate)
        activation.start()
        wait_until(
            lambda: conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE 'SELECT activate_head%%'"
            ).fetchone(),
            30,
            what="the activation waiting for the writer",
        )
        writer.commit()
    activation.join(30)
    assert result["value"]["caught_up"] == 1  # the re-embedded clip, under the lock
    for clip_id, base in bases.items():
        assert_fresh(conn, head_id, clip_id, base)

    # Retired, then re-embedded, then back: the rollback refreshes its row.
    newer = insert_head(conn, random_head(3), 2, "candidate")
    conn.execute("SELECT activate_head(%s)", (newer,))
    bases[later] = reembed(conn, later)  # projected under the active head only
    assert_fresh(conn, newer, later, bases[later])
    stale, _ = projected(conn, head_id, later)
    assert not np.allclose(stale, apply_in_sql(conn, head_id, bases[later]), atol=1e-6)
    conn.execute("SELECT rollback_head('spot_similarity')")
    for clip_id, base in bases.items():
        assert_fresh(conn, head_id, clip_id, base)
    assert first in bases


def test_a_deleted_or_moved_embedding_takes_its_projections_with_it(
    conn: psycopg.Connection,
) -> None:
    # Projections are derived rows: once a clip has no base vector of a head's variant, serving
    # its old projection would answer similar_clips from a vector that no longer exists.
    bases = add_clips_with_embeddings(conn, 6)
    gone, moved, kept, *_ = list(bases)
    active = insert_head(conn, random_head(5), 1, "candidate")
    conn.execute("SELECT activate_head(%s)", (active,))
    retired = insert_head(conn, random_head(6), 2, "candidate")
    conn.execute("SELECT refresh_head_projections(%s)", (retired,))

    def heads_projecting(clip_id: int) -> set[int]:
        rows = conn.execute(
            "SELECT projection_head_id FROM projected_embeddings WHERE clip_id = %s", (clip_id,)
        ).fetchall()
        return {row[0] for row in rows}

    assert heads_projecting(gone) == heads_projecting(moved) == {active, retired}
    conn.execute("DELETE FROM embeddings WHERE clip_id = %s", (gone,))
    # Moved to another variant: no longer a base vector of these heads' variant either.
    conn.execute("UPDATE embeddings SET model_name = 'another/model' WHERE clip_id = %s", (moved,))
    assert heads_projecting(gone) == heads_projecting(moved) == set()
    assert heads_projecting(kept) == {active, retired}
    assert_fresh(conn, active, kept, bases[kept])
    with pytest.raises(psycopg.errors.NoDataFound, match=f"clip {gone} has no"):
        conn.execute("SELECT * FROM similar_clips(%s, 'spot')", (gone,))

    # TRUNCATE fires no DELETE trigger: its own takes every projection with it, and the clips
    # come back, freshly projected, when they are embedded again.
    conn.execute("TRUNCATE embeddings")
    assert conn.execute("SELECT count(*) FROM projected_embeddings").fetchone() == (0,)
    with pytest.raises(psycopg.errors.NoDataFound, match=f"clip {kept} has no"):
        conn.execute("SELECT * FROM similar_clips(%s, 'spot')", (kept,))
    for clip_id, base in add_clips_with_embeddings(conn, 2).items():
        assert_fresh(conn, active, clip_id, base)


def test_the_upgrade_removes_projections_an_earlier_version_left_behind(db_url: str) -> None:
    with connect(db_url, autocommit=True) as conn:
        bases = add_clips_with_embeddings(conn, 3)
        gone, kept, _ = list(bases)
        head_id = insert_head(conn, random_head(7), 1, "candidate")
        conn.execute("SELECT activate_head(%s)", (head_id,))
    migrations.downgrade(db_url, "0021")  # no trigger: the projection outlives its embedding
    with connect(db_url, autocommit=True) as conn:
        conn.execute("DELETE FROM embeddings WHERE clip_id = %s", (gone,))
        left = "SELECT clip_id FROM projected_embeddings WHERE projection_head_id = %s"
        assert gone in {row[0] for row in conn.execute(left, (head_id,)).fetchall()}
        migrations.upgrade(db_url)
        assert {row[0] for row in conn.execute(left, (head_id,)).fetchall()} == set(bases) - {gone}
        assert kept in bases


def test_a_broken_active_head_never_fails_an_embedding_insert(conn: psycopg.Connection) -> None:
    head_id = insert_head(conn, random_head(4), 1, "candidate")
    conn.execute("SELECT activate_head(%s)", (head_id,))
    conn.execute(
        "UPDATE projection_heads SET weights = 'not safetensors'::bytea, "
        "weights_checksum = encode(sha256('not safetensors'::bytea), 'hex') WHERE id = %s",
        (head_id,),
    )
    notices: list[str] = []
    conn.add_notice_handler(lambda diagnostic: notices.append(diagnostic.message_primary or ""))
    bases = add_clips_with_embeddings(conn, 3)  # heaters' insert goes through
    assert (
        conn.execute(
            "SELECT count(*) FROM embeddings WHERE clip_id = ANY (%s)", (list(bases),)
        ).fetchone()[0]
        == 3
    )
    assert (
        conn.execute(
            "SELECT count(*) FROM projected_embeddings WHERE clip_id = ANY (%s)", (list(bases),)
        ).fetchone()[0]
        == 0
    )  # not projected yet
    assert any(f"projection head {head_id} could not project 3" in n for n in notices), notices


def test_prune_frees_older_retired_heads_and_a_pruned_head_can_come_back(
    db_url: str, conn: psycopg.Connection
) -> None:
    from heaters_db.learning.store import prune_retired_heads

    bases = add_clips_with_embeddings(conn, 5)
    heads = []
    for version in range(1, 5):  # v1..v3 retired in turn, v4 active
        head_id = insert_head(conn, random_head(10 + version), version, "candidate")
        conn.execute("SELECT activate_head(%s)", (head_id,))
        conn.execute("SELECT ensure_head_index(%s)", (head_id,))
        heads.append(head_id)

    def rows_of(head_id: int) -> int:
        return conn.execute(
            "SELECT count(*) FROM projected_embeddings WHERE projection_head_id = %s", (head_id,)
        ).fetchone()[0]

    def has_index(head_id: int) -> bool:
        return bool(
            conn.execute(
                "SELECT 1 FROM pg_indexes WHERE indexname = %s",
                (f"projected_embeddings_hnsw_head_{head_id}",),
            ).fetchone()
        )

    with connect(db_url, autocommit=True) as own:
        pruned = prune_retired_heads(own, keep=1)
    assert [p["id"] for p in pruned] == heads[:2] and all(p["rows"] == 5 for p in pruned)
    assert [rows_of(h) for h in heads] == [0, 0, 5, 5]
    assert [has_index(h) for h in heads] == [False, False, True, True]
    statuses = dict(conn.execute("SELECT id, status FROM projection_heads").fetchall())
    assert [statuses[h] for h in heads] == ["retired", "retired", "retired", "active"]
    with connect(db_url, autocommit=True) as own:
        assert prune_retired_heads(own, keep=1) == []  # nothing more to do

    conn.execute("SELECT activate_head(%s)", (heads[0],))  # a pruned head comes back whole
    for clip_id, base in bases.items():
        assert_fresh(conn, heads[0], clip_id, base)
    assert has_index(heads[0])


def test_re_projecting_the_active_head_keeps_what_was_embedded_meanwhile(
    conn: psycopg.Connection, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-projecting a head that serves (`heads activate` on the active head, a retried
    reproject job) replaces its rows from one snapshot: a clip embedded, or re-embedded, after
    the snapshot but before the replacement must still end with a fresh row (it lost its row,
    or kept the old one, and no job came to fix it)."""
    bases = add_clips_with_embeddings(conn, 30)
    head_id = insert_head(conn, random_head(1), 1, "candidate")
    conn.execute("SELECT activate_head(%s)", (head_id,))
    read = reproject.read_vector_rows
    changed: dict[int, np.ndarray] = {}

    def read_with_writes_after_the_snapshot(*args, **kwargs):
        batches = read(*args, **kwargs)
        first = next(batches)  # the reader's snapshot is taken; the rows are not replaced yet
        with connect(db_url, autocommit=True) as other:
            changed.update(add_clips_with_embeddings(other, 1))
            some_clip = next(iter(bases))
            changed[some_clip] = reembed(other, some_clip)
        yield first
        yield from batches

    monkeypatch.setattr(reproject, "read_vector_rows", read_with_writes_after_the_snapshot)
    result = reproject.reproject_head(
        lambda: connect(db_url, autocommit=True), head_id, batch_rows=8
    )
    assert result["catch_up"]["caught_up"] == 2
    for clip_id, base in changed.items():
        assert_fresh(conn, head_id, clip_id, base)
    rows = "SELECT count(*) FROM projected_embeddings WHERE projection_head_id = %s"
    assert conn.execute(rows, (head_id,)).fetchone() == (31,)
