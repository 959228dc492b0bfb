-- Named statements, loaded by orchestrator.storage.queries. Every statement that changes a
-- state repeats the state machine's guard in its WHERE clause: zero rows means a conflict.

-- name: insert_target
INSERT INTO targets (name, kind, source, tables, sort_column, sink, handler, variables,
                     chunk_size, interval_type, interval_units, max_active_runs, max_attempts,
                     team_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
RETURNING *;

-- Team filters: NULL means any team (workers), a team id means exactly that team (the API);
-- another team's object is simply not found.

-- name: get_target_by_id
SELECT * FROM targets WHERE id = $1 AND ($2::bigint IS NULL OR team_id = $2);

-- name: get_target_by_name
SELECT * FROM targets WHERE name = $1 AND team_id = $2;

-- name: get_target_by_uuid
SELECT * FROM targets WHERE uuid = $1 AND ($2::bigint IS NULL OR team_id = $2);

-- name: list_targets
SELECT * FROM targets
WHERE team_id = $3 AND ($1::bigint IS NULL OR id > $1)
ORDER BY id LIMIT $2;

-- name: target_has_active_backfill
SELECT EXISTS (
    SELECT 1 FROM backfills
    WHERE target_id = $1 AND state IN ('created', 'scheduled', 'running', 'paused'));

-- name: delete_target_backfills
DELETE FROM backfills WHERE target_id = $1;

-- name: delete_target
DELETE FROM targets WHERE id = $1;

-- name: lock_target
-- Serialises backfill creation per target so the overlap check and the insert are atomic.
SELECT pg_advisory_xact_lock(8123, $1::int);

-- name: active_table_backfill
-- $3: a backfill not to count (the one being re-planned), or 0.
SELECT id FROM backfills
WHERE target_id = $1 AND table_name = $2 AND id <> $3
  AND state IN ('created', 'scheduled', 'running', 'paused')
LIMIT 1;

-- name: overlapping_range_backfill
SELECT id FROM backfills
WHERE target_id = $1 AND kind = 'date_range' AND id <> $4
  AND state IN ('created', 'scheduled', 'running', 'paused')
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

-- name: lock_backfill
-- Every transaction that touches a backfill and its runs locks the backfill row first, so
-- cancel, pause, claims, checkpoints and completions serialise without deadlocks.
SELECT * FROM backfills WHERE id = $1 FOR UPDATE;

-- name: list_backfills
SELECT * FROM backfills
WHERE team_id = $5 AND deleted_at IS NULL
  AND ($1::bigint IS NULL OR target_id = $1)
  AND ($2::text[] IS NULL OR state = ANY($2))
  AND ($3::bigint IS NULL OR id < $3)
ORDER BY id DESC
LIMIT $4;

-- name: error_reports
SELECT backfill_id, id AS run_id, window_start, window_end, lower_key, upper_key, attempt,
       coalesce(error, 'failed') AS error
FROM transfer_runs
WHERE backfill_id = ANY($1::bigint[]) AND state = 'failed'
ORDER BY backfill_id, seq;

-- name: list_runs
SELECT * FROM transfer_runs
WHERE backfill_id = $1
  AND ($2::text[] IS NULL OR state = ANY($2))
  AND ($3::bigint IS NULL OR seq > $3)
ORDER BY seq
LIMIT $4;

-- name: set_backfill_state
UPDATE backfills SET
    state = $2,
    updated_at = now(),
    paused_at = CASE WHEN $2 = 'paused' THEN now() ELSE paused_at END,
    -- clock_timestamp(): stamps taken under the backfill lock follow the lock order, which
    -- is what "no run started after the cancel committed" is checked against.
    cancelled_at = CASE WHEN $2 = 'cancelled' THEN clock_timestamp() ELSE cancelled_at END,
    completed_at = CASE WHEN $2 = 'completed' THEN now() ELSE completed_at END,
    failed_at = CASE WHEN $2 = 'failed' THEN now() ELSE failed_at END
WHERE id = $1 AND state = ANY($3::text[])
RETURNING *;

-- name: cancel_open_runs
-- Pending and queued runs are cancelled; running ones finish and still roll up.
WITH cancelled AS (
    UPDATE transfer_runs SET state = 'cancelled', finished_at = now(), updated_at = now()
    WHERE backfill_id = $1 AND state IN ('pending', 'queued')
    RETURNING 1)
SELECT count(*) FROM cancelled;

-- name: unqueue_runs
-- Pausing returns queued runs to pending, so a dispatch message already sent finds nothing.
WITH unqueued AS (
    UPDATE transfer_runs SET state = 'pending', queued_at = NULL, updated_at = now()
    WHERE backfill_id = $1 AND state = 'queued'
    RETURNING 1)
SELECT count(*) FROM unqueued;

-- name: add_cancelled_runs
UPDATE backfills SET runs_cancelled = runs_cancelled + $2, updated_at = now()
WHERE id = $1 RETURNING *;

-- name: dispatch_runs
-- Tops a backfill up to max_active_runs queued + running runs (and at most $3, what its
-- runs-per-minute throttle allows now), in planning order, and writes one run.dispatch
-- message per run to the outbox. Caller holds the backfill lock.
WITH active AS (
    SELECT count(*) AS n FROM transfer_runs
    WHERE backfill_id = $1 AND state IN ('queued', 'running')),
picked AS (
    SELECT id FROM transfer_runs
    WHERE backfill_id = $1 AND state = 'pending' AND not_before <= now()
    ORDER BY seq
    LIMIT least($3, greatest(0, $2 - (SELECT n FROM active)))
    FOR UPDATE SKIP LOCKED),
queued AS (
    UPDATE transfer_runs t SET state = 'queued', queued_at = now(), updated_at = now()
    FROM picked WHERE t.id = picked.id
    RETURNING t.id)
INSERT INTO outbox (routing_key, payload)
SELECT 'run.dispatch',
       jsonb_build_object('type', 'run.dispatch', 'run_id', id, 'backfill_id', $1::bigint)
FROM queued
RETURNING id;

-- name: dispatchable_backfills
SELECT b.id FROM backfills b
WHERE b.state IN ('scheduled', 'running')
  AND EXISTS (SELECT 1 FROM transfer_runs r
              WHERE r.backfill_id = b.id AND r.state = 'pending' AND r.not_before <= now())
ORDER BY b.id
LIMIT $1;

-- name: enqueue
INSERT INTO outbox (routing_key, payload) VALUES ($1, $2) RETURNING id;

-- name: record_command
INSERT INTO applied_commands (command_id, type, backfill_id) VALUES ($1, $2, $3)
ON CONFLICT (command_id) DO NOTHING
RETURNING command_id;

-- name: claim_planning
-- A planner takes a backfill for planning with a lease; a planner that died loses it.
UPDATE backfills SET
    planner_token = $2,
    planner_expires_at = now() + make_interval(secs => $3),
    state = CASE WHEN state = 'created' THEN 'scheduled' ELSE state END,
    updated_at = now()
WHERE id = $1 AND NOT planning_done
  AND state IN ('created', 'scheduled', 'running', 'paused')
  AND (planner_token IS NULL OR planner_token = $2 OR planner_expires_at < now())
RETURNING *;

-- name: planning_candidates
SELECT id FROM backfills
WHERE NOT planning_done AND state IN ('created', 'scheduled', 'running', 'paused')
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

-- name: settle_runs_total
-- Planning stopped for good (a cancel): the runs that exist are all the backfill will have.
UPDATE backfills SET runs_total = runs_created
WHERE id = $1 AND NOT planning_done AND runs_total <> runs_created
RETURNING *;

-- name: claim_run
-- The claim: only a queued run of a dispatchable backfill can start; the lease token fences
-- every later write of this attempt. Caller holds the backfill lock.
UPDATE transfer_runs SET
    state = 'running',
    attempt = attempt + 1,
    lease_token = $2,
    lease_expires_at = now() + make_interval(secs => $3),
    worker_id = $4,
    started_at = coalesce(started_at, clock_timestamp()),
    error = NULL,
    updated_at = now()
WHERE id = $1 AND state = 'queued'
RETURNING *;

-- name: mark_backfill_started
UPDATE backfills SET
    state = CASE WHEN state = 'scheduled' THEN 'running' ELSE state END,
    started_at = coalesce(started_at, now()),
    updated_at = now()
WHERE id = $1;

-- name: heartbeat_run
UPDATE transfer_runs SET lease_expires_at = now() + make_interval(secs => $3), updated_at = now()
WHERE id = $1 AND lease_token = $2 AND state = 'running'
RETURNING id;

-- name: owned_run_cursor
SELECT cursor FROM transfer_runs WHERE id = $1 AND lease_token = $2 AND state = 'running';

-- name: checkpoint_run
UPDATE transfer_runs SET
    cursor = $3,
    rows_processed = rows_processed + $4,
    rows_ingested = rows_ingested + $5,
    lease_expires_at = now() + make_interval(secs => $6),
    updated_at = now()
WHERE id = $1 AND lease_token = $2 AND state = 'running'
RETURNING id;

-- name: add_rows
UPDATE backfills SET
    rows_processed_count = rows_processed_count + $2,
    rows_ingested_count = rows_ingested_count + $3,
    updated_at = now()
WHERE id = $1;

-- name: complete_run
UPDATE transfer_runs SET
    state = 'completed',
    rows_processed = rows_processed + $3,
    rows_ingested = rows_ingested + $4,
    lease_token = NULL, lease_expires_at = NULL,
    finished_at = now(), updated_at = now()
WHERE id = $1 AND lease_token = $2 AND state = 'running'
RETURNING *;

-- name: retry_run
UPDATE transfer_runs SET
    state = 'pending',
    error = $3,
    not_before = now() + make_interval(secs => $4),
    lease_token = NULL, lease_expires_at = NULL, queued_at = NULL,
    updated_at = now()
WHERE id = $1 AND lease_token = $2 AND state = 'running'
RETURNING *;

-- name: release_run
-- A worker shutting down hands its run back: this attempt does not count.
UPDATE transfer_runs SET
    state = 'pending',
    attempt = greatest(attempt - 1, 0),
    lease_token = NULL, lease_expires_at = NULL, queued_at = NULL,
    not_before = now(), updated_at = now()
WHERE id = $1 AND lease_token = $2 AND state = 'running'
RETURNING id;

-- name: fail_run
UPDATE transfer_runs SET
    state = 'failed',
    error = $3,
    lease_token = NULL, lease_expires_at = NULL,
    finished_at = now(), updated_at = now()
WHERE id = $1 AND lease_token = $2 AND state = 'running'
RETURNING *;

-- name: count_run_end
UPDATE backfills SET
    runs_completed = runs_completed + $2,
    runs_failed = runs_failed + $3,
    updated_at = now()
WHERE id = $1
RETURNING *;

-- name: expired_leases
SELECT id, backfill_id FROM transfer_runs
WHERE state = 'running' AND lease_expires_at < now()
ORDER BY lease_expires_at
LIMIT $1;

-- name: stale_queued
-- Queued runs nobody claimed for a while: their dispatch message is published again.
UPDATE transfer_runs SET queued_at = now(), updated_at = now()
WHERE id IN (SELECT id FROM transfer_runs
             WHERE state = 'queued' AND queued_at < now() - make_interval(secs => $1)
             ORDER BY queued_at LIMIT $2
             FOR UPDATE SKIP LOCKED)
RETURNING id, backfill_id;

-- name: prune_outbox
DELETE FROM outbox WHERE sent_at < now() - make_interval(secs => $1);

-- name: fetch_outbox
SELECT id, routing_key, message_id, payload FROM outbox
WHERE sent_at IS NULL
ORDER BY id
LIMIT $1
FOR UPDATE SKIP LOCKED;

-- name: mark_outbox_sent
UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[]);

-- name: worker_seen
INSERT INTO workers (id, hostname, pid, roles) VALUES ($1, $2, $3, $4)
ON CONFLICT (id) DO UPDATE SET last_seen_at = now(), stopped_at = NULL;

-- name: worker_stopped
UPDATE workers SET stopped_at = now(), last_seen_at = now() WHERE id = $1;

-- name: overview_backfills
SELECT state, count(*) AS n FROM backfills GROUP BY state;

-- name: overview_runs
SELECT state, count(*) AS n FROM transfer_runs GROUP BY state;

-- name: overview_oldest_pending
SELECT id, backfill_id, created_at, not_before FROM transfer_runs
WHERE state = 'pending' ORDER BY created_at, id LIMIT 1;

-- name: overview_workers
-- $1: seconds without a heartbeat after which a worker that never said it stopped is stale.
SELECT id, hostname, pid, roles, started_at, last_seen_at, stopped_at,
       CASE WHEN stopped_at IS NOT NULL THEN 'stopped'
            WHEN last_seen_at > now() - make_interval(secs => $1) THEN 'alive'
            ELSE 'stale' END AS status
FROM workers
WHERE last_seen_at > now() - interval '1 day'
ORDER BY last_seen_at DESC LIMIT 100;

-- name: overview_outbox
SELECT count(*) AS unsent, min(created_at) AS oldest FROM outbox WHERE sent_at IS NULL;

-- name: insert_team
INSERT INTO teams (name) VALUES ($1) RETURNING *;

-- name: list_teams
SELECT * FROM teams ORDER BY id;

-- name: insert_key
INSERT INTO api_keys (team_id, prefix, secret_hash, scopes, name, expires_at)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id, team_id, prefix, scopes, name, created_at, expires_at, revoked_at, last_used_at;

-- name: key_by_prefix
SELECT * FROM api_keys WHERE prefix = $1;

-- name: list_keys
SELECT id, team_id, prefix, scopes, name, created_at, expires_at, revoked_at, last_used_at
FROM api_keys WHERE ($1::bigint IS NULL OR team_id = $1) ORDER BY id;

-- name: revoke_key
UPDATE api_keys SET revoked_at = now()
WHERE prefix = $1 AND ($2::bigint IS NULL OR team_id = $2) AND revoked_at IS NULL
RETURNING prefix;

-- name: count_keys
SELECT count(*) FROM api_keys;

-- name: touch_key
UPDATE api_keys SET last_used_at = now()
WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute');

-- name: hit_rate_limit
-- One fixed window per key and period: the count after this hit, and seconds to the reset.
WITH w AS (
    SELECT to_timestamp(floor(extract(epoch FROM now()) / $2) * $2) AS start)
INSERT INTO rate_limit_windows AS r (key_id, window_start, hits)
SELECT $1, w.start, 1 FROM w
ON CONFLICT (key_id, window_start) DO UPDATE SET hits = r.hits + 1
RETURNING hits, extract(epoch FROM (window_start + make_interval(secs => $2) - now()))::float8
    AS reset_in;

-- name: prune_rate_limits
DELETE FROM rate_limit_windows WHERE window_start < now() - interval '1 hour';

-- name: set_cancelled_by
UPDATE backfills SET cancelled_by = $2 WHERE id = $1 RETURNING *;

-- name: mark_backfill_deleted
UPDATE backfills SET deleted_at = now(), updated_at = now() WHERE id = $1 RETURNING *;

-- name: retry_failed_runs
-- A retry starts each failed run afresh: its attempts count from zero again, and a table
-- run resumes after its last checkpoint.
WITH retried AS (
    UPDATE transfer_runs SET
        state = 'pending', attempt = 0, not_before = now(),
        queued_at = NULL, finished_at = NULL, updated_at = now()
    WHERE backfill_id = $1 AND state = 'failed'
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

-- name: earlier_window_outcomes
-- For each of the given window starts, the latest finished run of that window in the
-- target's other backfills: what `reprocess` decides from.
SELECT DISTINCT ON (r.window_start, r.window_end) r.window_start, r.window_end, r.state
FROM backfills b
JOIN transfer_runs r ON r.backfill_id = b.id
WHERE b.target_id = $1 AND b.id <> $2
  AND r.window_start = ANY($3::timestamptz[])
  AND r.state IN ('completed', 'failed')
ORDER BY r.window_start, r.window_end, r.finished_at DESC NULLS LAST, r.id DESC;

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

-- name: fair_share
-- The backfill's share of the dispatch capacity ($2): capacity x its priority over the
-- priorities of every backfill with work queued, running or due (itself included).
SELECT greatest(1, floor($2::numeric * b.priority / sum(o.priority)))::integer
FROM backfills b
JOIN backfills o ON o.state IN ('scheduled', 'running')
  AND (o.id = b.id OR EXISTS (
      SELECT 1 FROM transfer_runs r
      WHERE r.backfill_id = o.id AND r.state IN ('pending', 'queued', 'running')))
WHERE b.id = $1
GROUP BY b.priority;

-- name: unqueue_excess
-- A backfill over its share gives back its latest queued runs (not running ones): their
-- dispatch messages then claim nothing, and the share goes to the others.
WITH active AS (
    SELECT count(*) AS n FROM transfer_runs
    WHERE backfill_id = $1 AND state IN ('queued', 'running')),
extra AS (
    SELECT id FROM transfer_runs
    WHERE backfill_id = $1 AND state = 'queued'
    ORDER BY seq DESC
    LIMIT greatest(0, (SELECT n FROM active) - $2)
    FOR UPDATE SKIP LOCKED)
UPDATE transfer_runs t SET state = 'pending', queued_at = NULL, updated_at = now()
FROM extra WHERE t.id = extra.id
RETURNING t.id;

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

-- Batches: claims, completions and dispatch paid per batch of runs, not per run. Every one
-- of these runs under the backfill's row lock, like the single-run statements above, so a
-- claim still either commits before a cancel or sees it.

-- name: lock_backfills
-- Several backfills locked in one statement, in id order: two transactions locking
-- overlapping sets take their locks in the same order and cannot deadlock.
SELECT * FROM backfills WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE;

-- name: claim_queued_runs
-- Up to $3 queued runs of the backfill, oldest first, or with $2 <> 0 only that run (the
-- one a dispatch message named), each with a lease token of its own. Caller holds the
-- backfill lock and checked its state.
UPDATE transfer_runs t SET
    state = 'running',
    attempt = t.attempt + 1,
    lease_token = gen_random_uuid(),
    lease_expires_at = now() + make_interval(secs => $4),
    worker_id = $5,
    started_at = coalesce(t.started_at, clock_timestamp()),
    error = NULL,
    updated_at = now()
FROM (SELECT id FROM transfer_runs
      WHERE backfill_id = $1 AND state = 'queued' AND ($2 = 0 OR id = $2)
      ORDER BY seq
      LIMIT $3
      FOR UPDATE SKIP LOCKED) picked
WHERE t.id = picked.id
RETURNING t.*;

-- name: claim_pending_runs
-- Pending runs straight to running for a worker with free slots, within what dispatch
-- would queue now (max_active_runs less the active ones, and at most $6, the throttle's
-- allowance): no dispatch message is needed for a run its worker takes itself.
WITH active AS (
    SELECT count(*) AS n FROM transfer_runs
    WHERE backfill_id = $1 AND state IN ('queued', 'running')),
picked AS (
    SELECT id FROM transfer_runs
    WHERE backfill_id = $1 AND state = 'pending' AND not_before <= now()
    ORDER BY seq
    LIMIT least($3, $6, greatest(0, $2 - (SELECT n FROM active)))
    FOR UPDATE SKIP LOCKED)
UPDATE transfer_runs t SET
    state = 'running',
    attempt = t.attempt + 1,
    lease_token = gen_random_uuid(),
    lease_expires_at = now() + make_interval(secs => $4),
    worker_id = $5,
    queued_at = now(),
    started_at = coalesce(t.started_at, clock_timestamp()),
    error = NULL,
    updated_at = now()
FROM picked
WHERE t.id = picked.id
RETURNING t.*;

-- name: mark_backfill_started_once
-- Writes the backfill's row only the first time one of its runs starts.
UPDATE backfills SET
    state = CASE WHEN state = 'scheduled' THEN 'running' ELSE state END,
    started_at = coalesce(started_at, now()),
    updated_at = now()
WHERE id = $1 AND (state = 'scheduled' OR started_at IS NULL)
RETURNING *;

-- name: complete_runs
-- Ends a batch of runs, each fenced by its own lease token; returns the ones that were
-- still this worker's, with the rows they add.
UPDATE transfer_runs t SET
    state = 'completed',
    rows_processed = t.rows_processed + v.processed,
    rows_ingested = t.rows_ingested + v.ingested,
    lease_token = NULL, lease_expires_at = NULL,
    finished_at = now(), updated_at = now()
FROM unnest($1::bigint[], $2::uuid[], $3::bigint[], $4::bigint[])
     AS v(id, token, processed, ingested)
WHERE t.id = v.id AND t.lease_token = v.token AND t.state = 'running'
RETURNING t.id, v.processed, v.ingested;

-- name: count_runs_completed
-- The counters of a batch of completions, in one write of the backfill's row.
UPDATE backfills SET
    runs_completed = runs_completed + $2,
    rows_processed_count = rows_processed_count + $3,
    rows_ingested_count = rows_ingested_count + $4,
    updated_at = now()
WHERE id = $1
RETURNING *;

-- name: queue_runs
-- dispatch_runs without the messages: the caller writes them for the runs no worker took.
WITH active AS (
    SELECT count(*) AS n FROM transfer_runs
    WHERE backfill_id = $1 AND state IN ('queued', 'running')),
picked AS (
    SELECT id FROM transfer_runs
    WHERE backfill_id = $1 AND state = 'pending' AND not_before <= now()
    ORDER BY seq
    LIMIT least($3, greatest(0, $2 - (SELECT n FROM active)))
    FOR UPDATE SKIP LOCKED)
UPDATE transfer_runs t SET state = 'queued', queued_at = now(), updated_at = now()
FROM picked WHERE t.id = picked.id
RETURNING t.id;

-- name: enqueue_dispatches
INSERT INTO outbox (routing_key, payload)
SELECT 'run.dispatch',
       jsonb_build_object('type', 'run.dispatch', 'run_id', id, 'backfill_id', $1::bigint)
FROM unnest($2::bigint[]) AS id;

-- name: cancel_runs
-- A cancel in one statement: queued runs are cancelled at once, and so are pending ones
-- when there are at most $2. More than that are only counted here (the backfill is
-- cancelled, so none of them can be dispatched or claimed again) and marked by
-- sweep_cancelled_runs after the cancel has answered. Returns how many runs it cancelled,
-- counted or marked. Caller holds the backfill lock.
WITH pending AS (
    SELECT count(*) AS n FROM transfer_runs WHERE backfill_id = $1 AND state = 'pending'),
cancelled AS (
    UPDATE transfer_runs SET state = 'cancelled', finished_at = now(), updated_at = now()
    WHERE backfill_id = $1
      AND (state = 'queued' OR (state = 'pending' AND (SELECT n FROM pending) <= $2))
    RETURNING 1)
SELECT (SELECT count(*) FROM cancelled)
     + CASE WHEN (SELECT n FROM pending) > $2 THEN (SELECT n FROM pending) ELSE 0 END;

-- name: sweep_cancelled_runs
-- The pending runs of cancelled backfills, already counted as cancelled by the cancel,
-- marked cancelled a chunk at a time.
WITH picked AS (
    SELECT r.id FROM backfills b
    JOIN transfer_runs r ON r.backfill_id = b.id AND r.state = 'pending'
    WHERE b.state = 'cancelled'
    LIMIT $1
    FOR UPDATE OF r SKIP LOCKED)
UPDATE transfer_runs t SET state = 'cancelled', finished_at = now(), updated_at = now()
FROM picked WHERE t.id = picked.id
RETURNING t.id;

-- name: cancel_pending_run
-- A run handed back to a cancelled backfill is cancelled alone (the backfill's other
-- pending runs were counted by its cancel already).
WITH cancelled AS (
    UPDATE transfer_runs SET state = 'cancelled', finished_at = now(), updated_at = now()
    WHERE id = $1 AND state = 'pending'
    RETURNING 1)
SELECT count(*) FROM cancelled;

-- name: lock_backfills_with_targets
-- lock_backfills, with each backfill's target as it is now (`target_row`): what the runs
-- claimed in this transaction will read their handler or sink from.
SELECT b.*, to_jsonb(t) AS target_row
FROM backfills b JOIN targets t ON t.id = b.target_id
WHERE b.id = ANY($1::bigint[])
ORDER BY b.id
FOR UPDATE OF b;

-- name: complete_and_count_runs
-- complete_runs and the backfill's counters in one statement; the caller holds the
-- backfill's lock, so the order of the two writes cannot deadlock. Returns the backfill's
-- row with `ended_ids`, the runs that were still this worker's.
WITH ended AS (
    UPDATE transfer_runs t SET
        state = 'completed',
        rows_processed = t.rows_processed + v.processed,
        rows_ingested = t.rows_ingested + v.ingested,
        lease_token = NULL, lease_expires_at = NULL,
        finished_at = now(), updated_at = now()
    FROM unnest($2::bigint[], $3::uuid[], $4::bigint[], $5::bigint[])
         AS v(id, token, processed, ingested)
    WHERE t.id = v.id AND t.lease_token = v.token AND t.state = 'running'
      AND t.backfill_id = $1
    RETURNING t.id, v.processed, v.ingested),
total AS (
    SELECT count(*) AS n, coalesce(sum(processed), 0) AS processed,
           coalesce(sum(ingested), 0) AS ingested, array_agg(id) AS ids
    FROM ended),
counted AS (
    UPDATE backfills b SET
        runs_completed = runs_completed + total.n,
        rows_processed_count = rows_processed_count + total.processed,
        rows_ingested_count = rows_ingested_count + total.ingested,
        updated_at = now()
    FROM total
    WHERE b.id = $1 AND total.n > 0
    RETURNING b.*)
SELECT counted.*, (SELECT ids FROM total) AS ended_ids FROM counted;

-- name: share_of_capacity
-- fair_share and unqueue_excess in one statement: the backfill's share of the capacity
-- ($2), and its latest queued runs beyond min(share, max_active_runs) given back.
WITH share AS (
    SELECT least(b.max_active_runs,
                 greatest(1, floor($2::numeric * b.priority / sum(o.priority)))::integer) AS n
    FROM backfills b
    JOIN backfills o ON o.state IN ('scheduled', 'running')
      AND (o.id = b.id OR EXISTS (
          SELECT 1 FROM transfer_runs r
          WHERE r.backfill_id = o.id AND r.state IN ('pending', 'queued', 'running')))
    WHERE b.id = $1
    GROUP BY b.priority, b.max_active_runs),
active AS (
    SELECT count(*) AS n FROM transfer_runs
    WHERE backfill_id = $1 AND state IN ('queued', 'running')),
extra AS (
    SELECT id FROM transfer_runs
    WHERE backfill_id = $1 AND state = 'queued'
    ORDER BY seq DESC
    LIMIT greatest(0, (SELECT n FROM active) - coalesce((SELECT n FROM share), 2147483647))
    FOR UPDATE SKIP LOCKED),
given_back AS (
    UPDATE transfer_runs t SET state = 'pending', queued_at = NULL, updated_at = now()
    FROM extra WHERE t.id = extra.id
    RETURNING t.id)
SELECT (SELECT n FROM share) AS share, (SELECT count(*) FROM given_back) AS given_back;

-- name: claim_and_queue_runs
-- Pending runs up to what the limits allow now (max_active_runs $2 less the active ones,
-- and at most $6, the throttle's allowance), in seq order: the first $3 go straight to
-- running for the calling worker, the rest are queued with a run.dispatch message each.
-- Returns the claimed runs. (Throttled backfills take claim_pending_runs and queue_runs,
-- which say how many runs started, for the token bucket.)
WITH active AS (
    SELECT count(*) AS n FROM transfer_runs
    WHERE backfill_id = $1 AND state IN ('queued', 'running')),
locked AS (
    SELECT id, seq FROM transfer_runs
    WHERE backfill_id = $1 AND state = 'pending' AND not_before <= now()
    ORDER BY seq
    LIMIT least($6, greatest(0, $2 - (SELECT n FROM active)))
    FOR UPDATE SKIP LOCKED),
numbered AS (
    SELECT id, row_number() OVER (ORDER BY seq) AS n FROM locked),
claimed AS (
    UPDATE transfer_runs t SET
        state = 'running',
        attempt = t.attempt + 1,
        lease_token = gen_random_uuid(),
        lease_expires_at = now() + make_interval(secs => $4),
        worker_id = $5,
        queued_at = now(),
        started_at = coalesce(t.started_at, clock_timestamp()),
        error = NULL,
        updated_at = now()
    FROM numbered WHERE t.id = numbered.id AND numbered.n <= $3
    RETURNING t.*),
queued AS (
    UPDATE transfer_runs t SET state = 'queued', queued_at = now(), updated_at = now()
    FROM numbered WHERE t.id = numbered.id AND numbered.n > $3
    RETURNING t.id),
sent AS (
    INSERT INTO outbox (routing_key, payload)
    SELECT 'run.dispatch',
           jsonb_build_object('type', 'run.dispatch', 'run_id', id, 'backfill_id', $1::bigint)
    FROM queued
    RETURNING 1)
SELECT * FROM claimed;

-- The same for every backfill of a batch at once: one round trip whatever their number.

-- name: complete_and_count_many
-- complete_and_count_runs for the runs of several backfills (their locks held). Returns
-- each backfill whose runs ended, with `ended_ids` and each one's row totals.
WITH ended AS (
    UPDATE transfer_runs t SET
        state = 'completed',
        rows_processed = t.rows_processed + v.processed,
        rows_ingested = t.rows_ingested + v.ingested,
        lease_token = NULL, lease_expires_at = NULL,
        finished_at = now(), updated_at = now()
    FROM unnest($1::bigint[], $2::uuid[], $3::bigint[], $4::bigint[])
         AS v(id, token, processed, ingested)
    WHERE t.id = v.id AND t.lease_token = v.token AND t.state = 'running'
    RETURNING t.id, t.backfill_id, v.processed, v.ingested,
              t.rows_processed AS run_processed, t.rows_ingested AS run_ingested),
total AS (
    SELECT backfill_id, count(*) AS n, sum(processed) AS processed,
           sum(ingested) AS ingested, array_agg(id) AS ids,
           array_agg(run_processed) AS run_processed, array_agg(run_ingested) AS run_ingested
    FROM ended GROUP BY backfill_id),
counted AS (
    UPDATE backfills b SET
        runs_completed = runs_completed + total.n,
        rows_processed_count = rows_processed_count + total.processed,
        rows_ingested_count = rows_ingested_count + total.ingested,
        updated_at = now()
    FROM total
    WHERE b.id = total.backfill_id
    RETURNING b.*, total.ids AS ended_ids, total.run_processed AS ended_processed,
              total.run_ingested AS ended_ingested)
SELECT * FROM counted;

-- name: shares_of_capacity
-- share_of_capacity for several backfills (their locks held): (id, share) of each, and
-- the queued runs of each beyond its share given back.
WITH working AS (
    SELECT coalesce(sum(o.priority), 0) AS priorities FROM backfills o
    WHERE o.state IN ('scheduled', 'running')
      AND EXISTS (SELECT 1 FROM transfer_runs r
                  WHERE r.backfill_id = o.id AND r.state IN ('pending', 'queued', 'running'))),
share AS (
    SELECT b.id, least(b.max_active_runs, greatest(1, floor(
               $2::numeric * b.priority / greatest(1, w.priorities + CASE
                   WHEN EXISTS (SELECT 1 FROM transfer_runs r
                                WHERE r.backfill_id = b.id
                                  AND r.state IN ('pending', 'queued', 'running'))
                   THEN 0 ELSE b.priority END)))::integer) AS n
    FROM backfills b CROSS JOIN working w
    WHERE b.id = ANY($1::bigint[])),
active AS (
    SELECT backfill_id, count(*) AS n FROM transfer_runs
    WHERE backfill_id = ANY($1::bigint[]) AND state IN ('queued', 'running')
    GROUP BY backfill_id),
ranked AS (
    SELECT id, backfill_id, row_number() OVER (PARTITION BY backfill_id ORDER BY seq DESC) AS k
    FROM transfer_runs
    WHERE backfill_id = ANY($1::bigint[]) AND state = 'queued'),
extra AS (
    SELECT ranked.id FROM ranked
    JOIN active ON active.backfill_id = ranked.backfill_id
    JOIN share ON share.id = ranked.backfill_id
    WHERE ranked.k <= active.n - share.n),
given_back AS (
    UPDATE transfer_runs t SET state = 'pending', queued_at = NULL, updated_at = now()
    FROM extra WHERE t.id = extra.id AND t.state = 'queued'
    RETURNING t.id)
SELECT id, n FROM share;

-- name: claim_and_queue_many
-- claim_and_queue_runs for several unthrottled backfills (their locks held): for each
-- ($1 ids, $2 limits, $3 how many this worker takes), pending runs up to its limit in seq
-- order, the first `want` straight to running, the rest queued with a message each.
WITH req AS (
    SELECT * FROM unnest($1::bigint[], $2::integer[], $3::integer[]) AS r(backfill_id, lim, want)),
active AS (
    SELECT backfill_id, count(*) AS n FROM transfer_runs
    WHERE backfill_id = ANY($1::bigint[]) AND state IN ('queued', 'running')
    GROUP BY backfill_id),
locked AS (
    SELECT p.id, p.seq, req.backfill_id, req.want
    FROM req
    LEFT JOIN active ON active.backfill_id = req.backfill_id
    CROSS JOIN LATERAL (
        SELECT t.id, t.seq FROM transfer_runs t
        WHERE t.backfill_id = req.backfill_id AND t.state = 'pending' AND t.not_before <= now()
        ORDER BY t.seq
        LIMIT greatest(0, req.lim - coalesce(active.n, 0))
        FOR UPDATE SKIP LOCKED) p),
numbered AS (
    SELECT id, backfill_id, want, row_number() OVER (PARTITION BY backfill_id ORDER BY seq) AS n
    FROM locked),
claimed AS (
    UPDATE transfer_runs t SET
        state = 'running',
        attempt = t.attempt + 1,
        lease_token = gen_random_uuid(),
        lease_expires_at = now() + make_interval(secs => $4),
        worker_id = $5,
        queued_at = now(),
        started_at = coalesce(t.started_at, clock_timestamp()),
        error = NULL,
        updated_at = now()
    FROM numbered WHERE t.id = numbered.id AND numbered.n <= numbered.want
    RETURNING t.*),
queued AS (
    UPDATE transfer_runs t SET state = 'queued', queued_at = now(), updated_at = now()
    FROM numbered WHERE t.id = numbered.id AND numbered.n > numbered.want
    RETURNING t.id, t.backfill_id),
sent AS (
    INSERT INTO outbox (routing_key, payload)
    SELECT 'run.dispatch',
           jsonb_build_object('type', 'run.dispatch', 'run_id', id, 'backfill_id', backfill_id)
    FROM queued
    RETURNING 1)
SELECT * FROM claimed;
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

-- name: recent_activity
-- Rows and ended runs per backfill over the last $2 seconds. A run's rows are taken as
-- spread evenly over [started_at, finished_at] (a running run: up to its last write), and
-- the share of that span inside the window counts. $1: backfill ids, or NULL for all.
WITH span AS (
    SELECT backfill_id, state, rows_processed, finished_at,
           started_at AS began, coalesce(finished_at, updated_at) AS ended,
           now() - make_interval(secs => $2) AS since
    FROM transfer_runs
    WHERE ($1::bigint[] IS NULL OR backfill_id = ANY($1))
      AND started_at IS NOT NULL
      AND (state = 'running'
           OR (finished_at >= now() - make_interval(secs => $2)
               AND state IN ('completed', 'failed')))
)
SELECT backfill_id,
       coalesce(sum(CASE
           WHEN ended <= began THEN rows_processed
           ELSE rows_processed
                * extract(epoch FROM ended - greatest(began, since))
                / extract(epoch FROM ended - began)
       END) FILTER (WHERE ended >= since), 0)::float8 AS rows,
       count(*) FILTER (WHERE finished_at IS NOT NULL AND state <> 'running') AS runs,
       now() AS at
FROM span
GROUP BY backfill_id;

-- name: database_now
SELECT now();

-- name: claim_progress_events
-- Running backfills whose last progress event is older than $1 seconds, marked as published
-- now; a backfill another worker is marking (or that a run is changing) is skipped this time.
UPDATE backfills b SET progress_published_at = now()
FROM (SELECT id FROM backfills
      WHERE state = 'running'
        AND (progress_published_at IS NULL
             OR progress_published_at <= now() - make_interval(secs => $1))
      ORDER BY id
      LIMIT $2
      FOR UPDATE SKIP LOCKED) due
WHERE b.id = due.id
RETURNING b.*;

-- name: active_backfills
-- What /ops/overview shows progress for: every backfill that may still move.
SELECT * FROM backfills
WHERE state IN ('created', 'scheduled', 'running', 'paused') AND deleted_at IS NULL
ORDER BY id
LIMIT $1;
