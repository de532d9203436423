"""heaters' own queries (lib/heaters/processing/embed/search.ex, translated from Ecto to SQL)
against a heaters-shaped database where heaters-db has added V-JEPA 2 rows to `embeddings`:
what keeps working, what heaters must change (README, "Using an existing heaters database"),
and what heaters-db offers instead."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from heaters_db import migrations
from heaters_db.db import connect
from heaters_db.queries import query
from tests.support.heaters_schema import create_heaters_schema

CLIP_MODEL, CLIP_STRATEGY = "openai/clip-vit-base-patch32", "keyframe_multi_avg"
# search.ex similar_clips/5: the main clip's vector, then its neighbours (filters optional).
MAIN_VECTOR = "SELECT e.embedding FROM embeddings e WHERE e.clip_id = %(clip)s"
MAIN_VECTOR_FILTERED = MAIN_VECTOR + " AND e.model_name = %(m)s AND e.generation_strategy = %(g)s"
NEIGHBOURS = (
    "SELECT c.id, round((1 - (e.embedding <=> %(v)s)) * 100)::int AS similarity_pct "
    "FROM embeddings e JOIN clips c ON c.id = e.clip_id AND c.ingest_state = 'embedded' "
    "WHERE e.clip_id <> %(clip)s {filter} ORDER BY e.embedding <=> %(v)s LIMIT 10 OFFSET 0"
)
FILTER = "AND e.model_name = %(m)s AND e.generation_strategy = %(g)s"


@pytest.fixture
def heaters(empty_db_url: str) -> Iterator[psycopg.Connection]:
    """heaters' schema and rows, migrated, with V-JEPA 2 rows (3-d here) written the way the
    daemon writes them, for clips 1-3."""
    with connect(empty_db_url, autocommit=True) as conn:
        create_heaters_schema(conn)
        migrations.upgrade(empty_db_url)
        model, strategy = conn.execute(
            "UPDATE embedding_variants SET dim = 3 WHERE is_default "
            "RETURNING model_name, generation_strategy"
        ).fetchone()
        for clip_id, vector in ((1, "[1,0,0]"), (2, "[0.9,0.1,0]"), (3, "[0,1,0]")):
            conn.execute(
                query("embeddings.sql", "upsert_embedding"),
                {"clip_id": clip_id, "embedding": vector, "model_name": model,
                 "model_version": "test", "generation_strategy": strategy, "embedding_dim": 3},
            )  # fmt: skip
        yield conn


def test_unfiltered_search_breaks_in_heaters_as_soon_as_a_clip_has_two_rows(
    heaters: psycopg.Connection,
) -> None:
    # Repo.one! raises Ecto.MultipleResultsError on this (CLIP, SigLIP and V-JEPA 2 rows)...
    assert len(heaters.execute(MAIN_VECTOR, {"clip": 1}).fetchall()) == 3
    # ... and the neighbour query over every model compares vectors of different dimensions.
    vector = heaters.execute(MAIN_VECTOR_FILTERED, {"clip": 1, "m": CLIP_MODEL, "g": CLIP_STRATEGY})
    with pytest.raises(psycopg.errors.DataException, match="different vector dimensions"):
        heaters.execute(NEIGHBOURS.format(filter=""), {"clip": 1, "v": vector.fetchone()[0]})


def test_search_with_model_and_strategy_filters_keeps_working(heaters: psycopg.Connection) -> None:
    params = {"clip": 1, "m": CLIP_MODEL, "g": CLIP_STRATEGY}
    (vector,) = heaters.execute(MAIN_VECTOR_FILTERED, params).fetchall()
    neighbours = heaters.execute(NEIGHBOURS.format(filter=FILTER), params | {"v": vector[0]})
    assert [row[0] for row in neighbours.fetchall()] == [2]  # only CLIP rows, only embedded clips
    # has_embedding?/3 and the random clip with a model filter.
    exists = heaters.execute(
        "SELECT EXISTS (SELECT 1 FROM embeddings WHERE clip_id = %s AND model_name = %s "
        "AND generation_strategy = %s)",
        (1, CLIP_MODEL, CLIP_STRATEGY),
    )
    assert exists.fetchone() == (True,)
    random_clip = heaters.execute(
        "SELECT c.id FROM embeddings e JOIN clips c ON c.id = e.clip_id AND c.ingest_state = "
        "'embedded' WHERE e.model_name = %s ORDER BY random() LIMIT 1",
        (CLIP_MODEL,),
    )
    assert random_clip.fetchone()[0] in (1, 2)
    # heaters can still write its keyframe embeddings beside heaters-db's rows.
    heaters.execute(
        "INSERT INTO embeddings (clip_id, embedding, model_name, generation_strategy, embedding_dim) "
        "VALUES (3, '[0,0,1,0]', %s, %s, 4)",
        (CLIP_MODEL, CLIP_STRATEGY),
    )


def test_filter_options_list_strategies_heaters_enum_must_know(heaters: psycopg.Connection) -> None:
    # embedded_filter_opts/0 loads these through Ecto.Enum, which lists only keyframe_* today.
    strategies = [
        row[0]
        for row in heaters.execute(
            "SELECT DISTINCT generation_strategy FROM embeddings ORDER BY generation_strategy"
        ).fetchall()
    ]
    assert strategies == [
        "keyframe_multi",
        "keyframe_multi_avg",
        "keyframe_single",
        "video_full_clip",
    ]
    allowed = heaters.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conname = 'generation_strategy_must_be_valid'"
    ).fetchone()[0]
    for strategy in ("video_full_clip", "video_centered_64", "video_trick_window", *strategies):
        assert f"'{strategy}'" in allowed


def test_similar_clips_from_an_untyped_prepared_statement(heaters: psycopg.Connection) -> None:
    """What heaters-db offers instead: one function, one space per mode. Postgrex (like any
    driver that prepares with untyped parameters) lets the server infer $1 and $2."""
    heaters.execute(
        "PREPARE similar_embedded AS SELECT c.id, s.distance FROM similar_clips($1, 'trick', $2) s "
        "JOIN clips c ON c.id = s.clip_id WHERE c.ingest_state = 'embedded' ORDER BY s.rank"
    )
    rows = heaters.execute("EXECUTE similar_embedded(1, 5)").fetchall()
    assert [row[0] for row in rows] == [2]  # clip 3 is not 'embedded' in heaters' sense
    (types,) = heaters.execute(
        "SELECT parameter_types::text FROM pg_prepared_statements WHERE name = 'similar_embedded'"
    ).fetchone()
    # The double precision overload (integral check, then the integer function) serves them.
    assert types == '{"double precision","double precision"}'
    with pytest.raises(
        psycopg.errors.InvalidParameterValue, match="clip_id must be a whole number"
    ):
        heaters.execute("EXECUTE similar_embedded(1.5, 5)")
