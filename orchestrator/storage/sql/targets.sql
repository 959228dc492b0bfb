-- Targets: the tables or windows a backfill works through. Loaded by
-- orchestrator.storage.queries, run by orchestrator.storage.targets.

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
    WHERE target_id = $1 AND state IN {backfill.ACTIVE});

-- name: delete_target_backfills
DELETE FROM backfills WHERE target_id = $1;

-- name: delete_target
DELETE FROM targets WHERE id = $1;

-- name: lock_target
-- Serialises backfill creation per target so the overlap check and the insert are atomic.
SELECT pg_advisory_xact_lock(8123, $1::int);
