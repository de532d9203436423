-- Runtime queries of heaters_db/index_build.py (HNSW builds with CREATE INDEX CONCURRENTLY).

-- name: variant_index_definition
-- may_build: only the table's owner may CREATE INDEX (index_build falls back to ensure_variant_index).
SELECT index_name, definition, valid, present,
       pg_has_role((SELECT relowner FROM pg_class WHERE oid = 'embeddings'::regclass), 'USAGE') AS may_build
FROM variant_index_definition(%(id)s);

-- name: head_index_definition
-- may_build: only the table's owner may CREATE INDEX (index_build falls back to ensure_head_index).
SELECT index_name, definition, valid, present,
       pg_has_role((SELECT relowner FROM pg_class WHERE oid = 'projected_embeddings'::regclass), 'USAGE') AS may_build
FROM head_index_definition(%(id)s);

-- name: session_maintenance_work_mem
-- For this session's build only (reset after it), never below the server's own setting.
SELECT set_config('maintenance_work_mem',
                  CASE WHEN pg_size_bytes(%(value)s) > pg_size_bytes(current_setting('maintenance_work_mem'))
                       THEN %(value)s ELSE current_setting('maintenance_work_mem') END,
                  false);

-- name: reset_maintenance_work_mem
RESET maintenance_work_mem;

-- name: ensure_variant_index
SELECT ensure_variant_index(%(id)s);

-- name: ensure_head_index
SELECT ensure_head_index(%(id)s);
