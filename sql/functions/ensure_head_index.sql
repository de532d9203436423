-- Creates (if missing) the HNSW index over one projection head's projected embeddings, the one
-- head_index_definition describes. Returns its name.
-- (heaters-db itself builds it CONCURRENTLY first: heaters_db/index_build.py.)
CREATE OR REPLACE FUNCTION ensure_head_index(head_id integer) RETURNS text
-- SECURITY DEFINER: building an index needs the table's owner; the worker role only calls this.
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT create_index_from_definition(d.index_name, d.definition) FROM head_index_definition($1) d $$;
