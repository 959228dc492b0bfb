-- Batches: claims, completions and dispatch paid per batch of runs, not per run. Every one
-- of these runs under the backfill's row lock, like the single-run statements of runs.sql,
-- so a claim still either commits before a cancel or sees it. Run by
-- orchestrator.storage.batches.

-- name: lock_backfills_with_targets
-- lock_backfills, with each backfill's target as it is now (`target_row`): what the runs
-- claimed in this transaction will read their handler or sink from.
SELECT b.*, to_jsonb(t) AS target_row
FROM backfills b JOIN targets t ON t.id = b.target_id
WHERE b.id = ANY($1::bigint[])
ORDER BY b.id
FOR UPDATE OF b;

-- part: claim_write
-- What a claim writes on each run it takes ($1 the lease in seconds, $2 the worker), from
-- the queue or straight from pending, by a message, a batch or a free slot: one text, so
-- every claim starts an attempt the same way. A run taken from pending also gets
-- `queued_at = now()` beside it (it never waited in the queue).
state = {run.running},
attempt = t.attempt + 1,
lease_token = gen_random_uuid(),
lease_expires_at = now() + make_interval(secs => $1),
worker_id = $2,
started_at = coalesce(t.started_at, clock_timestamp()),
error = NULL,
updated_at = now()

-- name: claim_queued_runs
-- Up to $3 queued runs of the backfill, oldest first, or with $2 <> 0 only that run (the
-- one a dispatch message named), each with a lease token of its own. Caller holds the
-- backfill lock and checked its state.
UPDATE transfer_runs t SET
    {part.claim_write($4, $5)}
FROM (SELECT id FROM transfer_runs
      WHERE backfill_id = $1 AND state = {run.queued} AND ($2 = 0 OR id = $2)
      ORDER BY seq
      LIMIT $3
      FOR UPDATE SKIP LOCKED) picked
WHERE t.id = picked.id
RETURNING t.*;

-- name: run_is_queued
-- Whether a dispatch message's run is still waiting for a worker (read without a lock:
-- only a hint, the claim itself is made under the backfill's lock).
SELECT EXISTS (SELECT 1 FROM transfer_runs WHERE id = $1 AND state = {run.queued});

-- name: claim_pending_runs
-- Pending runs straight to running for a worker with free slots, within what dispatch
-- would queue now (max_active_runs less the active ones, and at most $6, the throttle's
-- allowance): no dispatch message is needed for a run its worker takes itself.
WITH active AS (
    SELECT count(*) AS n FROM transfer_runs
    WHERE backfill_id = $1 AND state IN {run.ACTIVE}),
picked AS (
    SELECT id FROM transfer_runs
    WHERE backfill_id = $1 AND state = {run.pending} AND not_before <= now()
    ORDER BY seq
    LIMIT least($3, $6, greatest(0, $2 - (SELECT n FROM active)))
    FOR UPDATE SKIP LOCKED)
UPDATE transfer_runs t SET
    queued_at = now(),
    {part.claim_write($4, $5)}
FROM picked
WHERE t.id = picked.id
RETURNING t.*;

-- name: mark_backfill_started_once
-- Writes the backfill's row only the first time one of its runs starts.
UPDATE backfills SET
    state = CASE WHEN state = {backfill.scheduled} THEN {backfill.running} ELSE state END,
    started_at = coalesce(started_at, now()),
    updated_at = now()
WHERE id = $1 AND (state = {backfill.scheduled} OR started_at IS NULL)
RETURNING *;

-- name: queue_runs
-- dispatch_runs without the messages: the caller writes them for the runs no worker took.
WITH active AS (
    SELECT count(*) AS n FROM transfer_runs
    WHERE backfill_id = $1 AND state IN {run.ACTIVE}),
picked AS (
    SELECT id FROM transfer_runs
    WHERE backfill_id = $1 AND state = {run.pending} AND not_before <= now()
    ORDER BY seq
    LIMIT least($3, greatest(0, $2 - (SELECT n FROM active)))
    FOR UPDATE SKIP LOCKED)
UPDATE transfer_runs t SET state = {run.queued}, queued_at = now(), updated_at = now()
FROM picked WHERE t.id = picked.id
RETURNING t.id;

-- name: enqueue_dispatches
INSERT INTO outbox (routing_key, payload)
SELECT 'run.dispatch',
       jsonb_build_object('type', 'run.dispatch', 'run_id', id, 'backfill_id', $1::bigint)
FROM unnest($2::bigint[]) AS id;

-- part: capacity_in_force
-- The runs queued or running that dispatch shares out ($1: BACKFILL_DISPATCH_CAPACITY, 0
-- when unset): the setting, or the slots of the executor workers up now by their
-- heartbeats (16, one default worker's, while none is: runs then wait queued for the first).
CASE WHEN $1 > 0 THEN $1 ELSE coalesce(
    (SELECT sum(w.concurrency)::integer FROM workers w WHERE w.live_until > now()), 16)
END

-- part: fair_shares
-- The shares of the dispatch capacity ($2, see `capacity` below) of the backfills in `asked` (a CTE of ids the
-- including statement defines first): `share` (id, n). Every backfill with work (runs
-- pending, queued or running, told from its own counters: one row each, where probing its
-- runs grew with the runs it had ended) and each asked one gets capacity x priority / the
-- sum of their priorities, rounded down; what rounding down leaves of the capacity goes one
-- run each to the largest remainders (then the oldest backfills), so ten equal backfills
-- of a capacity of 16 run 16 runs at once, not 10. At least one each, at most its
-- max_active_runs.
capacity AS (
    SELECT
        {part.capacity_in_force($2)}
        AS n),
working AS (
    SELECT o.id, o.priority, o.max_active_runs FROM backfills o
    WHERE o.state IN {backfill.DISPATCHABLE}
      AND (o.runs_created > o.runs_completed + o.runs_failed + o.runs_cancelled
           OR o.id IN (SELECT id FROM asked))),
share_quota AS (
    SELECT id, max_active_runs,
           (SELECT n FROM capacity)::numeric * priority / sum(priority) OVER () AS exact
    FROM working),
share_ranked AS (
    SELECT id, max_active_runs, floor(exact)::integer AS base,
           row_number() OVER (ORDER BY exact - floor(exact) DESC, id) AS k
    FROM share_quota),
share_spare AS (
    SELECT (SELECT n FROM capacity) - sum(base) AS n FROM share_ranked),
share AS (
    SELECT r.id, least(r.max_active_runs, greatest(1, r.base
               + CASE WHEN r.k <= (SELECT n FROM share_spare) THEN 1 ELSE 0 END))::integer AS n
    FROM share_ranked r
    WHERE r.id IN (SELECT id FROM asked)),

-- name: share_of_capacity
-- The backfill's share of the capacity ($2, see fair_shares), and its latest queued runs
-- beyond it given back (their dispatch messages then claim nothing, and the share goes to
-- the others), in one statement.
WITH asked AS (SELECT $1::bigint AS id),
{part.fair_shares}
active AS (
    SELECT count(*) AS n FROM transfer_runs
    WHERE backfill_id = $1 AND state IN {run.ACTIVE}),
extra AS (
    SELECT id FROM transfer_runs
    WHERE backfill_id = $1 AND state = {run.queued}
    ORDER BY seq DESC
    LIMIT greatest(0, (SELECT n FROM active) - coalesce((SELECT n FROM share), 2147483647))
    FOR UPDATE SKIP LOCKED),
given_back AS (
    UPDATE transfer_runs t SET state = {run.pending}, queued_at = NULL, updated_at = now()
    FROM extra WHERE t.id = extra.id
    RETURNING t.id)
SELECT (SELECT n FROM share) AS share, (SELECT count(*) FROM given_back) AS given_back;

-- name: complete_and_count_many
-- complete_and_count_runs for the runs of several backfills (their locks held). Returns
-- each backfill whose runs ended, with `ended_ids` and each one's row totals.
WITH ended AS (
    UPDATE transfer_runs t SET
        state = {run.completed},
        rows_processed = t.rows_processed + v.processed,
        rows_ingested = t.rows_ingested + v.ingested,
        lease_token = NULL, lease_expires_at = NULL,
        finished_at = now(), updated_at = now()
    FROM unnest($1::bigint[], $2::uuid[], $3::bigint[], $4::bigint[])
         AS v(id, token, processed, ingested)
    WHERE t.id = v.id AND t.lease_token = v.token AND t.state = {run.running}
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

-- part: claim_and_queue
-- What claim_and_queue_many does for the backfills of `req` (backfill_id, lim, want): $1
-- their ids, $4 the lease, $5 the worker, $6 whether queued runs get messages. Defines
-- `active` (each one's queued and running runs) and `claimed`.
active AS (
    SELECT backfill_id, count(*) AS n FROM transfer_runs
    WHERE backfill_id = ANY($1::bigint[]) AND state IN {run.ACTIVE}
    GROUP BY backfill_id),
locked AS (
    SELECT p.id, p.seq, req.backfill_id, req.want
    FROM req
    LEFT JOIN active ON active.backfill_id = req.backfill_id
    CROSS JOIN LATERAL (
        SELECT t.id, t.seq FROM transfer_runs t
        WHERE t.backfill_id = req.backfill_id AND t.state = {run.pending} AND t.not_before <= now()
        ORDER BY t.seq
        LIMIT greatest(0, req.lim - coalesce(active.n, 0))
        FOR UPDATE SKIP LOCKED) p),
numbered AS (
    SELECT id, backfill_id, want, row_number() OVER (PARTITION BY backfill_id ORDER BY seq) AS n
    FROM locked),
claimed AS (
    UPDATE transfer_runs t SET
        queued_at = now(),
        {part.claim_write($4, $5)}
    FROM numbered WHERE t.id = numbered.id AND numbered.n <= numbered.want
    RETURNING t.*),
queued AS (
    UPDATE transfer_runs t SET state = {run.queued}, queued_at = now(), updated_at = now()
    FROM numbered WHERE t.id = numbered.id AND numbered.n > numbered.want
    RETURNING t.id, t.backfill_id),
sent AS (
    INSERT INTO outbox (routing_key, payload)
    SELECT 'run.dispatch',
           jsonb_build_object('type', 'run.dispatch', 'run_id', queued.id,
                              'backfill_id', queued.backfill_id)
    FROM queued
    JOIN backfills b ON b.id = queued.backfill_id
    -- A table run is only ever claimed by its own message.
    WHERE $6 OR b.kind = 'table'
    RETURNING 1)

-- name: claim_and_queue_many
-- For each of one or more unthrottled backfills (their locks held; $1 ids, $2 limits, $3
-- how many this worker takes), pending runs up to its limit (max_active_runs or its fair
-- share, less its active runs) in seq order: the first `want` go straight to running for
-- the calling worker, the rest are queued with a run.dispatch message each. Returns the
-- claimed runs. One round trip whatever the number of backfills. (Throttled backfills take
-- claim_pending_runs and queue_runs, which say how many runs started, for the token bucket.)
-- With $6 false the queued date-range runs get no message: the calling worker is behind
-- the queue already (dispatch messages wait for its slots), and its batches take queued
-- runs oldest first (claim_queued_anywhere); should it stop first, the stale-dispatch
-- sweep publishes their messages. Table runs always get theirs.
WITH req AS (
    SELECT * FROM unnest($1::bigint[], $2::integer[], $3::integer[]) AS r(backfill_id, lim, want)),
{part.claim_and_queue}
SELECT * FROM claimed;

-- name: claim_queued_anywhere
-- Up to $1 queued runs of any date-range backfills, oldest queued first, for a worker whose
-- slots would otherwise wait for their dispatch messages: the runs were queued by the
-- dispatch policy (limits, fair share, throttle), so taking them keeps its order, and the
-- messages still on their way find them claimed. Only runs queued before the oldest queued
-- table run are taken (a table run is taken by its own message only): a worker's batches
-- never keep a table run's message waiting behind younger runs. Each run's backfill is
-- locked first and must be dispatchable under that lock, as in every claim; a backfill
-- another transaction holds (a cancel, say) is skipped, so this never waits and cannot
-- deadlock with the backfill locks the caller holds. ($2 the lease in seconds, $3 the
-- worker.)
WITH candidates AS MATERIALIZED (
    SELECT oldest.id, oldest.backfill_id, oldest.queued_at, b.kind
    FROM (SELECT id, backfill_id, queued_at FROM transfer_runs
          WHERE state = {run.queued}
          ORDER BY queued_at
          LIMIT $1) oldest
    JOIN backfills b ON b.id = oldest.backfill_id),
takeable AS MATERIALIZED (
    SELECT id, backfill_id FROM candidates
    WHERE queued_at < coalesce(
        (SELECT min(queued_at) FROM candidates WHERE kind = 'table'), 'infinity')),
lockable AS MATERIALIZED (
    SELECT b.id FROM backfills b
    WHERE b.id IN (SELECT backfill_id FROM takeable)
      AND b.state IN {backfill.DISPATCHABLE}
    ORDER BY b.id
    FOR UPDATE SKIP LOCKED),
picked AS MATERIALIZED (
    SELECT t.id FROM transfer_runs t
    JOIN takeable c ON c.id = t.id
    WHERE c.backfill_id IN (SELECT id FROM lockable) AND t.state = {run.queued}
    FOR UPDATE OF t SKIP LOCKED)
UPDATE transfer_runs t SET
    {part.claim_write($2, $3)}
FROM picked
WHERE t.id = picked.id
RETURNING t.*;

-- name: share_claim_and_queue_many
-- share_of_capacity and claim_and_queue_many in one statement, for the backfills of a batch
-- of completions: each one's limit is its fair share of the capacity ($2; max_active_runs at
-- most),
-- its queued runs beyond that are given back, and under it pending runs are claimed ($3
-- how many this worker takes of each) and queued, as claim_and_queue_many does ($4, $5,
-- $6 as there). Both count the active runs of one snapshot: a backfill over its share
-- gives back and claims nothing, one under it gives nothing back. Returns the claimed runs.
WITH asked AS (SELECT unnest($1::bigint[]) AS id),
{part.fair_shares}
req AS (
    SELECT r.backfill_id, coalesce(share.n, b.max_active_runs) AS lim, r.want
    FROM unnest($1::bigint[], $3::integer[]) AS r(backfill_id, want)
    JOIN backfills b ON b.id = r.backfill_id
    LEFT JOIN share ON share.id = r.backfill_id),
held AS (
    SELECT backfill_id, count(*) AS n FROM transfer_runs
    WHERE backfill_id = ANY($1::bigint[]) AND state IN {run.ACTIVE}
    GROUP BY backfill_id),
ranked AS (
    SELECT id, backfill_id, row_number() OVER (PARTITION BY backfill_id ORDER BY seq DESC) AS k
    FROM transfer_runs
    WHERE backfill_id = ANY($1::bigint[]) AND state = {run.queued}),
extra AS (
    SELECT ranked.id FROM ranked
    JOIN held ON held.backfill_id = ranked.backfill_id
    JOIN share ON share.id = ranked.backfill_id
    WHERE ranked.k <= held.n - share.n),
given_back AS (
    UPDATE transfer_runs t SET state = {run.pending}, queued_at = NULL, updated_at = now()
    FROM extra WHERE t.id = extra.id AND t.state = {run.queued}
    RETURNING t.id),
{part.claim_and_queue}
SELECT * FROM claimed;

-- name: complete_batch_function
-- Batches.complete_runs' common case in one round trip: the statements its transaction
-- sends, the same ones (included by name, so word for word the Python path's, parts and
-- states included) in the same order, run server-side as one statement. Called outside an
-- explicit transaction, the call is its own transaction: no BEGIN and COMMIT round trips,
-- and the backfill row locks are held only while the server runs it, not across the
-- worker's round trips (two workers serialised on those locks).
--
-- pg_temp, created on each connection that calls it (Batches creates it on first use), not
-- a migration: the body is rendered from this file at run time, so it is always the code's
-- own version of every statement (a change to a part, fair_shares say, reaches it as it
-- reaches the Python path), with no migration to keep in step and no two versions of
-- workers sharing one function during a rolling deploy. It costs one CREATE per connection.
--
-- What it does not do it leaves untouched: when a backfill of the batch is throttled (its
-- token bucket is dispatch_claiming's Python), may finish with this batch (planning done
-- and its ended runs plus the batch's reach runs_total: maybe_finish's state change and
-- event), or is gone, it returns o_fallback having written nothing (its locks end with the
-- statement) and the caller runs the transaction of the Python path. That is decided on
-- the locked rows before anything is written, so the rest can skip maybe_finish: the
-- counters cannot reach runs_total here.
--
-- Returns each counted run's totals (o_done_*), the claimed runs (o_runs: transfer_runs
-- rows, which asyncpg decodes in binary), their backfills as the batch left them and their
-- targets (o_backfills, o_targets: JSON arrays, one element per backfill, in id order;
-- to_jsonb as lock_backfills_with_targets' target_row; a backfills composite cannot be
-- decoded by asyncpg, whose jsonb codec here is a text one), and o_queue_left
-- (claim_queued_anywhere took all it asked for). Measured in a worker's Python (8 runs of
-- one backfill, fetched and built into ClaimedRuns): 240 us so, 263 us with the runs as
-- JSON too.
CREATE OR REPLACE FUNCTION pg_temp.complete_batch(
    p_ids bigint[], p_batch_backfills bigint[], p_run_ids bigint[], p_tokens uuid[],
    p_processed bigint[], p_ingested bigint[], p_want integer, p_lease double precision,
    p_worker text, p_queued_first boolean, p_own integer, p_announce boolean,
    p_capacity integer,
    OUT o_fallback boolean, OUT o_done_ids bigint[], OUT o_done_processed bigint[],
    OUT o_done_ingested bigint[], OUT o_runs transfer_runs[], OUT o_backfills jsonb,
    OUT o_targets jsonb, OUT o_queue_left boolean)
LANGUAGE plpgsql AS $complete_batch$
DECLARE
    v_b record;
    v_c record;
    v_r transfer_runs;
    v_x record;
    v_id bigint;
    -- The batch's backfills as locked (id order), whether each is dispatchable, its
    -- max_active_runs, and those not yet started (mark_backfill_started_once's guard).
    v_locked bigint[] := ARRAY[]::bigint[];
    v_dispatchable bigint[] := ARRAY[]::bigint[];
    v_limits integer[] := ARRAY[]::integer[];
    v_unstarted bigint[] := ARRAY[]::bigint[];
    v_ended_ids bigint[] := ARRAY[]::bigint[];
    v_ended_n integer[] := ARRAY[]::integer[];
    v_want integer := p_want;
    v_claimed_bf bigint[] := ARRAY[]::bigint[];
    v_new bigint[];
    v_takes integer[] := ARRAY[]::integer[];
    v_rest integer;
    v_take integer;
    v_n integer;
BEGIN
    o_fallback := false;
    o_done_ids := ARRAY[]::bigint[];
    o_done_processed := ARRAY[]::bigint[];
    o_done_ingested := ARRAY[]::bigint[];
    o_runs := ARRAY[]::transfer_runs[];
    o_backfills := '[]';
    o_targets := '[]';
    o_queue_left := false;
    FOR v_b IN
        {statement.lock_backfills_with_targets(p_ids)}
    LOOP
        IF v_b.max_runs_per_minute IS NOT NULL
           OR (v_b.state IN {backfill.DISPATCHABLE} AND v_b.planning_done
               AND v_b.runs_completed + v_b.runs_failed + v_b.runs_cancelled
                   + cardinality(array_positions(p_batch_backfills, v_b.id)) >= v_b.runs_total)
        THEN
            o_fallback := true;
            RETURN;
        END IF;
        v_locked := v_locked || v_b.id;
        IF v_b.state IN {backfill.DISPATCHABLE} THEN
            v_dispatchable := v_dispatchable || v_b.id;
            v_limits := v_limits || v_b.max_active_runs;
        END IF;
        IF v_b.started_at IS NULL OR v_b.state = {backfill.scheduled} THEN
            v_unstarted := v_unstarted || v_b.id;
        END IF;
    END LOOP;
    IF cardinality(v_locked) <> cardinality(p_ids) THEN
        o_fallback := true;
        RETURN;
    END IF;

    FOR v_c IN
        {statement.complete_and_count_many(p_run_ids, p_tokens, p_processed, p_ingested)}
    LOOP
        o_done_ids := o_done_ids || v_c.ended_ids;
        o_done_processed := o_done_processed || v_c.ended_processed;
        o_done_ingested := o_done_ingested || v_c.ended_ingested;
        v_ended_ids := v_ended_ids || v_c.id;
        v_ended_n := v_ended_n || cardinality(v_c.ended_ids);
    END LOOP;

    IF p_queued_first AND v_want > 0 THEN
        FOR v_r IN
            {statement.claim_queued_anywhere(v_want, p_lease, p_worker)}
        LOOP
            o_runs := o_runs || v_r;
            v_claimed_bf := v_claimed_bf || v_r.backfill_id;
        END LOOP;
        v_n := cardinality(o_runs);
        o_queue_left := v_n >= v_want;
        v_want := least(v_want - v_n, coalesce(p_own, v_want));
        IF v_n > 0 THEN
            SELECT array_agg(DISTINCT x ORDER BY x) INTO v_new
            FROM unnest(v_claimed_bf) AS x WHERE x <> ALL (v_locked);
            IF v_new IS NOT NULL THEN
                -- Locked by the claim already: this reads them (whether each has started).
                FOR v_b IN
                    {statement.lock_backfills_with_targets(v_new)}
                LOOP
                    IF v_b.started_at IS NULL OR v_b.state = {backfill.scheduled} THEN
                        v_unstarted := v_unstarted || v_b.id;
                    END IF;
                END LOOP;
            END IF;
            FOR v_id IN SELECT DISTINCT x FROM unnest(v_claimed_bf) AS x ORDER BY x LOOP
                IF v_id = ANY (v_unstarted) THEN
                    FOR v_x IN
                        {statement.mark_backfill_started_once(v_id)}
                    LOOP
                    END LOOP;
                END IF;
            END LOOP;
        END IF;
    END IF;

    -- Each backfill's ended runs are replaced one for one, in id order up to v_want (a
    -- backfill no longer dispatchable takes its share too, and claims nothing with it).
    v_rest := v_want;
    FOREACH v_id IN ARRAY v_locked LOOP
        v_take := least(v_rest, coalesce(v_ended_n[array_position(v_ended_ids, v_id)], 0));
        v_rest := v_rest - v_take;
        IF v_id = ANY (v_dispatchable) THEN
            v_takes := v_takes || v_take;
        END IF;
    END LOOP;
    IF cardinality(v_dispatchable) > 0 THEN
        v_n := cardinality(o_runs);
        IF p_capacity IS NOT NULL THEN
            FOR v_r IN
                {statement.share_claim_and_queue_many(v_dispatchable, p_capacity, v_takes, p_lease, p_worker, p_announce)}
            LOOP
                o_runs := o_runs || v_r;
                v_claimed_bf := v_claimed_bf || v_r.backfill_id;
            END LOOP;
        ELSE
            FOR v_r IN
                {statement.claim_and_queue_many(v_dispatchable, v_limits, v_takes, p_lease, p_worker, p_announce)}
            LOOP
                o_runs := o_runs || v_r;
                v_claimed_bf := v_claimed_bf || v_r.backfill_id;
            END LOOP;
        END IF;
        FOREACH v_id IN ARRAY v_dispatchable LOOP
            IF v_id = ANY (v_unstarted) AND v_id = ANY (v_claimed_bf[v_n + 1:]) THEN
                FOR v_x IN
                    {statement.mark_backfill_started_once(v_id)}
                LOOP
                END LOOP;
            END IF;
        END LOOP;
    END IF;

    IF cardinality(o_runs) > 0 THEN
        SELECT jsonb_agg(to_jsonb(b) ORDER BY b.id), jsonb_agg(to_jsonb(t) ORDER BY b.id)
        INTO o_backfills, o_targets
        FROM backfills b JOIN targets t ON t.id = b.target_id
        WHERE b.id = ANY (v_claimed_bf);
    END IF;
END
$complete_batch$;

-- name: complete_batch
-- See complete_batch_function. Sent outside a transaction: it is one.
SELECT * FROM pg_temp.complete_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13);
