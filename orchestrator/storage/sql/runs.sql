-- One run's life on a worker: claim, heartbeat, checkpoint, complete, fail, release. Each
-- write is fenced by the run's lease token. Run by orchestrator.storage.runs.

-- name: list_runs
SELECT * FROM transfer_runs
WHERE backfill_id = $1
  AND ($2::text[] IS NULL OR state = ANY($2))
  AND ($3::bigint IS NULL OR seq > $3)
ORDER BY seq
LIMIT $4;

-- name: claim_run
-- The claim: only a queued run of a dispatchable backfill can start; the lease token fences
-- every later write of this attempt. Caller holds the backfill lock.
UPDATE transfer_runs SET
    state = {run.running},
    attempt = attempt + 1,
    lease_token = $2,
    lease_expires_at = now() + make_interval(secs => $3),
    worker_id = $4,
    started_at = coalesce(started_at, clock_timestamp()),
    error = NULL,
    updated_at = now()
WHERE id = $1 AND state = {run.queued}
RETURNING *;

-- name: mark_backfill_started
UPDATE backfills SET
    state = CASE WHEN state = {backfill.scheduled} THEN {backfill.running} ELSE state END,
    started_at = coalesce(started_at, now()),
    updated_at = now()
WHERE id = $1;

-- name: heartbeat_run
UPDATE transfer_runs SET lease_expires_at = now() + make_interval(secs => $3), updated_at = now()
WHERE id = $1 AND lease_token = $2 AND state = {run.running}
RETURNING id;

-- name: owned_run_cursor
SELECT cursor FROM transfer_runs WHERE id = $1 AND lease_token = $2 AND state = {run.running};

-- name: checkpoint_run
UPDATE transfer_runs SET
    cursor = $3,
    rows_processed = rows_processed + $4,
    rows_ingested = rows_ingested + $5,
    lease_expires_at = now() + make_interval(secs => $6),
    updated_at = now()
WHERE id = $1 AND lease_token = $2 AND state = {run.running}
RETURNING id;

-- name: add_rows
UPDATE backfills SET
    rows_processed_count = rows_processed_count + $2,
    rows_ingested_count = rows_ingested_count + $3,
    updated_at = now()
WHERE id = $1;

-- name: complete_run
UPDATE transfer_runs SET
    state = {run.completed},
    rows_processed = rows_processed + $3,
    rows_ingested = rows_ingested + $4,
    lease_token = NULL, lease_expires_at = NULL,
    finished_at = now(), updated_at = now()
WHERE id = $1 AND lease_token = $2 AND state = {run.running}
RETURNING *;

-- name: retry_run
UPDATE transfer_runs SET
    state = {run.pending},
    error = $3,
    not_before = now() + make_interval(secs => $4),
    lease_token = NULL, lease_expires_at = NULL, queued_at = NULL,
    updated_at = now()
WHERE id = $1 AND lease_token = $2 AND state = {run.running}
RETURNING *;

-- name: release_run
-- A worker shutting down hands its run back: this attempt does not count.
UPDATE transfer_runs SET
    state = {run.pending},
    attempt = greatest(attempt - 1, 0),
    lease_token = NULL, lease_expires_at = NULL, queued_at = NULL,
    not_before = now(), updated_at = now()
WHERE id = $1 AND lease_token = $2 AND state = {run.running}
RETURNING id;

-- name: fail_run
UPDATE transfer_runs SET
    state = {run.failed},
    error = $3,
    lease_token = NULL, lease_expires_at = NULL,
    finished_at = now(), updated_at = now()
WHERE id = $1 AND lease_token = $2 AND state = {run.running}
RETURNING *;

-- name: cancel_pending_run
-- A run handed back to a cancelled backfill is cancelled alone (the backfill's other
-- pending runs were counted by its cancel already).
WITH cancelled AS (
    UPDATE transfer_runs SET state = {run.cancelled}, finished_at = now(), updated_at = now()
    WHERE id = $1 AND state = {run.pending}
    RETURNING 1)
SELECT count(*) FROM cancelled;

-- name: take_row_tokens
-- The rows-per-second bucket, shared by every worker running the backfill's runs: takes
-- $2 rows and returns the balance; below zero, the caller waits -balance / rate seconds
-- before delivering (a debt, so concurrent runs queue up behind each other). It holds at
-- most one second of rows.
UPDATE backfills SET
    row_tokens = least(
        max_rows_per_second,
        row_tokens + max_rows_per_second
            * extract(epoch FROM now() - coalesce(row_tokens_at, now()))) - $2,
    row_tokens_at = now()
WHERE id = $1 AND max_rows_per_second IS NOT NULL
RETURNING row_tokens, max_rows_per_second;
