"""Migrations on an empty database and on an existing heaters database, up, down and up again.

What an upgrade and a downgrade do is checked on the catalogs and the rows, never on SQL text.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import psycopg
import pytest

from heaters_db import migrations
from heaters_db.errors import MigrationError
from tests.integration.conftest import wait_until
from tests.support.heaters_schema import (
    constraint_definition,
    create_heaters_schema,
    public_objects,
    snapshot,
)
from tests.support.planted_space import insert_active_head, planted_library

HEATERS_DB_TABLES = {
    "heaters_db_meta",
    "heaters_db_settings",
    "embedding_variants",
    "pipeline_jobs",
    "clip_sorting_events",
    "projection_heads",
    "projected_embeddings",
}
HEATERS_DB_VIEWS = {
    "sorting_screens",
    "sorting_triplets",
    "pipeline_queue_status",
    "pipeline_job_errors",
}
# The contract's SQL API (DESIGN.md), as regprocedure text.
API_FUNCTIONS = {
    "similar_clips(integer,text,integer)",
    "similar_to_embedding(vector,text,integer)",
    "apply_head(integer,vector)",
    "ensure_variant_index(integer)",
    "ensure_head_index(integer)",
    "nearest_in_variant(integer,vector,integer,integer)",
    "nearest_in_head(integer,vector,integer,integer)",
    # ids as clients send them (bigint, numeric): numeric[] arrays, double precision overloads
    "enqueue_embed_jobs(numeric[],boolean,numeric[])",
    "similar_clips(double precision,text,double precision)",
    "similar_to_embedding(vector,text,double precision)",
    "apply_head(double precision,vector)",
    "sorting_candidates(integer,text,integer)",
    "sorting_candidates(double precision,text,double precision)",
    "next_anchors(text,integer)",
    "next_anchors(text,double precision)",
    "sorting_clip_files(numeric[])",
    "active_head_info(text)",
    "claim_jobs(text,text[],integer,integer)",
    "finish_job(integer,text,text,jsonb)",
    "fail_job(integer,text,text,text,double precision)",
    "release_jobs(text,integer[])",
    "requeue_expired_jobs()",
    "sorting_mode(text)",
    "active_head_id(text)",
    "heaters_setting(text)",
}
VIDEO_STRATEGIES = ("video_full_clip", "video_centered_64", "video_trick_window")
HEATERS_DB_TRIGGERS = {"clips_enqueue_embed_jobs_on_insert", "clips_enqueue_embed_jobs_on_update"}


def cli_invocation(args: tuple[str, ...], url: str, home: Path) -> tuple[list[str], dict]:
    """The argv and environment of `heaters-db ARGS` pointed at `url` (HEATERS_DATABASE_URL)."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env |= {"HEATERS_DATABASE_URL": url, "HEATERS_HOME": str(home), "HEATERS_LOG_LEVEL": "WARNING"}
    return [str(Path(sys.executable).with_name("heaters-db")), *args], env


def cli(*args: str, url: str, home: Path) -> subprocess.CompletedProcess:
    """`heaters-db ARGS` in a subprocess."""
    argv, env = cli_invocation(args, url, home)
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)


def start_cli(*args: str, url: str, home: Path) -> subprocess.Popen:
    """`heaters-db ARGS` started in the background, as cli() runs it."""
    argv, env = cli_invocation(args, url, home)
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def relation_names(conn: psycopg.Connection, kinds: str) -> set[str]:
    rows = conn.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
        "AND relkind = ANY (%s)",
        (list(kinds),),
    ).fetchall()
    return {r[0] for r in rows}


def function_signatures(conn: psycopg.Connection) -> set[str]:
    rows = conn.execute(
        "SELECT replace(oid::regprocedure::text, ', ', ',') FROM pg_proc "
        "WHERE pronamespace = 'public'::regnamespace"
    ).fetchall()
    return {r[0] for r in rows}


def sorter_dependencies(conn: psycopg.Connection) -> int:
    """Privileges this database still grants to heaters_sorter (shared dependency entries)."""
    return conn.execute(
        "SELECT count(*) FROM pg_shdepend d JOIN pg_roles r ON r.oid = d.refobjid "
        "WHERE r.rolname = 'heaters_sorter' "
        "AND d.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
    ).fetchone()[0]


def insert_embedding(conn: psycopg.Connection, clip_id: int, strategy: str, model: str = "m"):
    conn.execute(
        "INSERT INTO embeddings (clip_id, embedding, model_name, generation_strategy, embedding_dim) "
        "VALUES (%s, '[1,0,0]', %s, %s, 3)",
        (clip_id, model, strategy),
    )


def test_empty_database_up_down_up(empty_db_url: str) -> None:
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        before = public_objects(conn)
        assert before["relations"] == []

        migrations.upgrade(empty_db_url)
        assert migrations.current_revision(empty_db_url) == migrations.head_revision()
        tables = relation_names(conn, "r")
        assert {"source_videos", "clips", "embeddings"} <= tables
        assert tables >= HEATERS_DB_TABLES
        assert relation_names(conn, "v") >= HEATERS_DB_VIEWS
        assert function_signatures(conn) >= API_FUNCTIONS
        extensions = {r[0] for r in conn.execute("SELECT extname FROM pg_extension")}
        assert {"vector", "plpython3u"} <= extensions

        # heaters' shape: text states with CHECKs, dimensionless vector, nullable unique filepath.
        columns = dict(
            conn.execute(
                "SELECT table_name || '.' || column_name, udt_name || ':' || is_nullable "
                "FROM information_schema.columns WHERE table_schema = 'public' "
                "AND table_name IN ('clips', 'embeddings')"
            ).fetchall()
        )
        assert columns["clips.id"] == "int4:NO"
        assert columns["clips.clip_filepath"] == "text:YES"
        assert columns["clips.ingest_state"] == "text:NO"
        assert columns["clips.processing_metadata"] == "jsonb:YES"
        assert columns["embeddings.embedding"] == "vector:NO"
        assert columns["embeddings.generation_strategy"] == "text:NO"
        typmod = conn.execute(
            "SELECT atttypmod FROM pg_attribute "
            "WHERE attrelid = 'embeddings'::regclass AND attname = 'embedding'"
        ).fetchone()[0]
        assert typmod == -1, "embeddings.embedding must have no fixed dimension"
        assert (
            "nextval('clips_id_seq'"
            in conn.execute(
                "SELECT column_default FROM information_schema.columns "
                "WHERE table_name = 'clips' AND column_name = 'id'"
            ).fetchone()[0]
        )
        definition = constraint_definition(conn)
        for strategy in (
            "keyframe_multi_avg",
            "keyframe_multi",
            "keyframe_single",
            *VIDEO_STRATEGIES,
        ):
            assert f"'{strategy}'" in definition
        assert conn.execute(
            "SELECT model_name, generation_strategy, num_frames, dim FROM embedding_variants "
            "WHERE is_default"
        ).fetchall() == [("facebook/vjepa2-vitl-fpc64-256", "video_full_clip", 64, 1024)]
        assert sorter_dependencies(conn) > 0

        migrations.downgrade(empty_db_url, "base")
        assert migrations.current_revision(empty_db_url) is None
        assert public_objects(conn) == before
        # Roles are cluster-wide: the session's template database made heaters_sorter, so it
        # stays, but this database must not grant it anything any more.
        assert sorter_dependencies(conn) == 0

        migrations.upgrade(empty_db_url)
        assert migrations.current_revision(empty_db_url) == migrations.head_revision()
        assert conn.execute("SELECT count(*) FROM embedding_variants").fetchone()[0] == 1
        # The clip trigger is back: a clip with a video gets its embed job.
        conn.execute(
            "INSERT INTO clips (clip_identifier, clip_filepath) VALUES ('a', 'clips/a.mp4')"
        )
        assert (
            conn.execute("SELECT count(*) FROM pipeline_jobs WHERE kind = 'embed'").fetchone()[0]
            == 1
        )


def test_existing_heaters_database_is_left_intact(empty_db_url: str, tmp_path: Path) -> None:
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        create_heaters_schema(conn)
        before = snapshot(conn)
        objects_before = public_objects(conn)
        original = constraint_definition(conn)
        assert original is not None and "keyframe_single" in original

        result = cli("migrate", url=empty_db_url, home=tmp_path)
        assert result.returncode == 0, result.stderr
        assert f"is at revision {migrations.head_revision()}" in result.stdout

        after = snapshot(conn)
        for part in ("columns", "indexes", "functions", "sequences", "rows"):
            assert after[part] == before[part], f"heaters' {part} changed"
        extended = [c for c in after["constraints"] if c[1] == "generation_strategy_must_be_valid"]
        assert [c for c in after["constraints"] if c not in extended] == [
            c for c in before["constraints"] if c[1] != "generation_strategy_must_be_valid"
        ]
        assert len(extended) == 1 and extended[0][3], "the extended constraint must be validated"
        added_triggers = {t[1] for t in after["triggers"]} - {t[1] for t in before["triggers"]}
        # heaters-db's own triggers (later revisions may add more); the downgrade removes them all.
        assert added_triggers >= HEATERS_DB_TRIGGERS
        assert set(before["triggers"]) <= set(after["triggers"])
        # vector already existed here: heaters-db must not claim it.
        assert (
            conn.execute(
                "SELECT value FROM heaters_db_meta WHERE key = 'created_vector_extension'"
            ).fetchone()[0]
            is False
        )

        # The widened constraint: heaters' strategies and the video ones pass, a bogus one does not.
        for strategy in VIDEO_STRATEGIES:
            insert_embedding(conn, 3, strategy)
        insert_embedding(conn, 3, "keyframe_single")
        with pytest.raises(
            psycopg.errors.CheckViolation, match="generation_strategy_must_be_valid"
        ):
            insert_embedding(conn, 4, "bogus_strategy")

        # heaters-db at work on heaters' rows: a new clip is queued, an event is logged.
        conn.execute(
            "INSERT INTO clips (clip_identifier, clip_filepath, ingest_state) "
            "VALUES ('park_0004', 'clips/park_0004.mp4', 'exported')"
        )
        assert conn.execute("SELECT count(*) FROM pipeline_jobs").fetchone()[0] == 1
        conn.execute(
            "INSERT INTO clip_sorting_events (anchor_clip_id, selected_clip_id, candidate_clip_ids, "
            "sorting_mode) VALUES (1, 2, '{2,3}', 'trick_similarity')"
        )
        conn.execute("DELETE FROM clips WHERE clip_identifier = 'park_0004'")
        conn.execute(
            "DELETE FROM embeddings WHERE generation_strategy = 'keyframe_single' AND clip_id = 3"
        )

        # The event and the video-strategy vectors are heaters-db's: removing it deletes them.
        migrations.migrate(empty_db_url, "base", drop_data=True)
        assert constraint_definition(conn) == original
        down = snapshot(conn)
        # Everything heaters owns is exactly as before, except that the rows inserted and
        # deleted meanwhile advanced two sequences (as they would without heaters-db).
        assert {k: v for k, v in down.items() if k != "sequences"} == {
            k: v for k, v in before.items() if k != "sequences"
        }
        sequences = {
            name: (dict(before["sequences"])[name], last) for name, last in down["sequences"]
        }
        assert sequences["clips_id_seq"] == (4, 5)
        assert sequences["embeddings_id_seq"] == (4, 9)
        assert sequences["source_videos_id_seq"] == (2, 2)
        assert public_objects(conn) == objects_before


def test_not_valid_strategy_constraint_is_extended_and_restored(empty_db_url: str) -> None:
    """A heaters database whose constraint was added NOT VALID keeps it NOT VALID both ways."""
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        create_heaters_schema(conn)
        conn.execute(
            "ALTER TABLE embeddings DROP CONSTRAINT generation_strategy_must_be_valid, "
            "ADD CONSTRAINT generation_strategy_must_be_valid CHECK (generation_strategy IN "
            "('keyframe_multi_avg', 'keyframe_multi', 'keyframe_single')) NOT VALID"
        )
        original = constraint_definition(conn)
        assert original.endswith(" NOT VALID")
        migrations.upgrade(empty_db_url, "0002")
        extended = constraint_definition(conn)
        assert extended.endswith(" NOT VALID") and "video_trick_window" in extended
        insert_embedding(conn, 3, "video_trick_window")
        migrations.downgrade(empty_db_url, "base")
        assert constraint_definition(conn) == original


def test_intermediate_revision_and_back(db_url: str, tmp_path: Path) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO clips (clip_identifier) SELECT 'c' || i FROM generate_series(1, 3) i"
        )
        conn.execute(
            "INSERT INTO clip_sorting_events (anchor_clip_id, selected_clip_id, candidate_clip_ids, "
            "sorting_mode) VALUES (1, 2, '{2,3}', 'spot_similarity')"
        )
        migrations.migrate(db_url, "0005")
        assert migrations.current_revision(db_url) == "0005"
        tables = relation_names(conn, "r")
        assert {"clip_sorting_events", "pipeline_jobs", "embedding_variants"} <= tables
        assert not {"projection_heads", "projected_embeddings"} & tables
        functions = function_signatures(conn)
        assert "similar_clips(integer,text,integer)" not in functions
        assert "apply_head(integer,vector)" not in functions
        assert conn.execute("SELECT count(*) FROM clip_sorting_events").fetchone()[0] == 1

        migrations.migrate(db_url)
        assert migrations.current_revision(db_url) == migrations.head_revision()
        assert function_signatures(conn) >= API_FUNCTIONS
        assert relation_names(conn, "v") >= HEATERS_DB_VIEWS
        # The event kept its row; the upgrade gave its anchor a split (manual: by the anchor's hash).
        assert conn.execute(
            "SELECT s.split, s.anchor_reason, a.first_event_id = s.event_id FROM sorting_screens s "
            "JOIN sorting_anchor_splits a USING (anchor_clip_id)"
        ).fetchone() in [
            ("train", "manual", True),
            ("validation", "manual", True),
            ("holdout", "manual", True),
        ]

    with pytest.raises(MigrationError, match="unknown revision"):
        migrations.migrate(db_url, "does_not_exist")
    result = cli("migrate", "does_not_exist", url=db_url, home=tmp_path)
    assert result.returncode == 1
    assert "error: unknown revision 'does_not_exist'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("before", "after"), [("200", "60"), ("150", "150")])
def test_0021_moves_head_max_epochs_only_from_the_old_default(
    db_url: str, before: str, after: str
) -> None:
    """The old default 200 becomes 60; a value an operator chose stays, and downgrade restores
    the old default."""
    migrations.migrate(db_url, "0020")
    with psycopg.connect(db_url, autocommit=True) as conn:
        read = "SELECT value FROM heaters_db_settings WHERE name = 'head_max_epochs'"
        assert conn.execute(read).fetchone() == ("200",)
        conn.execute(
            "UPDATE heaters_db_settings SET value = %s WHERE name = 'head_max_epochs'", (before,)
        )
        migrations.migrate(db_url)
        assert conn.execute(read).fetchone() == (after,)
        migrations.migrate(db_url, "0020")
        assert conn.execute(read).fetchone() == (before,)


def test_a_downgrade_that_would_delete_sorting_events_is_refused(
    db_url: str, tmp_path: Path
) -> None:
    """Events are people's answers: a downgrade past 0005 (or to base) that would drop them is
    refused, naming what it would delete, and nothing changes; one that deletes nothing goes
    ahead; --drop-data lets the operator through."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO clips (clip_identifier) SELECT 'c' || i FROM generate_series(1, 3) i"
        )
        conn.execute(
            "INSERT INTO clip_sorting_events (anchor_clip_id, selected_clip_id, candidate_clip_ids, "
            "sorting_mode, candidate_sources) "
            "VALUES (1, 2, '{2,3}', 'spot_similarity', '{nearest,control}')"
        )
        events = "SELECT count(*) FROM clip_sorting_events"
        with pytest.raises(MigrationError) as refused:
            migrations.migrate(db_url, "0004")
        assert (
            "a downgrade to 0004 would delete sorting events: 1 (revision 0005); sorting events' "
            "provenance (anchor_reason, candidate_sources): 1 (revision 0013). Nothing was changed"
        ) in str(refused.value)
        assert migrations.current_revision(db_url) == migrations.head_revision()
        assert conn.execute(events).fetchone() == (1,)

        result = cli("migrate", "base", url=db_url, home=tmp_path)
        assert result.returncode == 1
        assert "rows of clips: 3 (revision 0001)" in result.stderr
        assert "sorting events: 1 (revision 0005)" in result.stderr
        assert "--drop-data" in result.stderr and "Traceback" not in result.stderr
        assert conn.execute(events).fetchone() == (1,)

        migrations.migrate(db_url, "0023")  # drops the settings' rules, not a row
        assert migrations.current_revision(db_url) == "0023"

        result = cli("migrate", "0004", "--drop-data", url=db_url, home=tmp_path)
        assert result.returncode == 0, result.stderr
        assert migrations.current_revision(db_url) == "0004"
        assert "clip_sorting_events" not in relation_names(conn, "r")


def test_a_migrate_waits_for_the_one_running(empty_db_url: str, tmp_path: Path) -> None:
    """While another migrate holds the database's migrate lock, `heaters-db migrate` waits,
    says so and changes nothing; then it migrates."""
    with psycopg.connect(empty_db_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(hashtext(%s))", (migrations.MIGRATE_LOCK,))
        waiting = start_cli("migrate", url=empty_db_url, home=tmp_path)
        wait_until(
            lambda: holder.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event = 'advisory'"
            ).fetchone(),
            60,
            what="the second migrate to wait for the lock",
        )
        assert waiting.poll() is None
        assert migrations.current_revision(empty_db_url) is None
    _, stderr = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, stderr
    assert "another heaters-db migrate is running on this database" in stderr
    assert migrations.current_revision(empty_db_url) == migrations.head_revision()


def test_migrates_started_together_on_an_empty_database_all_succeed(
    empty_db_url: str, tmp_path: Path
) -> None:
    """Several daemons' init steps running `heaters-db migrate` at once (without the lock, all
    but one failed: the version table already existed)."""
    started = [start_cli("migrate", url=empty_db_url, home=tmp_path) for _ in range(3)]
    for process in started:
        _, stderr = process.communicate(timeout=180)
        assert process.returncode == 0, stderr
    assert migrations.current_revision(empty_db_url) == migrations.head_revision()
    pending, drift = migrations.check(empty_db_url)
    assert (pending, drift) == ([], [])


def test_0030_rewrites_the_projection_of_a_zero_vector_to_zeros(db_url: str) -> None:
    """Under 0029's apply_head a clip whose base vector is all zeros was projected to the head's
    bias (made here as that unit vector); the upgrade rewrites such projections to zeros and
    leaves every other one as it was."""
    migrations.migrate(db_url, "0029")
    with psycopg.connect(db_url, autocommit=True) as conn:
        vectors = np.eye(4, 8, dtype=np.float32)
        vectors[2] = 0.0
        variant_id, clip_ids = planted_library(conn, vectors)
        projected = np.eye(4, 3, k=-1, dtype=np.float32) + np.eye(4, 3, dtype=np.float32)
        insert_active_head(conn, "trick", variant_id, clip_ids, projected)
        migrations.migrate(db_url)
        norms = conn.execute(
            "SELECT clip_id, round(vector_norm(embedding)::numeric, 4) FROM projected_embeddings "
            "ORDER BY clip_id"
        ).fetchall()
    assert [float(norm) for _, norm in norms] == [1.0, 1.4142, 0.0, 1.0]


def test_a_downgrade_past_0027_counts_the_activation_history_it_drops(db_url: str) -> None:
    """0027's upgrade rebuilds one activation per active head: a downgrade past it that drops
    older activations (what rollbacks restore) is refused, and one that drops only the rebuilt
    row goes ahead."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        variant_id, clip_ids = planted_library(conn, np.eye(3, 4, dtype=np.float32))
        first = insert_active_head(conn, "trick", variant_id, clip_ids, np.eye(3, 2))
        second = insert_active_head(conn, "trick", variant_id, clip_ids, np.eye(3, 2))
        conn.execute(
            "INSERT INTO projection_head_activations (mode, head_id, replaced_head_id) "
            "VALUES ('trick_similarity', %s, NULL), ('trick_similarity', %s, %s)",
            (first, second, first),
        )
        with pytest.raises(MigrationError) as refused:
            migrations.migrate(db_url, "0026")
        assert (
            "head activation history (which head replaced which, rollbacks): 1 (revision 0027)"
        ) in str(refused.value)
        conn.execute("DELETE FROM projection_head_activations WHERE head_id = %s", (first,))
        migrations.migrate(db_url, "0026")
    assert migrations.current_revision(db_url) == "0026"
    # `migrate REVISION --check` reports the steps to that revision, not to head.
    assert migrations.check(db_url, "0028") == (
        ["revision 0027 not applied", "revision 0028 not applied"],
        [],
    )
    assert migrations.check(db_url, "0024") == (
        ["revision 0026 would be undone", "revision 0025 would be undone"],
        [],
    )
    assert migrations.check(db_url, "0026") == ([], [])
    with pytest.raises(MigrationError, match="unknown revision 'nope'"):
        migrations.check(db_url, "nope")
