-- The dispatch capacity follows the workers that are up: each executor process says how many
-- runs it executes at once (`concurrency`) and until when its heartbeat vouches for it
-- (`live_until`, a few heartbeats ahead), so a worker that starts adds its slots to the fair
-- shares at its first heartbeat and one that stops or dies takes them away. NULL for
-- processes that execute no runs, and for rows written before this migration.
ALTER TABLE workers ADD COLUMN concurrency integer CHECK (concurrency > 0),
                    ADD COLUMN live_until timestamptz;
