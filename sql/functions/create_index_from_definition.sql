-- CREATE INDEX IF NOT EXISTS from a name and a definition of hnsw_index_definition; returns the
-- name. The four ensure_*_index functions (SECURITY DEFINER: building an index needs the table's
-- owner) call it, so it runs with their owner's rights; called directly it has only the caller's.
CREATE OR REPLACE FUNCTION create_index_from_definition(index_name text, definition text)
RETURNS text
LANGUAGE plpgsql SET search_path = public, pg_temp
AS $$
BEGIN
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I %s', index_name, definition);
    RETURN index_name;
END;
$$;
