-- Creates (if missing) the HNSW index that serves one embedding variant, the one
-- variant_index_definition describes. `embeddings.embedding` has no fixed dimension, so the index
-- is on the expression embedding::vector(dim), restricted to the variant's rows; queries must
-- repeat both (functions/nearest_in_variant.sql). Returns its name.
-- (heaters-db itself builds it CONCURRENTLY first: heaters_db/index_build.py.)
CREATE OR REPLACE FUNCTION ensure_variant_index(variant_id integer) RETURNS text
-- SECURITY DEFINER: building an index needs the table's owner; the worker role only calls this.
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT create_index_from_definition(d.index_name, d.definition) FROM variant_index_definition($1) d $$;
