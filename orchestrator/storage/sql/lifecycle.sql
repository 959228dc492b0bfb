-- The moves shared by backfills and runs under the backfill's row lock: state changes,
-- dispatch with its fair share and throttle, the end of a run counted. Run by
-- orchestrator.storage.lifecycle.

-- name: lock_backfill
-- Every transaction that touches a backfill and its runs locks the backfill row first, so
-- cancel, pause, claims, checkpoints and completions serialise without deadlocks.
SELECT * FROM backfills WHERE id = $1 FOR UPDATE;

-- name: set_backfill_state
UPDATE backfills SET
    state = $2,
    updated_at = now(),
    paused_at = CASE WHEN $2 = {backfill.paused} THEN now() ELSE paused_at END,
    -- clock_timestamp(): stamps taken under the backfill lock follow the lock order, which
    -- is what "no run started after the cancel committed" is checked against.
    cancelled_at = CASE WHEN $2 = {backfill.cancelled} THEN clock_timestamp() ELSE cancelled_at END,
    completed_at = CASE WHEN $2 = {backfill.completed} THEN now() ELSE completed_at END,
    failed_at = CASE WHEN $2 = {backfill.failed} THEN now() ELSE failed_at END
WHERE id = $1 AND state = ANY($3::text[])
RETURNING *;

-- name: dispatch_runs
-- Tops a backfill up to max_active_runs queued + running runs (and at most $3, what its
-- runs-per-minute throttle allows now), in planning order, and writes one run.dispatch
-- message per run to the outbox. Caller holds the backfill lock.
WITH active AS (
    SELECT count(*) AS n FROM transfer_runs
    WHERE backfill_id = $1 AND state IN {run.ACTIVE}),
picked AS (
    SELECT id FROM transfer_runs
    WHERE backfill_id = $1 AND state = {run.pending} AND not_before <= now()
    ORDER BY seq
    LIMIT least($3, greatest(0, $2 - (SELECT n FROM active)))
    FOR UPDATE SKIP LOCKED),
queued AS (
    UPDATE transfer_runs t SET state = {run.queued}, queued_at = now(), updated_at = now()
    FROM picked WHERE t.id = picked.id
    RETURNING t.id)
INSERT INTO outbox (routing_key, payload)
SELECT 'run.dispatch',
       jsonb_build_object('type', 'run.dispatch', 'run_id', id, 'backfill_id', $1::bigint)
FROM queued
RETURNING id;

-- name: refill_run_tokens
-- The runs-per-minute bucket: refilled for the time since it was last looked at, holding
-- at most max_active_runs (what could be started at once anyway), at least one.
UPDATE backfills SET
    run_tokens = least(
        greatest(max_active_runs, 1),
        run_tokens + max_runs_per_minute / 60.0
            * extract(epoch FROM now() - coalesce(run_tokens_at, now()))),
    run_tokens_at = now()
WHERE id = $1
RETURNING run_tokens;

-- name: spend_run_tokens
UPDATE backfills SET run_tokens = run_tokens - $2 WHERE id = $1;

-- name: count_run_end
UPDATE backfills SET
    runs_completed = runs_completed + $2,
    runs_failed = runs_failed + $3,
    updated_at = now()
WHERE id = $1
RETURNING *;
