-- A backfill's row is updated whenever its runs end (counters, once per batch), and with many
-- backfills running each batch updates as many rows as it ended runs. A full page leaves a
-- new version no room beside the old one, so the update is not HOT: a copy elsewhere and a
-- new entry in every one of the table's indexes, which the next reads walk past until
-- vacuum. Room left on each page keeps those updates HOT (the counters are in no index).
-- Pages already written keep their packing until they are rewritten.
ALTER TABLE backfills SET (fillfactor = 50);
