-- Commands applied once, and the outbox every message leaves through. Run by
-- orchestrator.storage.commands and the relay.

-- name: enqueue
INSERT INTO outbox (routing_key, payload) VALUES ($1, $2) RETURNING id;

-- name: record_command
INSERT INTO applied_commands (command_id, type, backfill_id) VALUES ($1, $2, $3)
ON CONFLICT (command_id) DO NOTHING
RETURNING command_id;

-- name: fetch_outbox
SELECT id, routing_key, message_id, payload FROM outbox
WHERE sent_at IS NULL
ORDER BY id
LIMIT $1
FOR UPDATE SKIP LOCKED;

-- name: mark_outbox_sent
UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[]);

-- name: command_applied
SELECT EXISTS (SELECT 1 FROM applied_commands WHERE command_id = $1);
