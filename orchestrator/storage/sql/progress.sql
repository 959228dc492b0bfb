-- Progress and throughput of backfills. Run by orchestrator.storage.progress.

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
      AND (state = {run.running}
           OR (finished_at >= now() - make_interval(secs => $2)
               AND state IN {run.OUTCOMES}))
)
SELECT backfill_id,
       coalesce(sum(CASE
           WHEN ended <= began THEN rows_processed
           ELSE rows_processed
                * extract(epoch FROM ended - greatest(began, since))
                / extract(epoch FROM ended - began)
       END) FILTER (WHERE ended >= since), 0)::float8 AS rows,
       count(*) FILTER (WHERE finished_at IS NOT NULL AND state <> {run.running}) AS runs,
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
      WHERE state = {backfill.running}
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
WHERE state IN {backfill.ACTIVE} AND deleted_at IS NULL
ORDER BY id
LIMIT $1;
