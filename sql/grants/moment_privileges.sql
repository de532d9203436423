-- Who may call the moment functions (kept apart from function_privileges.sql so issue 12's
-- objects merge on their own): the two search functions are part of the read API; the rest are
-- internal or administrative.
REVOKE ALL ON FUNCTION similar_moments(integer, double precision, double precision, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION similar_moments_to_embedding(vector, text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION similar_moments(double precision, double precision, double precision, text, double precision) FROM PUBLIC;
REVOKE ALL ON FUNCTION similar_moments_to_embedding(vector, text, double precision) FROM PUBLIC;
REVOKE ALL ON FUNCTION project_moment_embeddings(integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION project_new_moment_embeddings() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    similar_moments(integer, double precision, double precision, text, integer),
    similar_moments_to_embedding(vector, text, integer),
    similar_moments(double precision, double precision, double precision, text, double precision),
    similar_moments_to_embedding(vector, text, double precision)
TO heaters_sorter, heaters_worker;
-- heaters_worker (see worker_privileges.sql): the daemon stores a clip's windows and builds and
-- projects the moment indexes; index builds and projection run with the owner's rights
-- (SECURITY DEFINER), as ensure_variant_index does.
REVOKE ALL ON FUNCTION ensure_moment_index(integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION ensure_moment_head_index(integer) FROM PUBLIC;
GRANT SELECT, INSERT, DELETE ON moment_embeddings TO heaters_worker;
GRANT USAGE ON SEQUENCE moment_embeddings_id_seq TO heaters_worker;
GRANT SELECT ON projected_moment_embeddings TO heaters_worker;
GRANT EXECUTE ON FUNCTION
    project_moment_embeddings(integer),
    ensure_moment_index(integer),
    ensure_moment_head_index(integer)
TO heaters_worker;
