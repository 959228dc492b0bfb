-- The maintenance loop's sweeps (expired leases, stale queues, cancelled runs, the outbox),
-- the worker registry and the operations overview. Run by orchestrator.storage.maintenance.

-- name: expired_leases
SELECT id, backfill_id FROM transfer_runs
WHERE state = {run.running} AND lease_expires_at < now()
ORDER BY lease_expires_at
LIMIT $1;

-- name: stale_queued
-- Queued runs nobody claimed for a while: their dispatch message is published again.
UPDATE transfer_runs SET queued_at = now(), updated_at = now()
WHERE id IN (SELECT id FROM transfer_runs
             WHERE state = {run.queued} AND queued_at < now() - make_interval(secs => $1)
             ORDER BY queued_at LIMIT $2
             FOR UPDATE SKIP LOCKED)
RETURNING id, backfill_id;

-- name: sweep_cancelled_runs
-- The pending runs of cancelled backfills, already counted as cancelled by the cancel,
-- marked cancelled a chunk at a time.
WITH picked AS (
    SELECT r.id FROM backfills b
    JOIN transfer_runs r ON r.backfill_id = b.id AND r.state = {run.pending}
    WHERE b.state = {backfill.cancelled}
    LIMIT $1
    FOR UPDATE OF r SKIP LOCKED)
UPDATE transfer_runs t SET state = {run.cancelled}, finished_at = now(), updated_at = now()
FROM picked WHERE t.id = picked.id
RETURNING t.id;

-- name: dispatchable_backfills
SELECT b.id FROM backfills b
WHERE b.state IN {backfill.DISPATCHABLE}
  AND EXISTS (SELECT 1 FROM transfer_runs r
              WHERE r.backfill_id = b.id AND r.state = {run.pending} AND r.not_before <= now())
ORDER BY b.id
LIMIT $1;

-- name: prune_outbox
DELETE FROM outbox WHERE sent_at < now() - make_interval(secs => $1);

-- name: worker_seen
-- $5 the runs it executes at once (NULL: none), vouched for until $6 seconds from now.
INSERT INTO workers (id, hostname, pid, roles, concurrency, live_until)
VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))
ON CONFLICT (id) DO UPDATE SET last_seen_at = now(), stopped_at = NULL,
    concurrency = EXCLUDED.concurrency, live_until = EXCLUDED.live_until;

-- name: worker_stopped
UPDATE workers SET stopped_at = now(), last_seen_at = now(), live_until = NULL WHERE id = $1;

-- name: overview_backfills
SELECT state, count(*) AS n FROM backfills GROUP BY state;

-- name: overview_runs
SELECT state, count(*) AS n FROM transfer_runs GROUP BY state;

-- name: overview_oldest_pending
SELECT id, backfill_id, created_at, not_before FROM transfer_runs
WHERE state = {run.pending} ORDER BY created_at, id LIMIT 1;

-- name: overview_workers
-- A worker is alive while its last heartbeat vouches for it (`live_until`, by its own
-- heartbeat period): the same test the capacity counts its slots by, so the overview never
-- shows alive a worker whose slots dispatch no longer counts. $1: for a row written before
-- heartbeats said so, the seconds without one after which it is stale.
SELECT id, hostname, pid, roles, concurrency, started_at, last_seen_at, stopped_at,
       CASE WHEN stopped_at IS NOT NULL THEN 'stopped'
            WHEN coalesce(live_until, last_seen_at + make_interval(secs => $1)) > now()
                THEN 'alive'
            ELSE 'stale' END AS status
FROM workers
WHERE last_seen_at > now() - interval '1 day'
ORDER BY last_seen_at DESC LIMIT 100;

-- name: dispatch_capacity
-- The capacity the fair shares use now, in their own words ($1: the setting, 0 when unset).
SELECT
    {part.capacity_in_force($1)}
    AS n;

-- name: overview_outbox
SELECT count(*) AS unsent, min(created_at) AS oldest FROM outbox WHERE sent_at IS NULL;

-- name: active_backfill_progress
-- The counters of active backfills, oldest first, for the per-backfill metrics: the
-- backfills' own counters, so no run is counted (backfills_state_id serves the filter).
SELECT id, target_id, team_id, kind, state, planning_done, rows_initial_count,
       rows_processed_count, rows_ingested_count,
       runs_total, runs_completed, runs_failed, runs_cancelled
FROM backfills
WHERE state = ANY($1::text[]) AND deleted_at IS NULL
ORDER BY id
LIMIT $2;

-- name: lock_expired_run
-- The run of expired_leases, still running past its lease, locked (the caller holds its
-- backfill's lock): a heartbeat or an end that came in meanwhile leaves nothing to reap.
SELECT * FROM transfer_runs
WHERE id = $1 AND state = {run.running} AND lease_expires_at < now()
FOR UPDATE;
