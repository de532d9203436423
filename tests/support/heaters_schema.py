"""A heaters-shaped database for migration tests, and snapshots of what heaters owns in it.

- `create_heaters_schema(conn)`: runs heaters_schema.sql (tables, constraints, a trigger, rows).
- `snapshot(conn)`: everything heaters owns in `public` as plain data (columns, constraints,
  indexes, triggers, functions, sequences, rows), so a test can assert a migration left it alone
  by comparing two snapshots with `==`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

HEATERS_SCHEMA_SQL = Path(__file__).with_name("heaters_schema.sql")
HEATERS_TABLES = ("schema_migrations", "source_videos", "clips", "clip_artifacts", "embeddings")
STRATEGY_CONSTRAINT = "generation_strategy_must_be_valid"


def create_heaters_schema(conn: psycopg.Connection) -> None:
    conn.execute(HEATERS_SCHEMA_SQL.read_text())


def _rows(conn: psycopg.Connection, sql: str, params: tuple | None = None) -> list[tuple]:
    return [tuple(row) for row in conn.execute(sql, params).fetchall()]


def constraint_definition(conn: psycopg.Connection, name: str = STRATEGY_CONSTRAINT) -> str | None:
    row = conn.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'public.embeddings'::regclass AND conname = %s",
        (name,),
    ).fetchone()
    return row[0] if row else None


def snapshot(conn: psycopg.Connection, tables: tuple[str, ...] = HEATERS_TABLES) -> dict[str, Any]:
    """What heaters owns, as comparable plain data. Rows are compared through their JSON text."""
    names = list(tables)
    return {
        "columns": _rows(
            conn,
            "SELECT table_name, ordinal_position, column_name, data_type, udt_name, "
            "is_nullable, column_default, character_maximum_length, datetime_precision "
            "FROM information_schema.columns WHERE table_schema = 'public' "
            "AND table_name = ANY (%s) ORDER BY table_name, ordinal_position",
            (names,),
        ),
        "constraints": _rows(
            conn,
            "SELECT conrelid::regclass::text, conname, contype, convalidated, "
            "pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text = ANY (%s) "
            "ORDER BY 1, 2",
            (names,),
        ),
        "indexes": _rows(
            conn,
            "SELECT tablename, indexname, indexdef FROM pg_indexes "
            "WHERE schemaname = 'public' AND tablename = ANY (%s) ORDER BY 1, 2",
            (names,),
        ),
        "triggers": _rows(
            conn,
            "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) FROM pg_trigger "
            "WHERE NOT tgisinternal AND tgrelid::regclass::text = ANY (%s) ORDER BY 1, 2",
            (names,),
        ),
        "functions": _rows(
            conn,
            "SELECT proname, pg_get_functiondef(oid) FROM pg_proc "
            "WHERE pronamespace = 'public'::regnamespace AND proname = 'trigger_set_timestamp'",
        ),
        "sequences": _rows(
            conn,
            "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public' "
            "AND sequencename = ANY (%s) ORDER BY 1",
            ([f"{t}_id_seq" for t in names],),
        ),
        "rows": {
            table: _rows(
                conn,
                f"SELECT row_to_json(t)::text FROM {table} t ORDER BY 1",
            )
            for table in names
        },
    }


def public_objects(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    """Every relation, function, type and extension in the database outside the system schemas."""
    return {
        "relations": _rows(
            conn,
            "SELECT n.nspname, c.relname, c.relkind FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 1, 2",
        ),
        "functions": _rows(
            conn,
            "SELECT n.nspname, p.oid::regprocedure::text FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2",
        ),
        "types": _rows(
            conn,
            "SELECT n.nspname, t.typname FROM pg_type t "
            "JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 1, 2",
        ),
        "extensions": _rows(conn, "SELECT extname FROM pg_extension ORDER BY 1"),
        "schemas": _rows(
            conn,
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg_%' "
            "AND nspname <> 'information_schema' ORDER BY 1",
        ),
    }
