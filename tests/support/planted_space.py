"""Small embedding spaces written straight into a test database, for the active-learning tests
and benchmark: a default variant of low dimension, clips with given vectors, and an active head
whose projected embeddings are given too (the functions under test read the stored projections).
"""

from __future__ import annotations

import io

import numpy as np
import psycopg
import torch

from heaters_db.heads import ProjectionHead, head_to_safetensors, weights_checksum

MODEL_NAME = "test/planted"
STRATEGY = "video_full_clip"


def planted_clusters(
    clusters: int, per_cluster: int, dim: int, spread: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around `clusters` random unit centres (gaussian noise of std `spread` per
    dimension), and each vector's cluster label."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.repeat(np.arange(clusters), per_cluster)
    vectors = centres[labels] + rng.normal(scale=spread, size=(len(labels), dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32), labels


def make_default_variant(conn: psycopg.Connection, dim: int) -> int:
    """A default variant `test/planted` of dimension `dim` (the built-in default stops being one)."""
    conn.execute("UPDATE embedding_variants SET is_default = false WHERE is_default")
    return conn.execute(
        "INSERT INTO embedding_variants (model_name, generation_strategy, dim, is_default) "
        "VALUES (%s, %s, %s, true) RETURNING id",
        (MODEL_NAME, STRATEGY, dim),
    ).fetchone()[0]


def insert_clips(conn: psycopg.Connection, count: int, prefix: str = "clip") -> list[int]:
    """`count` clips without videos (no embed job is queued for them); their ids in order."""
    rows = conn.execute(
        "INSERT INTO clips (clip_identifier) SELECT %s || '-' || g FROM generate_series(1, %s) g "
        "RETURNING id",
        (prefix, count),
    ).fetchall()
    return sorted(r[0] for r in rows)


def _copy_vectors(conn: psycopg.Connection, sql: str, rows) -> None:
    buffer = io.StringIO()
    for values in rows:
        buffer.write("\t".join(values) + "\n")
    with conn.cursor() as cursor, cursor.copy(sql) as copy:
        copy.write(buffer.getvalue())


def _text(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in np.asarray(vector, dtype=np.float64)) + "]"


def insert_embeddings(
    conn: psycopg.Connection, clip_ids: list[int], vectors: np.ndarray, variant_id: int
) -> None:
    """Base embeddings of the variant for the clips (COPY), then the variant's HNSW index."""
    model, strategy, dim = conn.execute(
        "SELECT model_name, generation_strategy, dim FROM embedding_variants WHERE id = %s",
        (variant_id,),
    ).fetchone()
    _copy_vectors(
        conn,
        "COPY embeddings (clip_id, embedding, model_name, generation_strategy, embedding_dim) "
        "FROM STDIN",
        (
            (str(c), _text(v), model, strategy, str(dim))
            for c, v in zip(clip_ids, vectors, strict=True)
        ),
    )
    conn.execute("SELECT ensure_variant_index(%s)", (variant_id,))
    conn.execute("ANALYZE embeddings")


def planted_library(
    conn: psycopg.Connection, vectors: np.ndarray, prefix: str = "clip"
) -> tuple[int, list[int]]:
    """A default variant holding exactly these vectors, one clip each: (variant id, clip ids)."""
    variant_id = make_default_variant(conn, vectors.shape[1])
    clip_ids = insert_clips(conn, len(vectors), prefix)
    insert_embeddings(conn, clip_ids, vectors, variant_id)
    return variant_id, clip_ids


def insert_active_head(
    conn: psycopg.Connection,
    mode: str,
    variant_id: int,
    clip_ids: list[int],
    projected: np.ndarray,
) -> int:
    """An active head of `mode` whose stored projections of the clips are `projected`.

    Its weights are a real (untrained) head's, so the row is valid, but queries read the stored
    projected_embeddings, which is what lets a test choose the head space freely.
    """
    input_dim = conn.execute(
        "SELECT dim FROM embedding_variants WHERE id = %s", (variant_id,)
    ).fetchone()[0]
    output_dim = projected.shape[1]
    torch.manual_seed(0)
    head = ProjectionHead(input_dim, output_dim, 2 * output_dim)
    weights = head_to_safetensors(head)
    version = conn.execute(
        "SELECT coalesce(max(version), 0) + 1 FROM projection_heads WHERE mode = sorting_mode(%s)",
        (mode,),
    ).fetchone()[0]
    conn.execute(
        "UPDATE projection_heads SET status = 'retired' "
        "WHERE mode = sorting_mode(%s) AND status = 'active'",
        (mode,),
    )
    head_id = conn.execute(
        "INSERT INTO projection_heads (mode, version, base_variant_id, architecture, weights, "
        "weights_checksum, input_dim, output_dim, status, activated_at) "
        "VALUES (sorting_mode(%s), %s, %s, %s::jsonb, %s, %s, %s, %s, 'active', now()) "
        "RETURNING id",
        (
            mode,
            version,
            variant_id,
            psycopg.types.json.Json(head.architecture),
            weights,
            weights_checksum(weights),
            input_dim,
            output_dim,
        ),
    ).fetchone()[0]
    _copy_vectors(
        conn,
        "COPY projected_embeddings (clip_id, projection_head_id, embedding) FROM STDIN",
        ((str(c), str(head_id), _text(v)) for c, v in zip(clip_ids, projected, strict=True)),
    )
    conn.execute("SELECT ensure_head_index(%s)", (head_id,))
    conn.execute("ANALYZE projected_embeddings")
    return head_id


def insert_event(
    conn: psycopg.Connection,
    mode: str,
    anchor: int,
    candidates: list[int],
    selected: int | None,
) -> int:
    """One sorting event (the database validates it)."""
    return conn.execute(
        "INSERT INTO clip_sorting_events (anchor_clip_id, selected_clip_id, candidate_clip_ids, "
        "sorting_mode) VALUES (%s, %s, %s, sorting_mode(%s)) RETURNING id",
        (anchor, selected, candidates, mode),
    ).fetchone()[0]
