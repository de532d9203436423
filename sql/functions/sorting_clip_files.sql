-- The sorting page's one read of clips: the video path and label of the clips on a screen.
-- SECURITY DEFINER: heaters_sorter reads these three columns of the clips it asks for, and
-- nothing else of the table.
CREATE OR REPLACE FUNCTION sorting_clip_files(clip_ids numeric[])
RETURNS TABLE (id integer, clip_filepath text, clip_identifier text)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
    SELECT c.id, c.clip_filepath, c.clip_identifier
    FROM clips c
    WHERE c.id = ANY (integral_array($1, 'clip_ids'));
$$;
