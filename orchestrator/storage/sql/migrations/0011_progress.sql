-- Progress: rates over the last minute read the runs that ended in it (and the running
-- ones, found by the partial index on running leases), so runs are found by when they ended.
CREATE INDEX transfer_runs_finished_at ON transfer_runs (finished_at) WHERE finished_at IS NOT NULL;

-- When a backfill.progress event was last published for a backfill: any number of workers
-- sweep, and the one whose update wins publishes, so each period gets one event.
ALTER TABLE backfills ADD COLUMN progress_published_at timestamptz;
