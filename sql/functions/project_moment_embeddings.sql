-- Projects every window vector of the window variants of a head's base model through the head
-- into projected_moment_embeddings, replacing the head's earlier rows (batched:
-- project_stale_moment_embeddings, one apply_head_batch call per 2000 windows), then builds the
-- head's moment index. Called by the re-projection (heaters_db/learning/reproject.py, before
-- activation); windows written later are projected by the moment_embeddings trigger while the
-- head is a candidate or active. Returns the number of rows written.
--   SELECT project_moment_embeddings(7);
CREATE OR REPLACE FUNCTION project_moment_embeddings(head_id integer)
RETURNS integer
LANGUAGE sql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
    SELECT projection_head_by_id(head_id);  -- an unknown head is an error, not zero rows
    DELETE FROM projected_moment_embeddings p WHERE p.projection_head_id = head_id;
    -- Rows first, then the index over them (a bulk build, not one graph insertion per row).
    WITH written AS MATERIALIZED (SELECT project_stale_moment_embeddings(head_id) AS n)
    SELECT w.n FROM written w
    CROSS JOIN LATERAL (SELECT ensure_moment_head_index(head_id) WHERE w.n IS NOT NULL) built;
$$;
