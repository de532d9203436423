-- clip_sorting_events is an append-only log: training data is reproducible only if past choices
-- never change. A wrong choice is corrected by a new event, never by editing an old one.
CREATE OR REPLACE FUNCTION refuse_sorting_event_change()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'clip_sorting_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Insert a new event instead of changing an old one.';
END;
$$;
