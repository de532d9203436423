-- Normalises a user-facing mode ('trick', 'spot', or the stored names) to the stored name. The
-- sorting page checks a mode before it reaches the database with the same rule
-- (heaters_db.web.store.normalise_mode; tests/integration/test_web_app.py holds them equal).
CREATE OR REPLACE FUNCTION sorting_mode(mode text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = public, pg_temp
AS $$
    SELECT required(
        CASE lower(trim($1))
            WHEN 'trick' THEN 'trick_similarity' WHEN 'trick_similarity' THEN 'trick_similarity'
            WHEN 'spot' THEN 'spot_similarity' WHEN 'spot_similarity' THEN 'spot_similarity'
        END,
        format('unknown mode %s: use trick or spot (or trick_similarity / spot_similarity)',
               coalesce(quote_literal($1), 'NULL')),
        'invalid_parameter_value');
$$;
