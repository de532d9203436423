-- Creates (if missing) the HNSW index that serves one embedding variant. `embeddings.embedding`
-- has no fixed dimension, so the index is on the expression embedding::vector(dim), restricted to
-- the variant's rows; queries must repeat both (functions/nearest_in_variant.sql). Returns its name.
-- (heaters-db itself builds it CONCURRENTLY first: functions/variant_index_definition.sql.)
CREATE OR REPLACE FUNCTION ensure_variant_index(variant_id integer)
RETURNS text
LANGUAGE plpgsql
-- SECURITY DEFINER: building an index needs the table's owner; the worker role only calls this.
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    d record;
BEGIN
    SELECT * INTO d FROM variant_index_definition(variant_id);
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I %s', d.index_name, d.definition);
    RETURN d.index_name;
END;
$$;
