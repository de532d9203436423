-- Public API: a stored projection head applied to a base vector (PL/Python + numpy).
-- The body is plpython/apply_head.py (plpython_body); heaters_db.rerunnable puts the file in
-- where the `#@ plpython/...` line stands, so the file stays testable outside Postgres.
CREATE OR REPLACE FUNCTION apply_head(head_id integer, embedding vector) RETURNS vector
LANGUAGE plpython3u STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $plpython$
#@ plpython/apply_head.py: plpython_body(head_id, embedding)
$plpython$;
