-- class: infra
-- Settings and the migration ledger. Settings are rows, not GUCs, so that every session (workers, the
-- harness, a psql user) reads the same value and a change is visible without reconnecting.

CREATE TABLE IF NOT EXISTS schema_migrations (
    version     text PRIMARY KEY,
    name        text NOT NULL,
    class       text NOT NULL CHECK (class IN ('core', 'legacy', 'infra')),
    applied_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE pipeline_settings (
    key         text PRIMARY KEY,
    value       text NOT NULL,
    description text NOT NULL DEFAULT '',
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

INSERT INTO pipeline_settings (key, value, description) VALUES
    ('gateway_mode', 'compat', 'compat: direct inserts into executor_jobs are redirected through the gateway '
                               'and recorded in compat_warnings; strict: they are rejected'),
    ('lease_seconds', '30', 'how long a claimed job belongs to its worker before another may re-claim it'),
    ('retry_base_ms', '500', 'first retry delay; doubles on every attempt, with jitter'),
    ('retry_cap_ms', '60000', 'longest retry delay'),
    ('default_max_attempts', '5', 'attempts before a job is dead');

-- Reads a setting; an absent key gives the default. STABLE so the planner may fold it once per statement.
CREATE FUNCTION pipeline_setting(p_key text, p_default text DEFAULT NULL)
RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT coalesce((SELECT value FROM pipeline_settings WHERE key = p_key), p_default)
$$;
