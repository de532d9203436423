-- apply_head for many vectors at once: one PL/Python call and one numpy matrix product for a
-- whole statement's rows (the embeddings trigger and activate_head use it; per-row apply_head
-- costs a call and a parse per row). Same maths, same result as apply_head row by row.
CREATE OR REPLACE FUNCTION apply_head_batch(head_id integer, embeddings vector[]) RETURNS vector[]
LANGUAGE plpython3u STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $plpython$
#@ plpython/apply_head.py: plpython_batch_body(head_id, embeddings)
$plpython$;
