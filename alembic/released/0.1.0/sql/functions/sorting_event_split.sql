-- Deterministic train/holdout split by event id (a hash, so it does not drift as events arrive
-- and every head version is gated on the same held-out events).
CREATE OR REPLACE FUNCTION sorting_event_split(event_id integer)
RETURNS text
LANGUAGE sql STABLE
SET search_path = public, pg_temp
AS $$
    SELECT CASE
        WHEN abs(hashint4(event_id)::bigint) % 100 < heaters_setting('holdout_percent')::integer THEN 'holdout'
        ELSE 'train'
    END;
$$;
