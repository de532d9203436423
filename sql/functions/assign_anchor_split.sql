-- Trigger body (AFTER INSERT ON clip_sorting_events, per row): the first event of an anchor clip
-- in a mode fixes that anchor's split for good (table sorting_anchor_splits), so every event of
-- one anchor lands in one split and no later change of a setting re-cuts the past.
--   evaluation screens (anchor_reason 'evaluation')  -> holdout: what the gate judges;
--   events without provenance (anchor_reason 'manual') -> holdout for holdout_percent of anchors;
--   then validation_percent of anchors                  -> validation: model selection only;
--   the rest                                            -> train.
-- The shares are by a hash of the anchor's clip id; later events of the anchor inherit its split.
-- SECURITY DEFINER: the sorter role inserts events without any right on the split table.
CREATE OR REPLACE FUNCTION assign_anchor_split()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    bucket integer := abs(hashint4(NEW.anchor_clip_id)::bigint) % 100;
    holdout integer := CASE WHEN NEW.anchor_reason = 'manual'
                            THEN heaters_setting('holdout_percent')::integer ELSE 0 END;
BEGIN
    INSERT INTO sorting_anchor_splits (sorting_mode, anchor_clip_id, split, first_event_id)
    VALUES (NEW.sorting_mode, NEW.anchor_clip_id,
            CASE WHEN NEW.anchor_reason = 'evaluation' OR bucket < holdout THEN 'holdout'
                 WHEN bucket < holdout + heaters_setting('validation_percent')::integer THEN 'validation'
                 ELSE 'train' END,
            NEW.id)
    ON CONFLICT (sorting_mode, anchor_clip_id) DO NOTHING;
    RETURN NULL;
END;
$$;
