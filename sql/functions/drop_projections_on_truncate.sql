-- Trigger body (AFTER TRUNCATE ON embeddings): with every base vector gone, every projection is
-- an orphan (functions/drop_orphaned_projections.sql covers DELETE and UPDATE; TRUNCATE fires
-- no row triggers). Kept, similar_clips went on answering for the active heads from vectors
-- that no longer exist while the base space said "no embedding yet". Re-embedding projects
-- the clips again (project_new_embeddings). Moment projections derive from moment_embeddings
-- and stay. SECURITY DEFINER: whoever truncates embeddings need not write projected_embeddings.
CREATE OR REPLACE FUNCTION drop_projections_on_truncate()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
BEGIN
    DELETE FROM projected_embeddings;
    RETURN NULL;
END;
$$;
