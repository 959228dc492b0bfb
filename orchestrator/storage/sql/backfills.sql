-- Backfills as the API sees them: create, read, page, cancel, pause, retry, re-plan, delete.
-- Run by orchestrator.storage.backfills. Every statement that changes a state repeats the
-- state machine's guard in its WHERE clause: zero rows means a conflict. The states come
-- from orchestrator.domain.states (`{run.pending}`, `{backfill.ACTIVE}`: see queries.py).

-- name: active_table_backfill
-- $3: a backfill not to count (the one being re-planned), or 0.
SELECT id FROM backfills
WHERE target_id = $1 AND table_name = $2 AND id <> $3
  AND state IN {backfill.ACTIVE}
LIMIT 1;

-- name: overlapping_range_backfill
SELECT id FROM backfills
WHERE target_id = $1 AND kind = 'date_range' AND id <> $4
  AND state IN {backfill.ACTIVE}
  AND covered_from < $3 AND $2 < covered_to
LIMIT 1;

-- name: backfill_by_command
SELECT * FROM backfills WHERE command_id = $1;

-- name: get_backfill_by_id
-- A team's lookups do not see deleted backfills; workers (no team) still do, to finish runs.
SELECT * FROM backfills
WHERE id = $1 AND ($2::bigint IS NULL OR (team_id = $2 AND deleted_at IS NULL));

-- name: get_backfill_by_uuid
SELECT * FROM backfills
WHERE uuid = $1 AND ($2::bigint IS NULL OR (team_id = $2 AND deleted_at IS NULL));

-- name: latest_backfill
SELECT * FROM backfills
WHERE target_id = $1 AND team_id = $2 AND deleted_at IS NULL
ORDER BY id DESC
LIMIT 1;

-- name: list_backfills
SELECT * FROM backfills
WHERE team_id = $5 AND deleted_at IS NULL
  AND ($1::bigint IS NULL OR target_id = $1)
  AND ($2::text[] IS NULL OR state = ANY($2))
  AND ($3::bigint IS NULL OR id < $3)
ORDER BY id DESC
LIMIT $4;

-- name: offset_page_backfills
-- An offset page (for APIs that page by offset, as Mage's does), newest first.
SELECT * FROM backfills
WHERE team_id = $1 AND deleted_at IS NULL
  AND ($2::bigint IS NULL OR target_id = $2)
  AND ($3::text IS NULL OR kind = $3)
ORDER BY id DESC
OFFSET $4 LIMIT $5;

-- name: count_backfills
SELECT count(*) FROM backfills
WHERE team_id = $1 AND deleted_at IS NULL
  AND ($2::bigint IS NULL OR target_id = $2)
  AND ($3::text IS NULL OR kind = $3);

-- name: error_reports
SELECT backfill_id, id AS run_id, window_start, window_end, lower_key, upper_key, attempt,
       coalesce(error, {run.failed}) AS error
FROM transfer_runs
WHERE backfill_id = ANY($1::bigint[]) AND state = {run.failed}
ORDER BY backfill_id, seq;

-- name: unqueue_runs
-- Pausing returns queued runs to pending, so a dispatch message already sent finds nothing.
WITH unqueued AS (
    UPDATE transfer_runs SET state = {run.pending}, queued_at = NULL, updated_at = now()
    WHERE backfill_id = $1 AND state = {run.queued}
    RETURNING 1)
SELECT count(*) FROM unqueued;

-- name: add_cancelled_runs
UPDATE backfills SET runs_cancelled = runs_cancelled + $2, updated_at = now()
WHERE id = $1 RETURNING *;

-- name: cancel_runs
-- A cancel in one statement: queued runs are cancelled at once, and so are pending ones
-- when there are at most $2. More than that are only counted here (the backfill is
-- cancelled, so none of them can be dispatched or claimed again) and marked by
-- sweep_cancelled_runs after the cancel has answered. Returns how many runs it cancelled,
-- counted or marked. Caller holds the backfill lock.
WITH pending AS (
    SELECT count(*) AS n FROM transfer_runs WHERE backfill_id = $1 AND state = {run.pending}),
cancelled AS (
    UPDATE transfer_runs SET state = {run.cancelled}, finished_at = now(), updated_at = now()
    WHERE backfill_id = $1
      AND (state = {run.queued} OR (state = {run.pending} AND (SELECT n FROM pending) <= $2))
    RETURNING 1)
SELECT (SELECT count(*) FROM cancelled)
     + CASE WHEN (SELECT n FROM pending) > $2 THEN (SELECT n FROM pending) ELSE 0 END;

-- name: settle_runs_total
-- Planning stopped for good (a cancel): the runs that exist are all the backfill will have.
UPDATE backfills SET runs_total = runs_created
WHERE id = $1 AND NOT planning_done AND runs_total <> runs_created
RETURNING *;

-- name: set_cancelled_by
UPDATE backfills SET cancelled_by = $2 WHERE id = $1 RETURNING *;

-- name: mark_backfill_deleted
UPDATE backfills SET deleted_at = now(), updated_at = now() WHERE id = $1 RETURNING *;

-- name: retry_failed_runs
-- A retry starts each failed run afresh: its attempts count from zero again, and a table
-- run resumes after its last checkpoint.
WITH retried AS (
    UPDATE transfer_runs SET
        state = {run.pending}, attempt = 0, not_before = now(),
        queued_at = NULL, finished_at = NULL, updated_at = now()
    WHERE backfill_id = $1 AND state = {run.failed}
    RETURNING 1)
SELECT count(*) FROM retried;

-- name: uncount_failed_runs
UPDATE backfills SET runs_failed = runs_failed - $2, failed_at = NULL, updated_at = now()
WHERE id = $1
RETURNING *;

-- name: drop_runs
DELETE FROM transfer_runs WHERE backfill_id = $1;

-- name: reset_planning
-- Re-planning starts from scratch: a planner still holding the old plan's lease is fenced
-- (its next batch finds another token) and the sweep or the command hands it on.
UPDATE backfills SET
    planning_cursor = NULL, planning_seq = 0, planning_done = false,
    planner_token = NULL, planner_expires_at = NULL,
    runs_created = 0, runs_completed = 0, runs_failed = 0, runs_cancelled = 0,
    updated_at = now()
WHERE id = $1
RETURNING *;
