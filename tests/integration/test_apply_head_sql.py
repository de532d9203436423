"""apply_head() inside PostgreSQL: the maths against an independent float64 reference and the
torch head, the per-session weights cache, clear errors, and the installed body being exactly
what the loader generates from plpython/apply_head.py."""

from __future__ import annotations

import json
import re

import numpy as np
import psycopg
import pytest
import torch

from heaters_db.db import connect
from heaters_db.heads.module import ProjectionHead
from heaters_db.heads.serialization import head_to_safetensors, weights_checksum
from heaters_db.rerunnable import Layer

INPUT_DIM, OUTPUT_DIM, HIDDEN_DIM = 24, 12, 40


def random_head(seed: int) -> ProjectionHead:
    torch.manual_seed(seed)
    head = ProjectionHead(INPUT_DIM, OUTPUT_DIM, HIDDEN_DIM)
    with torch.no_grad():
        for parameter in head.parameters():  # the zero-initialised residual branch too
            parameter.normal_(0.0, 0.3)
    return head.eval()


def reference(head: ProjectionHead, x: np.ndarray) -> np.ndarray:
    """The head's maths written out in float64 numpy from its parameters (not apply_head.py)."""
    p = {name: t.detach().double().numpy() for name, t in head.named_parameters()}
    x = np.asarray(x, np.float64)
    x = x / max(np.linalg.norm(x), 1e-12)
    h = p["input_layer.weight"] @ x + p["input_layer.bias"]
    z = p["hidden_layer.weight"] @ h + p["hidden_layer.bias"]
    gelu = 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z**3)))
    y = h + p["output_layer.weight"] @ gelu + p["output_layer.bias"]
    return y / max(np.linalg.norm(y), 1e-12)


def vector_text(values: np.ndarray) -> str:
    return "[" + ",".join(format(float(v), ".9g") for v in np.asarray(values, np.float32)) + "]"


def insert_head(conn: psycopg.Connection, head: ProjectionHead, version: int, status: str) -> int:
    weights = head_to_safetensors(head)
    return conn.execute(
        "INSERT INTO projection_heads (mode, version, base_variant_id, architecture, weights, "
        "weights_checksum, input_dim, output_dim, status) "
        "VALUES ('spot_similarity', %s, (SELECT id FROM embedding_variants WHERE is_default), "
        "%s::jsonb, %s, %s, %s, %s, %s) RETURNING id",
        (
            version,
            json.dumps(head.architecture),
            weights,
            weights_checksum(weights),
            INPUT_DIM,
            OUTPUT_DIM,
            status,
        ),
    ).fetchone()[0]


def apply_in_sql(conn: psycopg.Connection, head_id: int, vector: np.ndarray) -> np.ndarray:
    (text,) = conn.execute(
        "SELECT apply_head(%s, %s::vector)::text", (head_id, vector_text(vector))
    ).fetchone()
    return np.array(json.loads(text), dtype=np.float64)


def test_apply_head_equals_the_reference(conn: psycopg.Connection) -> None:
    head = random_head(0)
    head_id = insert_head(conn, head, 1, "candidate")
    rng = np.random.default_rng(3)
    vectors = [rng.standard_normal(INPUT_DIM) * scale for scale in (1.0, 0.01, 250.0)]
    vectors += [np.eye(INPUT_DIM)[5], rng.uniform(-1, 1, INPUT_DIM)]
    for vector in vectors:
        vector = vector.astype(np.float32)
        got = apply_in_sql(conn, head_id, vector)
        assert got.shape == (OUTPUT_DIM,)
        np.testing.assert_allclose(got, reference(head, vector), atol=1e-6, rtol=0)
        with torch.no_grad():
            torch_out = head(torch.from_numpy(vector[None]))[0].double().numpy()
        np.testing.assert_allclose(got, torch_out, atol=1e-5, rtol=0)
        assert abs(np.linalg.norm(got) - 1.0) < 1e-6


def test_weights_are_cached_per_session_by_head_and_checksum(
    conn: psycopg.Connection, db_url: str
) -> None:
    first, second = random_head(1), random_head(2)
    head_id = insert_head(conn, first, 1, "candidate")
    x = np.random.default_rng(4).standard_normal(INPUT_DIM).astype(np.float32)
    want_first, want_second = reference(first, x), reference(second, x)
    assert np.abs(want_first - want_second).max() > 0.05

    with connect(db_url, autocommit=True) as session:
        np.testing.assert_allclose(apply_in_sql(session, head_id, x), want_first, atol=1e-6)
        np.testing.assert_allclose(apply_in_sql(session, head_id, x), want_first, atol=1e-6)
        # New bytes under the old checksum: this session keeps serving its cached weights,
        # which proves the cache is keyed by (head, checksum) and not re-read per call ...
        conn.execute(
            "UPDATE projection_heads SET weights = %s WHERE id = %s",
            (head_to_safetensors(second), head_id),
        )
        np.testing.assert_allclose(apply_in_sql(session, head_id, x), want_first, atol=1e-6)
        # ... while a new session, with nothing cached, checks the bytes and refuses them.
        with (
            connect(db_url, autocommit=True) as fresh,
            pytest.raises(
                psycopg.errors.DataCorrupted, match="weights do not match their checksum"
            ),
        ):
            apply_in_sql(fresh, head_id, x)
        # The checksum changes with the weights: the same session picks the new weights up.
        second_weights = head_to_safetensors(second)
        conn.execute(
            "UPDATE projection_heads SET weights = %s, weights_checksum = %s WHERE id = %s",
            (second_weights, weights_checksum(second_weights), head_id),
        )
        np.testing.assert_allclose(apply_in_sql(session, head_id, x), want_second, atol=1e-6)


def test_apply_head_errors(conn: psycopg.Connection) -> None:
    head_id = insert_head(conn, random_head(5), 1, "candidate")
    conn.execute(
        "INSERT INTO projection_heads (mode, version, base_variant_id, architecture, input_dim, "
        "output_dim) VALUES ('spot_similarity', 2, 1, %s::jsonb, %s, %s)",
        (json.dumps(random_head(6).architecture), INPUT_DIM, OUTPUT_DIM),
    )
    # Each with its own SQLSTATE (not XX000 "internal error"): clients and the daemon's failure
    # classes (heaters_db/failures.py: class 22 is permanent) tell them apart.
    cases = [
        (
            "SELECT apply_head(9999, '[1,2,3]')",
            "unknown projection head 9999",
            psycopg.errors.NoDataFound,
        ),
        (
            f"SELECT apply_head({head_id}, '[1,2,3]')",
            f"expects a {INPUT_DIM}-dimensional embedding",
            psycopg.errors.DataException,
        ),
        (
            f"SELECT apply_head({head_id + 1}, '{vector_text(np.ones(INPUT_DIM))}')",
            "has no weights yet",
            psycopg.errors.ObjectNotInPrerequisiteState,
        ),
        (
            f"SELECT apply_head_batch({head_id}, ARRAY['[1,2,3]'::vector])",
            "bad embeddings",
            psycopg.errors.DataException,
        ),
    ]
    for sql, message, error_class in cases:
        with pytest.raises(error_class) as error:
            conn.execute(sql)
        assert message in error.value.diag.message_primary
    assert conn.execute("SELECT apply_head(NULL, '[1,2]')").fetchone() == (None,)


def test_installed_body_is_generated_from_plpython_apply_head(conn: psycopg.Connection) -> None:
    """Fails when the installed apply_head differs from what the loader makes of the file now."""
    generated = Layer.current().object_sql("functions/apply_head.sql")
    body = re.search(r"AS \$plpython\$(.*)\$plpython\$;", generated, re.DOTALL).group(1)

    installed, language, definer, config = conn.execute(
        "SELECT p.prosrc, l.lanname, p.prosecdef, p.proconfig FROM pg_proc p "
        "JOIN pg_language l ON l.oid = p.prolang "
        "WHERE p.oid = 'apply_head(integer, vector)'::regprocedure"
    ).fetchone()
    assert installed == body
    assert "def plpython_body(plpy, SD, head_id, embedding):" in installed
    assert (language, definer, config) == ("plpython3u", True, ["search_path=public, pg_temp"])
