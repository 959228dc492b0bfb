-- runs_planned: the runs a backfill's plan makes. A date range's windows are known when it
-- is created; a table's (and a filtered date range's) once planning is done; NULL until then.
-- runs_total stays "the runs it has or will have": once planning is done or stopped by a
-- cancel, exactly the runs that exist (runs_created), so a backfill cancelled while
-- planning no longer shows a total it will never reach.
ALTER TABLE backfills ADD COLUMN runs_planned integer CHECK (runs_planned >= 0);

UPDATE backfills SET runs_planned = runs_total
WHERE planning_done OR (kind = 'date_range' AND reprocess = 'all' AND state <> 'draft');

UPDATE backfills SET runs_total = runs_created
WHERE state = 'cancelled' AND NOT planning_done;
