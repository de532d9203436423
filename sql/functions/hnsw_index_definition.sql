-- The one shape of every heaters-db HNSW index: a partial index on the expression
-- embedding::vector(dim) (the vector columns have no fixed dimension), restricted by `predicate`
-- to one variant's or one head's rows. Returns the definition (what follows CREATE INDEX <name>)
-- and whether an index of that name exists already and is valid. The search functions repeat the
-- expression and the predicate as literals (nearest_clips_in_index, nearest_moments) so the
-- planner matches the index.
CREATE OR REPLACE FUNCTION hnsw_index_definition(name text, table_name text, dim integer, predicate text)
RETURNS TABLE (index_name text, definition text, valid boolean, present boolean)
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp
AS $$
BEGIN
    index_name := name;
    definition := format('ON %I USING hnsw ((embedding::vector(%s)) vector_cosine_ops) WHERE %s',
                         table_name, dim, predicate);
    SELECT i.indisvalid, true INTO valid, present
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE c.relname = name AND c.relnamespace = 'public'::regnamespace;
    valid := coalesce(valid, false);
    present := coalesce(present, false);
    RETURN NEXT;
END;
$$;
