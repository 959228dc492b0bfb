-- The orchestrator's tables move out of `public` into the schema `orchestrator` (migrate()
-- creates it and puts it first on the search_path, so a fresh database creates them there
-- directly and these moves find nothing to do). No role but the orchestrator's own has any
-- right on it: a source role that can reach this schema is refused on start.
ALTER TABLE IF EXISTS public.targets SET SCHEMA orchestrator;
ALTER TABLE IF EXISTS public.backfills SET SCHEMA orchestrator;
ALTER TABLE IF EXISTS public.transfer_runs SET SCHEMA orchestrator;
ALTER TABLE IF EXISTS public.outbox SET SCHEMA orchestrator;
ALTER TABLE IF EXISTS public.applied_commands SET SCHEMA orchestrator;
ALTER TABLE IF EXISTS public.workers SET SCHEMA orchestrator;
ALTER TABLE IF EXISTS public.teams SET SCHEMA orchestrator;
ALTER TABLE IF EXISTS public.api_keys SET SCHEMA orchestrator;
ALTER TABLE IF EXISTS public.rate_limit_windows SET SCHEMA orchestrator;
DO $$
BEGIN
    IF to_regprocedure('public.outbox_notify()') IS NOT NULL THEN
        ALTER FUNCTION public.outbox_notify() SET SCHEMA orchestrator;
    END IF;
END
$$;
REVOKE ALL ON SCHEMA orchestrator FROM PUBLIC;

-- What an operator granted a team on a named source (`backfill sources grant`). Table
-- patterns are schema-qualified: `analytics.orders`, `analytics.*`. The sql handler runs only
-- where `sql_handler` is true; its transaction is read-only unless `write_tables` is not empty.
CREATE TABLE source_grants (
    team_id           bigint NOT NULL REFERENCES teams (id),
    source            text NOT NULL,
    read_tables       text[] NOT NULL DEFAULT '{}',
    write_tables      text[] NOT NULL DEFAULT '{}',
    sql_handler       boolean NOT NULL DEFAULT false,
    statement_timeout_ms integer NOT NULL DEFAULT 60000 CHECK (statement_timeout_ms > 0),
    granted_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team_id, source)
);

-- The login role made for the `demo` source on first start. Kept here, where only the
-- orchestrator's role can read it, so later starts connect as it again.
CREATE TABLE demo_source (
    id       boolean PRIMARY KEY DEFAULT true CHECK (id),
    role     text NOT NULL,
    password text NOT NULL
);
