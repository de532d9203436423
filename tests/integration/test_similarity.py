"""similar_clips / similar_to_embedding against a brute-force numpy ranking, on both paths
(default variant, active projection head), their errors, and EXPLAIN proof that the HNSW
partial expression indexes serve the exact dynamic queries the functions run."""

from __future__ import annotations

import json

import numpy as np
import psycopg
import pytest
import torch

from heaters_db.heads.module import ProjectionHead
from heaters_db.heads.serialization import head_to_safetensors, weights_checksum

DEFAULT_MODEL = "facebook/vjepa2-vitl-fpc64-256"
DEFAULT_STRATEGY = "video_full_clip"
DIM = 32
HEAD_DIM = 16


# ---- helpers -----------------------------------------------------------------------------
def vector_text(values: np.ndarray) -> str:
    """pgvector text for float32 values; '%.9g' round-trips every float32 exactly."""
    return "[" + ",".join(format(float(v), ".9g") for v in np.asarray(values, np.float32)) + "]"


def add_clips(conn: psycopg.Connection, count: int) -> None:
    conn.execute(
        "INSERT INTO clips (clip_identifier) SELECT 'clip' || i FROM generate_series(1, %s) i",
        (count,),
    )


def copy_embeddings(
    conn: psycopg.Connection,
    vectors: np.ndarray,
    model: str = DEFAULT_MODEL,
    strategy: str = DEFAULT_STRATEGY,
    first_clip_id: int = 1,
) -> None:
    with conn.cursor().copy(
        "COPY embeddings (clip_id, embedding, model_name, generation_strategy, embedding_dim) "
        "FROM STDIN"
    ) as copy:
        for offset, vector in enumerate(vectors):
            copy.write_row(
                (first_clip_id + offset, vector_text(vector), model, strategy, len(vector))
            )


def copy_projections(conn: psycopg.Connection, head_id: int, vectors: np.ndarray) -> None:
    with conn.cursor().copy(
        "COPY projected_embeddings (clip_id, projection_head_id, embedding) FROM STDIN"
    ) as copy:
        for offset, vector in enumerate(vectors):
            copy.write_row((offset + 1, head_id, vector_text(vector)))


def prepare_default_variant(conn: psycopg.Connection, vectors: np.ndarray) -> int:
    """Default variant at len(vectors[0]) dims with the given vectors for clips 1..n, indexed."""
    variant_id = conn.execute(
        "UPDATE embedding_variants SET dim = %s WHERE is_default RETURNING id", (vectors.shape[1],)
    ).fetchone()[0]
    copy_embeddings(conn, vectors)
    conn.execute("SELECT ensure_variant_index(%s)", (variant_id,))
    return variant_id


def random_head(seed: int = 0, input_dim: int = DIM, output_dim: int = HEAD_DIM) -> ProjectionHead:
    """A head whose every layer (the zero-initialised residual branch too) has random weights."""
    torch.manual_seed(seed)
    head = ProjectionHead(input_dim, output_dim, 4 * output_dim)
    with torch.no_grad():
        for parameter in head.parameters():
            parameter.normal_(0.0, 0.3)
    return head.eval()


def insert_head(
    conn: psycopg.Connection, head: ProjectionHead, mode: str = "trick_similarity", version: int = 1
) -> int:
    weights = head_to_safetensors(head)
    variant_id = conn.execute("SELECT id FROM embedding_variants WHERE is_default").fetchone()[0]
    return conn.execute(
        "INSERT INTO projection_heads (mode, version, base_variant_id, architecture, weights, "
        "weights_checksum, input_dim, output_dim, status) "
        "VALUES (%s, %s, %s, %s::jsonb, %s, %s, %s, %s, 'active') RETURNING id",
        (
            mode,
            version,
            variant_id,
            json.dumps(head.architecture),
            weights,
            weights_checksum(weights),
            head.input_dim,
            head.output_dim,
        ),
    ).fetchone()[0]


def project(head: ProjectionHead, vectors: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return head(torch.from_numpy(np.asarray(vectors, np.float32))).numpy()


def brute_force(
    vectors: np.ndarray, query: np.ndarray, exclude: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(clip ids, cosine distances) of every clip (ids 1..n), nearest first, float64 maths."""
    matrix = np.asarray(vectors, np.float64)
    q = np.asarray(query, np.float64)
    distances = 1.0 - (matrix @ q) / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(q))
    ids = np.arange(1, len(matrix) + 1)
    keep = ids != exclude
    ids, distances = ids[keep], distances[keep]
    order = np.lexsort((ids, distances))
    return ids[order], distances[order]


def assert_same_ranking(
    rows: list[tuple], want_ids: np.ndarray, want_distances: np.ndarray, k: int, tol: float = 1e-5
) -> None:
    """The database's (clip_id, distance, rank) rows equal the top k of a brute-force ranking.

    Ids must match position by position, except where two brute-force distances are within
    `tol` of each other (a tie, which float32 storage may order either way).
    """
    assert len(rows) == k
    got_ids = [r[0] for r in rows]
    got_distances = np.array([r[1] for r in rows])
    assert [r[2] for r in rows] == list(range(1, k + 1))
    assert len(set(got_ids)) == k
    np.testing.assert_allclose(got_distances, want_distances[:k], atol=tol, rtol=0)
    for position, (got, want) in enumerate(zip(got_ids, want_ids[:k], strict=True)):
        if got != want:
            tied = np.abs(want_distances - want_distances[position]) <= tol
            assert got in set(want_ids[tied]), f"rank {position + 1}: got clip {got}, want {want}"


# ---- brute-force equality ------------------------------------------------------------------
N_CLIPS = 2000
QUERY_CLIPS = (1, 17, 640, 1999)


@pytest.fixture
def library(conn: psycopg.Connection) -> np.ndarray:
    """2000 clips with random 32-d default-variant vectors (indexed), plus distractor rows of
    another model and dimension in the same column; ef_search high enough for exact answers."""
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((N_CLIPS, DIM)).astype(np.float32)
    add_clips(conn, N_CLIPS + 1)  # the last clip has no embedding
    prepare_default_variant(conn, vectors)
    copy_embeddings(
        conn, rng.standard_normal((300, 8)), "openai/clip-vit-base-patch32", "keyframe_multi_avg"
    )
    conn.execute("UPDATE heaters_db_settings SET value = '400' WHERE name = 'hnsw_ef_search'")
    conn.execute("ANALYZE embeddings")
    return vectors


def test_default_variant_matches_brute_force(conn: psycopg.Connection, library: np.ndarray) -> None:
    for clip_id in QUERY_CLIPS:
        want_ids, want_distances = brute_force(library, library[clip_id - 1], exclude=clip_id)
        for mode, k in (("trick", 10), ("spot_similarity", 25)):
            rows = conn.execute(
                "SELECT clip_id, distance, rank FROM similar_clips(%s, %s, %s)", (clip_id, mode, k)
            ).fetchall()
            assert clip_id not in [r[0] for r in rows]
            assert_same_ranking(rows, want_ids, want_distances, k)
    # Default arguments: mode trick, k 10.
    rows = conn.execute("SELECT * FROM similar_clips(5)").fetchall()
    assert_same_ranking(rows, *brute_force(library, library[4], exclude=5), k=10)
    # A large k still comes back complete and in order (ef_search is capped at 1000).
    rows = conn.execute("SELECT * FROM similar_clips(3, 'trick', 1000)").fetchall()
    assert_same_ranking(rows, *brute_force(library, library[2], exclude=3), k=1000)

    query = np.random.default_rng(8).standard_normal(DIM).astype(np.float32)
    # Cosine is scale-free: a query of tiny or huge numbers (whose float32 squares underflow or
    # overflow) ranks as the same query at unit scale does.
    for scale in (1.0, 1e-25, 3e19):
        rows = conn.execute(
            "SELECT * FROM similar_to_embedding(%s::vector, 'trick', 12)",
            (vector_text(query * np.float32(scale)),),
        ).fetchall()
        assert_same_ranking(rows, *brute_force(library, query), k=12)


def test_active_head_matches_brute_force(conn: psycopg.Connection, library: np.ndarray) -> None:
    head = random_head()
    head_id = insert_head(conn, head, "trick_similarity")
    # Every clip but the last embedded one is projected; that one is projected on the fly.
    projected = project(head, library)
    copy_projections(conn, head_id, projected[:-1])
    assert conn.execute("SELECT ensure_head_index(%s)", (head_id,)).fetchone()[0] == (
        f"projected_embeddings_hnsw_head_{head_id}"
    )
    conn.execute("ANALYZE projected_embeddings")
    stored = projected[:-1]

    for clip_id in (*QUERY_CLIPS[:-1], N_CLIPS):
        query = projected[clip_id - 1]
        want = brute_force(stored, query, exclude=clip_id)
        rows = conn.execute("SELECT * FROM similar_clips(%s, 'trick', 10)", (clip_id,)).fetchall()
        assert_same_ranking(rows, *want, k=10)
        # spot has no head: it still serves the default variant.
        rows = conn.execute("SELECT * FROM similar_clips(%s, 'spot', 10)", (clip_id,)).fetchall()
        assert_same_ranking(
            rows, *brute_force(library, library[clip_id - 1], exclude=clip_id), k=10
        )

    base_query = np.random.default_rng(9).standard_normal(DIM).astype(np.float32)
    for scale in (1.0, 1e-25, 3e19):
        rows = conn.execute(
            "SELECT * FROM similar_to_embedding(%s::vector, 'trick_similarity', 15)",
            (vector_text(base_query * np.float32(scale)),),
        ).fetchall()
        assert_same_ranking(rows, *brute_force(stored, project(head, base_query[None])[0]), k=15)


def test_errors_name_the_problem(conn: psycopg.Connection) -> None:
    add_clips(conn, 5)
    prepare_default_variant(conn, np.eye(3, 4, dtype=np.float32))  # clips 1..3; 4 and 5 have none
    conn.execute("UPDATE clips SET clip_filepath = 'clips/4-first.mp4' WHERE id = 4")
    conn.execute("DELETE FROM pipeline_jobs")  # as if nobody had queued its embed job
    cases = [
        ("SELECT * FROM similar_clips(999)", "unknown clip 999"),
        ("SELECT * FROM similar_clips(NULL)", "unknown clip NULL"),
        (
            "SELECT * FROM similar_clips(4)",
            f"clip 4 has no {DEFAULT_MODEL} / {DEFAULT_STRATEGY} embedding yet (embed job: none",
        ),
        (  # `embed --missing` was advised, which queues nothing for a clip without a video
            "SELECT * FROM similar_clips(5)",
            "embedding yet: it has no video (clip_filepath is NULL), nothing to embed",
        ),
        ("SELECT * FROM similar_clips(1, 'tricks')", "unknown mode 'tricks'"),
        ("SELECT * FROM similar_clips(1, NULL)", "unknown mode NULL"),
        ("SELECT * FROM similar_clips(1, 'trick', 0)", "k must be between 1 and 1000, got 0"),
        ("SELECT * FROM similar_clips(1, 'trick', 1001)", "k must be between 1 and 1000, got 1001"),
        ("SELECT * FROM similar_clips(1, 'trick', NULL)", "k must be between 1 and 1000, got NULL"),
        ("SELECT * FROM similar_to_embedding('[1,2,3]')", "query vector has 3 dimensions"),
        ("SELECT * FROM similar_to_embedding(NULL)", "query vector is NULL"),
        ("SELECT * FROM similar_to_embedding('[1,0,0,0]', 'sp0t')", "unknown mode 'sp0t'"),
        ("SELECT * FROM similar_to_embedding('[1,0,0,0]', 'spot', -1)", "k must be between"),
    ]
    for sql, message in cases:
        with pytest.raises(psycopg.Error) as error:
            conn.execute(sql)
        assert message in error.value.diag.message_primary, (sql, error.value.diag.message_primary)

    # A clip whose embed job is waiting says so.
    conn.execute("UPDATE clips SET clip_filepath = 'clips/4.mp4' WHERE id = 4")
    with pytest.raises(psycopg.Error, match=r"embedding yet \(embed job: queued\)"):
        conn.execute("SELECT * FROM similar_clips(4)")
    # Its job done, the vector deleted since: how to get it back is said too.
    conn.execute("UPDATE pipeline_jobs SET status = 'done' WHERE kind = 'embed' AND clip_id = 4")
    with pytest.raises(psycopg.Error, match=r"vector is gone since: run heaters-db embed --miss"):
        conn.execute("SELECT * FROM similar_clips(4)")
    # k larger than the library: every other clip, once.
    rows = conn.execute("SELECT clip_id, rank FROM similar_clips(1, 'trick', 50)").fetchall()
    assert sorted(r[0] for r in rows) == [2, 3] and [r[1] for r in rows] == [1, 2]
    # A default variant whose dimension is not known yet.
    conn.execute("UPDATE embedding_variants SET dim = NULL WHERE is_default")
    with pytest.raises(psycopg.Error, match="has no dimension yet"):
        conn.execute("SELECT * FROM similar_to_embedding('[1,0,0,0]')")


# ---- the indexes serve the queries -----------------------------------------------------------
def explained_plans(conn: psycopg.Connection, sql: str, params: tuple) -> list[str]:
    """Run `sql` with auto_explain reporting every nested statement's plan as a NOTICE: these are
    the plans of the dynamic queries inside the functions, exactly as they run."""
    notices: list[str] = []
    conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
    conn.execute("LOAD 'auto_explain'")
    conn.execute(
        "SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on; "
        "SET auto_explain.log_level = notice"
    )
    conn.execute(sql, params).fetchall()
    return notices


def test_hnsw_indexes_serve_the_queries_at_10k_rows(conn: psycopg.Connection) -> None:
    n = 10_000
    rng = np.random.default_rng(11)
    add_clips(conn, n)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    variant_id = prepare_default_variant(conn, vectors)
    conn.execute("ANALYZE embeddings")

    plans = explained_plans(conn, "SELECT * FROM similar_clips(%s, 'trick', 10)", (42,))
    variant_plans = [p for p in plans if "FROM embeddings e" in p and "<=>" in p]
    assert len(variant_plans) == 1, plans
    assert (
        f"Index Scan using embeddings_hnsw_variant_{variant_id} on embeddings e" in variant_plans[0]
    )
    assert f"ORDER BY e.embedding::vector({DIM}) <=>" in variant_plans[0]

    head_id = insert_head(conn, random_head(1))
    copy_projections(conn, head_id, rng.standard_normal((n, HEAD_DIM)).astype(np.float32))
    conn.execute("SELECT ensure_head_index(%s)", (head_id,))
    conn.execute("ANALYZE projected_embeddings")
    query = vector_text(rng.standard_normal(DIM))
    plans = explained_plans(conn, "SELECT * FROM similar_to_embedding(%s::vector)", (query,))
    head_plans = [p for p in plans if "FROM projected_embeddings p" in p and "<=>" in p]
    assert len(head_plans) == 1, plans
    assert (
        f"Index Scan using projected_embeddings_hnsw_head_{head_id} on projected_embeddings p"
        in head_plans[0]
    )
