-- Trigger body (AFTER INSERT ON clip_sorting_events, statement level): for each mode among the new
-- events, enqueue a train_head job if enough events arrived since the last training
-- (enqueue_train_job_if_due). SECURITY DEFINER: the sorter role inserts events without any right
-- on pipeline_jobs. The events matter more than the bookkeeping: should enqueueing fail (a
-- job row edited by hand into something unreadable), the events are stored all the same and
-- the failure is a WARNING (the client sees it, and the server log), not the INSERT's error.
CREATE OR REPLACE FUNCTION enqueue_due_train_jobs()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    new_mode text;
BEGIN
    FOR new_mode IN SELECT DISTINCT n.sorting_mode FROM new_events n ORDER BY 1 LOOP
        BEGIN
            PERFORM enqueue_train_job_if_due(new_mode);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'sorting events stored, but no train_head job could be enqueued for %: % (SQLSTATE %)',
                new_mode, SQLERRM, SQLSTATE
                USING HINT = 'heaters-db jobs shows the queue; heaters-db train --mode queues one by hand';
        END;
    END LOOP;
    RETURN NULL;
END;
$$;
