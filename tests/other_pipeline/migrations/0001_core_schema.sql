-- The tables of the pipeline: one authority (document_entities.events), one queue (executor_jobs, whose
-- status column IS the queue: there is no separate queue table), one row of typed settings (config), the
-- attempts of each job (job_attempts) and the best-effort projection (user_documents).

CREATE TABLE config (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    lease_seconds numeric NOT NULL DEFAULT 10 CHECK (lease_seconds > 0),
    retry_base_ms integer NOT NULL DEFAULT 200 CHECK (retry_base_ms >= 0),
    retry_cap_ms  integer NOT NULL DEFAULT 2000 CHECK (retry_cap_ms >= 0),
    max_attempts  integer NOT NULL DEFAULT 8 CHECK (max_attempts > 0),
    gateway_mode  text NOT NULL DEFAULT 'compat' CHECK (gateway_mode IN ('compat', 'strict'))
);
INSERT INTO config DEFAULT VALUES;

-- The whitelist. One decision type for every decision (a request, an execution outcome): the decision
-- worker reads the entity's whole history, so it needs no type per situation.
CREATE TABLE job_types (
    name text PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('decision', 'execution'))
);
INSERT INTO job_types (name, kind) VALUES
    ('decide', 'decision'), ('protect', 'execution'), ('tsa', 'execution'), ('anchor', 'execution');

CREATE TABLE document_entities (
    id         uuid PRIMARY KEY,
    owner_id   text,
    events     jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(events) = 'array'),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE executor_jobs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_type         text NOT NULL REFERENCES job_types (name),
    entity_id        uuid NOT NULL,
    dedupe_key       text NOT NULL UNIQUE,
    source_event_id  uuid NOT NULL,
    payload          jsonb NOT NULL DEFAULT '{}',
    status           text NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'running', 'succeeded', 'retrying', 'dead')),
    attempts         integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL DEFAULT 8,
    run_at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    lease_owner      text,
    lease_expires_at timestamptz,
    correlation_id   text,
    trace_id         text,
    materialized_via text NOT NULL DEFAULT 'direct',
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at      timestamptz
);
CREATE INDEX executor_jobs_ready ON executor_jobs (run_at, id) WHERE status IN ('queued', 'retrying');
CREATE INDEX executor_jobs_leased ON executor_jobs (lease_expires_at) WHERE status = 'running';
CREATE INDEX executor_jobs_entity ON executor_jobs (entity_id);

-- One row per attempt, keyed by (job, attempt number); `result` is NULL while the attempt runs.
CREATE TABLE job_attempts (
    seq            bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    job_id         bigint NOT NULL REFERENCES executor_jobs (id),
    attempt_no     integer NOT NULL,
    worker_name    text NOT NULL,
    started_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    ended_at       timestamptz,
    result         text CHECK (result IN ('done', 'error', 'expired', 'released')),
    error          text,
    result_event   uuid,
    correlation_id text,
    trace_id       text,
    PRIMARY KEY (job_id, attempt_no)
);

-- The projection: derived, best-effort, never read to decide anything.
CREATE TABLE user_documents (
    entity_id  uuid PRIMARY KEY,
    owner_id   text,
    document   text,
    state      text,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE FUNCTION project_user_document() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        INSERT INTO user_documents AS u (entity_id, owner_id, document, state, updated_at)
        VALUES (NEW.id, NEW.owner_id,
                (SELECT e -> 'payload' ->> 'document' FROM jsonb_array_elements(NEW.events) e
                  WHERE e ->> 'type' = 'document.protect.requested' LIMIT 1),
                NEW.events -> -1 ->> 'type', clock_timestamp())
        ON CONFLICT (entity_id) DO UPDATE
            SET state = EXCLUDED.state, document = coalesce(u.document, EXCLUDED.document),
                updated_at = EXCLUDED.updated_at;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'user_documents projection skipped for %: %', NEW.id, SQLERRM;
    END;
    RETURN NULL;
END $$;

CREATE TRIGGER project_user_documents AFTER INSERT OR UPDATE OF events ON document_entities
    FOR EACH ROW EXECUTE FUNCTION project_user_document();
