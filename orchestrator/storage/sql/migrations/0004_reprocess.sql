-- Which windows a date-range backfill runs: all of them, only those no earlier backfill of
-- the target completed ('none': do not reprocess), or only those whose latest earlier run
-- failed ('failed').
ALTER TABLE backfills ADD COLUMN reprocess text NOT NULL DEFAULT 'all'
    CHECK (reprocess IN ('all', 'none', 'failed'));
