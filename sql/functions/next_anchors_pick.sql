-- The work behind next_anchors (functions/next_anchors.sql): plpython/active_learning.py
-- (next_anchors_body). VOLATILE: it calls random() and set_config(). hnsw.ef_search is restored
-- when it returns (it raises it for its neighbour scans).
CREATE OR REPLACE FUNCTION next_anchors_pick(mode text, n integer)
RETURNS TABLE (clip_id integer, score double precision, reason text)
LANGUAGE plpython3u VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
SET hnsw.ef_search = 40
AS $plpython$
#@ plpython/active_learning.py: next_anchors_body(mode, n)
$plpython$;
