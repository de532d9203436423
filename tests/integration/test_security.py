"""The sorter role may insert events and call the read functions, nothing else; the privileged
functions are not executable by PUBLIC and pin their search_path."""

from __future__ import annotations

import json

import psycopg
import pytest
import torch

from heaters_db.db import connect
from heaters_db.heads.module import ProjectionHead
from heaters_db.heads.serialization import head_to_safetensors, weights_checksum

SEARCH_PATH = "search_path=public, pg_temp"


@pytest.fixture
def library(conn: psycopg.Connection) -> int:
    """Clips 1..4 with 3-d default-variant embeddings; returns the id of an active trick head.
    retrain_every = 1, so whatever a sorter's event insert triggers runs in the tests below."""
    conn.execute("UPDATE heaters_db_settings SET value = '1' WHERE name = 'retrain_every'")
    conn.execute("INSERT INTO clips (clip_identifier) SELECT 'c' || i FROM generate_series(1, 4) i")
    conn.execute("UPDATE embedding_variants SET dim = 3 WHERE is_default")
    conn.execute(
        "INSERT INTO embeddings (clip_id, embedding, model_name, generation_strategy) "
        "SELECT i, ARRAY[1, i, i * i]::real[]::vector, model_name, generation_strategy "
        "FROM generate_series(1, 4) i, embedding_variants WHERE is_default"
    )
    torch.manual_seed(0)
    head = ProjectionHead(3, 2, 4)
    weights = head_to_safetensors(head)
    head_id = conn.execute(
        "INSERT INTO projection_heads (mode, version, base_variant_id, architecture, weights, "
        "weights_checksum, input_dim, output_dim, status) VALUES ('trick_similarity', 1, "
        "(SELECT id FROM embedding_variants WHERE is_default), %s::jsonb, %s, %s, 3, 2, 'active') "
        "RETURNING id",
        (json.dumps(head.architecture), weights, weights_checksum(weights)),
    ).fetchone()[0]
    conn.execute(
        "INSERT INTO projected_embeddings (clip_id, projection_head_id, embedding) "
        "SELECT clip_id, %s, apply_head(%s, embedding) FROM embeddings "
        "ON CONFLICT (clip_id, projection_head_id) DO NOTHING",
        (head_id, head_id),
    )
    return head_id


def refused(conn: psycopg.Connection, sql: str) -> str:
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as error:
        conn.execute(sql)
    return error.value.diag.message_primary


def test_sorter_may_sort_and_search_and_nothing_else(sorter_url: str, library: int) -> None:
    with connect(sorter_url, autocommit=True) as sorter:
        assert sorter.execute("SELECT current_user").fetchone()[0].startswith("sorter_login_")
        event_id = sorter.execute(
            "INSERT INTO clip_sorting_events (anchor_clip_id, selected_clip_id, rejected_clip_ids, "
            "candidate_clip_ids, sorting_mode, session_id, response_time_ms) VALUES "
            "(1, 2, '{3}', '{2,3,4}', 'trick_similarity', gen_random_uuid(), 900) RETURNING id"
        ).fetchone()[0]
        assert event_id >= 1
        # Validation still runs for the sorter (it cannot read clips itself).
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="unknown clip ids"):
            sorter.execute(
                "INSERT INTO clip_sorting_events (anchor_clip_id, candidate_clip_ids, sorting_mode) "
                "VALUES (1, '{77}', 'trick_similarity')"
            )
        # Both read paths: spot falls back to the default variant, trick uses the active head
        # (apply_head runs inside the SECURITY DEFINER function).
        spot = sorter.execute("SELECT clip_id FROM similar_clips(1, 'spot', 3)").fetchall()
        assert sorted(r[0] for r in spot) == [2, 3, 4]
        trick = sorter.execute("SELECT clip_id FROM similar_clips(1, 'trick', 3)").fetchall()
        assert sorted(r[0] for r in trick) == [2, 3, 4]
        nearest = sorter.execute(
            "SELECT clip_id FROM similar_to_embedding('[1,2,4]', 'trick', 2)"
        ).fetchall()
        assert len(nearest) == 2
        assert (
            len(sorter.execute("SELECT * FROM similar_to_embedding('[1,2,4]', 'spot')").fetchall())
            == 4
        )

        assert "projection_heads" in refused(sorter, "SELECT weights FROM projection_heads")
        refused(sorter, "SELECT id FROM projection_heads")
        refused(sorter, "SELECT embedding FROM embeddings")
        refused(sorter, "SELECT selected_clip_id FROM clip_sorting_events")
        refused(
            sorter,
            "INSERT INTO embeddings (clip_id, embedding, model_name, generation_strategy) "
            "VALUES (1, '[1,1,1]', 'x', 'video_full_clip')",
        )
        refused(sorter, "UPDATE embeddings SET model_name = 'x'")
        refused(sorter, "DELETE FROM embeddings")
        refused(sorter, "UPDATE clip_sorting_events SET selected_clip_id = 4")
        refused(sorter, "DELETE FROM clip_sorting_events")
        # Ids come from the sequence: a sorter cannot even name one.
        assert "clip_sorting_events" in refused(
            sorter,
            "INSERT INTO clip_sorting_events (id, anchor_clip_id, candidate_clip_ids, sorting_mode) "
            "VALUES (2000000000, 1, '{2,3}', 'trick_similarity')",
        )
        # Provenance columns are the sorter's to fill; evaluation screens through their function.
        evaluation = sorter.execute(
            "SELECT clip_id, source FROM evaluation_candidates(1, 'trick', 3)"
        ).fetchall()
        # Clips 3 and 4 ([1,3,9], [1,4,16]) are near-duplicates (cosine distance 0.004 < 0.01):
        # one screen shows only one of them.
        shown = sorted(c for c, _ in evaluation)
        assert len(shown) == 2 and shown[0] == 2 and shown[1] in (3, 4), shown
        assert {s for _, s in evaluation} <= {"evaluation_base", "evaluation_random"}
        sorter.execute(
            "INSERT INTO clip_sorting_events (anchor_clip_id, selected_clip_id, candidate_clip_ids, "
            "sorting_mode, anchor_reason, candidate_sources) VALUES (1, 2, %s, "
            "'trick_similarity', 'evaluation', %s)",
            ([c for c, _ in evaluation], [s for _, s in evaluation]),
        )
        refused(
            sorter,
            "INSERT INTO pipeline_jobs (kind, mode) VALUES ('train_head', 'trick_similarity')",
        )
        assert "apply_head" in refused(sorter, f"SELECT apply_head({library}, '[1,2,3]')")
        refused(sorter, "SELECT enqueue_embed_jobs('{1}')")
        refused(sorter, "SELECT * FROM claim_jobs('me', '{embed}', 1, 60)")
        refused(sorter, "SELECT ensure_variant_index(1)")


def test_privileged_functions_are_not_public_and_pin_search_path(conn: psycopg.Connection) -> None:
    rows = conn.execute(
        "SELECT p.oid::regprocedure::text, p.prosecdef, l.lanname, p.proconfig, "
        "p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a "
        "                            WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE') "
        "FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang "
        "WHERE p.pronamespace = 'public'::regnamespace AND (p.prosecdef OR l.lanname = 'plpython3u') "
        "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')"
    ).fetchall()
    names = {row[0] for row in rows}
    # The contract's privileged functions are among them (later revisions may add more).
    assert {
        "apply_head(integer,vector)",
        "similar_clips(integer,text,integer)",
        "similar_to_embedding(vector,text,integer)",
        "validate_sorting_event()",
        "enqueue_clip_embed_jobs()",
    } <= {name.replace(", ", ",") for name in names}
    for name, definer, language, config, public_execute in rows:
        assert not public_execute, f"{name} is executable by PUBLIC"
        assert SEARCH_PATH in (config or []), f"{name} has no fixed search_path: {config}"
        if language == "plpython3u":
            assert definer, f"{name} (PL/Python) should be SECURITY DEFINER"


def test_sorter_grants_are_explicit(conn: psycopg.Connection) -> None:
    """What heaters_sorter holds: exactly the event insert and the two read functions."""
    tables = conn.execute(
        "SELECT table_name, privilege_type FROM information_schema.role_table_grants "
        "WHERE grantee = 'heaters_sorter' ORDER BY 1, 2"
    ).fetchall()
    # No table-wide INSERT: every column but id (ids come from the sequence only).
    assert tables == []
    inserts = conn.execute(
        "SELECT column_name FROM information_schema.column_privileges "
        "WHERE grantee = 'heaters_sorter' AND privilege_type = 'INSERT' "
        "AND table_name = 'clip_sorting_events'"
    ).fetchall()
    columns = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'clip_sorting_events'"
    ).fetchall()
    assert {c for (c,) in inserts} == {c for (c,) in columns} - {"id"}
    public = conn.execute(
        "SELECT count(*) FROM information_schema.column_privileges "
        "WHERE grantee = 'PUBLIC' AND table_name = 'clip_sorting_events'"
    ).fetchone()
    assert public == (0,)
    functions = conn.execute(
        "SELECT DISTINCT p.oid::regprocedure::text FROM pg_proc p, aclexplode(p.proacl) a "
        "WHERE a.grantee = 'heaters_sorter'::regrole AND p.pronamespace = 'public'::regnamespace "
        "ORDER BY 1"
    ).fetchall()
    assert {"similar_clips(integer,text,integer)", "similar_to_embedding(vector,text,integer)"} <= {
        r[0].replace(", ", ",") for r in functions
    }
    column_grants = conn.execute(
        "SELECT table_name, column_name, privilege_type FROM information_schema.column_privileges "
        "WHERE grantee = 'heaters_sorter' AND privilege_type <> 'INSERT' ORDER BY 1, 2"
    ).fetchall()
    assert column_grants == [("clip_sorting_events", "id", "SELECT")]


def test_sorting_page_reads_go_through_definer_functions(sorter_url: str, library: int) -> None:
    with connect(sorter_url, autocommit=True) as sorter:
        assert "clips" in refused(sorter, "SELECT clip_filepath FROM clips")
        files = sorter.execute(
            "SELECT id, clip_identifier FROM sorting_clip_files('{1,2,99}') ORDER BY id"
        ).fetchall()
        assert files == [(1, "c1"), (2, "c2")]
        assert sorter.execute("SELECT id, version FROM active_head_info('trick')").fetchall() == [
            (library, 1)
        ]
        assert sorter.execute("SELECT * FROM active_head_info('spot')").fetchall() == []
        refused(sorter, "SELECT embedding FROM projected_embeddings")


def test_worker_writes_embeddings_but_cannot_attach_triggers_or_own_tables(
    worker_url: str, library: int, conn: psycopg.Connection
) -> None:
    with connect(worker_url, autocommit=True) as worker:
        worker.execute(
            "INSERT INTO embeddings (clip_id, embedding, model_name, generation_strategy) "
            "SELECT 1, '[3,2,1]', model_name, generation_strategy FROM embedding_variants "
            "WHERE is_default ON CONFLICT (clip_id, model_name, generation_strategy) "
            "DO UPDATE SET embedding = EXCLUDED.embedding"
        )
        # The active head's projection trigger ran for the worker's write (SECURITY DEFINER).
        assert worker.execute(
            "SELECT count(*) FROM projected_embeddings WHERE clip_id = 1 AND projection_head_id = %s",
            (library,),
        ).fetchone() == (1,)
        assert worker.execute("SELECT ensure_head_index(%s)", (library,)).fetchone()[0]
        for statement in (
            "CREATE TRIGGER sneaky BEFORE INSERT ON embeddings FOR EACH ROW "
            "EXECUTE FUNCTION refuse_sorting_event_change()",
            "CREATE TRIGGER sneaky AFTER INSERT ON clips "
            "FOR EACH STATEMENT EXECUTE FUNCTION notify_sorting_events()",
        ):
            refused(worker, statement)
        for statement in ("ALTER TABLE embeddings ADD COLUMN x int", "DROP TABLE projection_heads"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="must be owner"):
                worker.execute(statement)
        refused(worker, "CREATE TABLE public.mine (id int)")
        refused(worker, "INSERT INTO clip_sorting_events (anchor_clip_id, candidate_clip_ids, "
                        "sorting_mode) VALUES (1, '{2}', 'trick_similarity')")  # fmt: skip
        refused(worker, "DELETE FROM clips")
    triggerable = conn.execute(
        "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace "
        "AND c.relkind = 'r' AND has_table_privilege('heaters_worker', c.oid, 'TRIGGER')"
    ).fetchall()
    assert triggerable == []
    owned = conn.execute(
        "SELECT count(*) FROM pg_class WHERE relowner = 'heaters_worker'::regrole"
    ).fetchone()
    assert owned == (0,)
