"""What a database's schema is, as plain comparable data: the catalog, not the SQL text.

`schema_catalog(conn)` reads everything outside the system schemas that a migration can make
or change: columns, constraints, indexes, functions (with their bodies, settings and ACLs),
views, triggers, sequences, table and column privileges, extensions. Two databases have the
same schema exactly when their catalogs compare equal. `migrate` diffs the catalog before and
after re-applying the re-runnable objects to say what changed; the upgrade test compares an
upgraded database with a fresh install.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

# Objects that belong to an extension (pgvector's functions, plpython's handler) are the
# extension's business, not the schema's.
_NOT_FROM_EXTENSION = (
    "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '{cls}'::regclass "
    "AND d.objid = {oid} AND d.deptype = 'e')"
)
_SCHEMAS = "NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
_SORTED_ACL = "(SELECT coalesce(string_agg(a, ',' ORDER BY a), '') FROM unnest({acl}::text[]) a)"

QUERIES: dict[str, str] = {
    "functions": (
        "SELECT p.oid::regprocedure::text, "
        "pg_get_functiondef(p.oid) || ' ACL ' || " + _SORTED_ACL.format(acl="p.proacl") + " "
        "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        f"WHERE n.nspname {_SCHEMAS} AND p.prokind <> 'a' AND "
        + _NOT_FROM_EXTENSION.format(cls="pg_proc", oid="p.oid")
    ),
    "views": (
        "SELECT c.oid::regclass::text, pg_get_viewdef(c.oid, true) || ' ACL ' || "
        + _SORTED_ACL.format(acl="c.relacl")
        + " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE c.relkind IN ('v', 'm') AND n.nspname {_SCHEMAS} AND "
        + _NOT_FROM_EXTENSION.format(cls="pg_class", oid="c.oid")
    ),
    "triggers": (
        "SELECT t.tgrelid::regclass::text || '.' || t.tgname, "
        "pg_get_triggerdef(t.oid) || ' ENABLED ' || t.tgenabled::text "
        "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        f"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT t.tgisinternal AND n.nspname {_SCHEMAS}"
    ),
    "indexes": (
        f"SELECT schemaname || '.' || indexname, indexdef FROM pg_indexes WHERE schemaname {_SCHEMAS}"
    ),
    "constraints": (
        "SELECT c.conrelid::regclass::text || '.' || c.conname, "
        "c.contype::text || ' ' || pg_get_constraintdef(c.oid) || CASE WHEN c.convalidated THEN '' "
        "ELSE ' NOT VALID' END FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
        f"WHERE n.nspname {_SCHEMAS} AND c.conrelid <> 0"
    ),
    "columns": (
        "SELECT a.attrelid::regclass::text || '.' || a.attname, "
        "concat_ws(' ', row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum), "
        "format_type(a.atttypid, a.atttypmod), CASE WHEN a.attnotnull THEN 'NOT NULL' END, "
        "'DEFAULT ' || pg_get_expr(ad.adbin, ad.adrelid), a.attidentity::text, a.attgenerated::text, "
        "'ACL ' || " + _SORTED_ACL.format(acl="a.attacl") + ") "
        "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum "
        f"WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm') "
        f"AND n.nspname {_SCHEMAS} AND " + _NOT_FROM_EXTENSION.format(cls="pg_class", oid="c.oid")
    ),
    "relations": (
        "SELECT c.oid::regclass::text, c.relkind::text || ' ACL ' || "
        + _SORTED_ACL.format(acl="c.relacl")
        + " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE c.relkind IN ('r', 'p', 'S', 'v', 'm') AND n.nspname {_SCHEMAS} AND "
        + _NOT_FROM_EXTENSION.format(cls="pg_class", oid="c.oid")
    ),
    "extensions": "SELECT extname, extversion FROM pg_extension",
}

# What re-applying the re-runnable objects can change (see heaters_db.rerunnable).
RERUNNABLE_KINDS = ("functions", "views", "triggers", "relations", "columns")


@dataclass(frozen=True)
class Change:
    kind: str  # functions, views, ...
    name: str
    what: str  # added | removed | changed

    def __str__(self) -> str:
        return f"{self.kind[:-1]} {self.name} {self.what}"


def schema_catalog(
    conn: psycopg.Connection, kinds: tuple[str, ...] = tuple(QUERIES)
) -> dict[str, dict[str, str]]:
    return {kind: dict(conn.execute(QUERIES[kind]).fetchall()) for kind in kinds}


def diff(before: dict[str, dict[str, str]], after: dict[str, dict[str, str]]) -> list[Change]:
    """Objects added, removed or changed between two catalogs, sorted by kind and name."""
    changes = []
    for kind in before.keys() | after.keys():
        old, new = before.get(kind, {}), after.get(kind, {})
        for name in old.keys() | new.keys():
            if name not in old:
                changes.append(Change(kind, name, "added"))
            elif name not in new:
                changes.append(Change(kind, name, "removed"))
            elif old[name] != new[name]:
                changes.append(Change(kind, name, "changed"))
    return sorted(changes, key=lambda c: (c.kind, c.name))
