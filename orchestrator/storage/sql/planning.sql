-- Planning: a planner's lease on a backfill and the runs it inserts. Run by
-- orchestrator.storage.planning.

-- name: claim_planning
-- A planner takes a backfill for planning with a lease; a planner that died loses it.
UPDATE backfills SET
    planner_token = $2,
    planner_expires_at = now() + make_interval(secs => $3),
    state = CASE WHEN state = {backfill.created} THEN {backfill.scheduled} ELSE state END,
    updated_at = now()
WHERE id = $1 AND NOT planning_done
  AND state IN {backfill.ACTIVE}
  AND (planner_token IS NULL OR planner_token = $2 OR planner_expires_at < now())
RETURNING *;

-- name: planning_candidates
SELECT id FROM backfills
WHERE NOT planning_done AND state IN {backfill.ACTIVE}
  AND (planner_token IS NULL OR planner_expires_at < now())
ORDER BY id
LIMIT $1;

-- name: set_upper_bound
UPDATE backfills SET upper_bound = $3, updated_at = now()
WHERE id = $1 AND planner_token = $2 AND upper_bound IS NULL
RETURNING upper_bound;

-- name: set_initial_count
UPDATE backfills SET rows_initial_count = $2, updated_at = now()
WHERE id = $1 AND rows_initial_count IS NULL;

-- name: insert_runs
INSERT INTO transfer_runs (backfill_id, seq, lower_key, upper_key, window_start, window_end)
SELECT $1, r.seq, r.lower_key, r.upper_key, r.window_start, r.window_end
FROM jsonb_to_recordset($2::jsonb)
     AS r(seq integer, lower_key text[], upper_key text[],
          window_start timestamptz, window_end timestamptz)
ON CONFLICT (backfill_id, seq) DO NOTHING;

-- name: advance_planning
-- Counts grow by what this batch inserted: a resumed planner re-inserting a batch adds 0.
UPDATE backfills SET
    planning_cursor = $3,
    planning_seq = $4,
    planning_done = $5,
    runs_created = runs_created + $8,
    runs_total = CASE WHEN $5 OR $6::integer IS NULL THEN runs_created + $8 ELSE $6 END,
    runs_planned = CASE WHEN $5 THEN runs_created + $8 ELSE runs_planned END,
    planner_expires_at = now() + make_interval(secs => $7),
    updated_at = now()
WHERE id = $1 AND planner_token = $2
RETURNING *;

-- name: earlier_window_outcomes
-- For each of the given window starts, the latest finished run of that window in the
-- target's other backfills: what `reprocess` decides from.
SELECT DISTINCT ON (r.window_start, r.window_end) r.window_start, r.window_end, r.state
FROM backfills b
JOIN transfer_runs r ON r.backfill_id = b.id
WHERE b.target_id = $1 AND b.id <> $2
  AND r.window_start = ANY($3::timestamptz[])
  AND r.state IN {run.OUTCOMES}
ORDER BY r.window_start, r.window_end, r.finished_at DESC NULLS LAST, r.id DESC;
