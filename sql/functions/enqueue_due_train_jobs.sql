-- Trigger body (AFTER INSERT ON clip_sorting_events, statement level): for each mode among the new
-- events, enqueue a train_head job if enough events arrived since the last training
-- (enqueue_train_job_if_due). SECURITY DEFINER: the sorter role inserts events without any right
-- on pipeline_jobs.
CREATE OR REPLACE FUNCTION enqueue_due_train_jobs()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    new_mode text;
BEGIN
    FOR new_mode IN SELECT DISTINCT n.sorting_mode FROM new_events n ORDER BY 1 LOOP
        PERFORM enqueue_train_job_if_due(new_mode);
    END LOOP;
    RETURN NULL;
END;
$$;
