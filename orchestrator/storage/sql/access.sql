-- Teams, API keys and rate limits. Run by orchestrator.storage.access.

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
