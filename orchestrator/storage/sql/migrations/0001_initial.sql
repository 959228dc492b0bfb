-- Targets, backfills, transfer runs, the outbox, applied commands and worker heartbeats.

CREATE TABLE targets (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid            uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    name            text NOT NULL UNIQUE,
    kind            text NOT NULL CHECK (kind IN ('table', 'date_range')),
    source          text,
    tables          text[] NOT NULL DEFAULT '{}',
    sort_column     text,
    sink            jsonb,
    handler         jsonb,
    variables       jsonb NOT NULL DEFAULT '{}',
    chunk_size      integer NOT NULL DEFAULT 1000 CHECK (chunk_size > 0),
    interval_type   text NOT NULL DEFAULT 'day',
    interval_units  integer NOT NULL DEFAULT 1 CHECK (interval_units > 0),
    max_active_runs integer NOT NULL DEFAULT 4 CHECK (max_active_runs > 0),
    max_attempts    integer NOT NULL DEFAULT 3 CHECK (max_attempts > 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (kind <> 'table' OR (source IS NOT NULL AND sink IS NOT NULL AND cardinality(tables) > 0)),
    CHECK (kind <> 'date_range' OR handler IS NOT NULL)
);

CREATE TABLE backfills (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid                 uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    target_id            bigint NOT NULL REFERENCES targets (id),
    kind                 text NOT NULL CHECK (kind IN ('table', 'date_range')),
    name                 text,
    state                text NOT NULL DEFAULT 'created' CHECK (state IN
                         ('created', 'scheduled', 'running', 'paused', 'completed', 'failed', 'cancelled')),
    -- The id of the command that created it: a producer's command sent twice makes one backfill.
    command_id           uuid NOT NULL UNIQUE,
    -- table backfills
    table_name           text,
    sort_column          text,
    key_columns          text[],
    key_types            text[],
    chunk_size           integer,
    -- The largest key when planning began; rows beyond it are not this backfill's job.
    upper_bound          text[],
    -- date-range backfills
    range_start          timestamptz,
    range_end            timestamptz,
    -- A date end is inclusive (its whole day); a datetime end bounds window starts.
    end_is_date          boolean NOT NULL DEFAULT false,
    -- start and end exactly as given, so a planner that resumes rebuilds the same windows.
    range_input          jsonb,
    -- What the windows actually cover, [covered_from, covered_to): the overlap check uses it.
    covered_from         timestamptz,
    covered_to           timestamptz,
    interval_type        text,
    interval_units       integer,
    time_zone            text,
    run_order            text,
    variables            jsonb NOT NULL DEFAULT '{}',
    max_active_runs      integer NOT NULL CHECK (max_active_runs > 0),
    max_attempts         integer NOT NULL CHECK (max_attempts > 0),
    -- planning: the cursor is the last key (table) or number of windows (date range) planned.
    planning_cursor      text[],
    planning_seq         integer NOT NULL DEFAULT 0,
    planning_done        boolean NOT NULL DEFAULT false,
    planner_token        uuid,
    planner_expires_at   timestamptz,
    rows_initial_count   bigint,
    rows_processed_count bigint NOT NULL DEFAULT 0,
    rows_ingested_count  bigint NOT NULL DEFAULT 0,
    runs_total           integer NOT NULL DEFAULT 0,
    runs_created         integer NOT NULL DEFAULT 0,
    runs_completed       integer NOT NULL DEFAULT 0,
    runs_failed          integer NOT NULL DEFAULT 0,
    runs_cancelled       integer NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL DEFAULT now(),
    started_at           timestamptz,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    completed_at         timestamptz,
    cancelled_at         timestamptz,
    failed_at            timestamptz,
    paused_at            timestamptz
);

CREATE INDEX backfills_target_state ON backfills (target_id, state, id);
CREATE INDEX backfills_state_id ON backfills (state, id);
-- At most one active backfill per (target, table): the API answers 409, a race answers 409 too.
CREATE UNIQUE INDEX backfills_one_active_per_table ON backfills (target_id, table_name)
    WHERE kind = 'table' AND state IN ('created', 'scheduled', 'running', 'paused');

CREATE TABLE transfer_runs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    backfill_id      bigint NOT NULL REFERENCES backfills (id) ON DELETE CASCADE,
    seq              integer NOT NULL,
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN
                     ('pending', 'queued', 'running', 'completed', 'failed', 'cancelled')),
    lower_key        text[],          -- exclusive; NULL: from the first row
    upper_key        text[],          -- inclusive
    window_start     timestamptz,
    window_end       timestamptz,
    cursor           text[],          -- last key delivered, so a retry resumes after it
    attempt          integer NOT NULL DEFAULT 0,
    lease_token      uuid,
    lease_expires_at timestamptz,
    worker_id        text,
    not_before       timestamptz NOT NULL DEFAULT now(),
    rows_processed   bigint NOT NULL DEFAULT 0,
    rows_ingested    bigint NOT NULL DEFAULT 0,
    error            text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    queued_at        timestamptz,
    started_at       timestamptz,
    finished_at      timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (backfill_id, seq)
);

CREATE INDEX transfer_runs_pending ON transfer_runs (backfill_id, seq) WHERE state = 'pending';
CREATE INDEX transfer_runs_active ON transfer_runs (backfill_id) WHERE state IN ('queued', 'running');
CREATE INDEX transfer_runs_leases ON transfer_runs (lease_expires_at) WHERE state = 'running';
CREATE INDEX transfer_runs_queued ON transfer_runs (queued_at) WHERE state = 'queued';
CREATE INDEX transfer_runs_failed ON transfer_runs (backfill_id, seq) WHERE state = 'failed';

-- Messages written in the same transaction as the state they announce; a relay publishes
-- them with confirms and marks them sent, so nothing is lost while RabbitMQ is down.
CREATE TABLE outbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    routing_key text NOT NULL,
    message_id  uuid NOT NULL DEFAULT gen_random_uuid(),
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz
);

CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('backfill_outbox', '');
    RETURN NULL;
END $$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- Commands applied, so the same command delivered twice changes nothing the second time.
CREATE TABLE applied_commands (
    command_id  uuid PRIMARY KEY,
    type        text NOT NULL,
    backfill_id bigint,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE workers (
    id           text PRIMARY KEY,
    hostname     text NOT NULL,
    pid          integer NOT NULL,
    roles        text[] NOT NULL DEFAULT '{}',
    started_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    stopped_at   timestamptz
);
