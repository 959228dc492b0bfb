-- Throttles per backfill, enforced across every worker by token buckets kept on the
-- backfill's row (taken under the row lock every run-changing transaction already holds).
ALTER TABLE backfills ADD COLUMN max_runs_per_minute double precision
    CHECK (max_runs_per_minute > 0);
ALTER TABLE backfills ADD COLUMN max_rows_per_second double precision
    CHECK (max_rows_per_second > 0);
ALTER TABLE backfills ADD COLUMN run_tokens double precision NOT NULL DEFAULT 0;
ALTER TABLE backfills ADD COLUMN run_tokens_at timestamptz;
ALTER TABLE backfills ADD COLUMN row_tokens double precision NOT NULL DEFAULT 0;
ALTER TABLE backfills ADD COLUMN row_tokens_at timestamptz;
