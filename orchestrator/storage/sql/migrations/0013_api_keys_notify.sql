-- API processes keep verified keys in memory for a few seconds (api/key_cache.py). Any change
-- that can make a key invalid, from any process (the API, `backfill keys revoke`, SQL by
-- hand), tells every listener at commit, so a revoked key is refused at once everywhere.
-- last_used_at is not among the columns: touching a key must not empty the caches.
CREATE FUNCTION api_keys_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('backfill_api_keys', '');
    RETURN NULL;
END $$;

CREATE TRIGGER api_keys_notify
    AFTER UPDATE OF revoked_at, expires_at, scopes, secret_hash, team_id, prefix OR DELETE
    ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION api_keys_notify();
