-- Creates (if missing) the HNSW index over one projection head's projected embeddings: a partial
-- expression index like ensure_variant_index. Returns its name.
-- (heaters-db itself builds it CONCURRENTLY first: functions/head_index_definition.sql.)
CREATE OR REPLACE FUNCTION ensure_head_index(head_id integer)
RETURNS text
LANGUAGE plpgsql
-- SECURITY DEFINER: building an index needs the table's owner; the worker role only calls this.
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    d record;
BEGIN
    SELECT * INTO d FROM head_index_definition(head_id);
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I %s', d.index_name, d.definition);
    RETURN d.index_name;
END;
$$;
