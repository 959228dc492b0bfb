-- What the compatibility APIs need from the one model of backfills:
-- * drafts: Mage creates a backfill first and starts it with a later PUT; a draft holds no
--   range against overlaps and is never planned until it is started;
-- * an inclusive datetime end: Mage makes a run for a window that starts exactly at the end;
-- * who created and who cancelled a backfill (Supermetrics reports user ids; here, key ids);
-- * soft deletion: Mage deletes backfills, but runs already running still finish, so the row
--   stays (hidden from every API) until its runs are done with it.

ALTER TABLE backfills DROP CONSTRAINT backfills_state_check;
ALTER TABLE backfills ADD CONSTRAINT backfills_state_check CHECK (state IN
    ('draft', 'created', 'scheduled', 'running', 'paused', 'completed', 'failed', 'cancelled'));

ALTER TABLE backfills ADD COLUMN end_inclusive boolean NOT NULL DEFAULT false;
ALTER TABLE backfills ADD COLUMN created_by bigint REFERENCES api_keys (id);
ALTER TABLE backfills ADD COLUMN cancelled_by bigint REFERENCES api_keys (id);
ALTER TABLE backfills ADD COLUMN deleted_at timestamptz;

-- "The latest backfill of this transfer" and "this sink's backfills".
CREATE INDEX backfills_target_id ON backfills (target_id, id);
