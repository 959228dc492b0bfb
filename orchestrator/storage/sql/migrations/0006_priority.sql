-- A backfill's priority: its weight in the fair share of the dispatch capacity.
ALTER TABLE backfills ADD COLUMN priority integer NOT NULL DEFAULT 5
    CHECK (priority BETWEEN 1 AND 10);
