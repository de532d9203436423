-- One NOTIFY per INSERT statement on clip_sorting_events, for listeners such as the sorting page.
CREATE OR REPLACE FUNCTION notify_sorting_events()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
DECLARE
    payload text;
BEGIN
    SELECT json_build_object('count', count(*), 'max_event_id', max(id),
                             'modes', array_agg(DISTINCT sorting_mode))::text
    INTO payload FROM new_events;
    PERFORM pg_notify('heaters_db_sorting_events', payload);
    RETURN NULL;
END;
$$;
