-- class: core
-- The tables of the single path of truth: canonical event -> job -> run -> canonical result.

-- The whitelist of job types: a type not listed here is never materialized. `kind` decides which claim
-- function may return it, `role` which worker executes it.
CREATE TABLE job_types (
    name          text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]*$'),
    kind          text NOT NULL CHECK (kind IN ('decision', 'execution')),
    role          text NOT NULL CHECK (role IN ('fase1-executor', 'orchestrator')),
    max_attempts  int  NOT NULL DEFAULT 5 CHECK (max_attempts > 0),
    description   text NOT NULL DEFAULT '',
    CHECK ((kind = 'decision') = (role = 'fase1-executor'))
);

INSERT INTO job_types (name, kind, role, max_attempts, description) VALUES
    ('decide_request', 'decision',  'fase1-executor', 5, 'decide what a document.*.requested event starts'),
    ('decide_outcome', 'decision',  'fase1-executor', 5, 'decide the next step after a job outcome'),
    ('protect',        'execution', 'orchestrator',   5, 'hash and sign the document'),
    ('tsa',            'execution', 'orchestrator',   5, 'obtain a signed timestamp token'),
    ('anchor',         'execution', 'orchestrator',   5, 'obtain a ledger receipt');

-- The only domain authority. Events are appended, never edited; the core trigger reads what was appended.
CREATE TABLE document_entities (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind        text NOT NULL DEFAULT 'document',
    owner_id    text,
    events      jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(events) = 'array'),
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- The only execution queue.
CREATE TABLE executor_jobs (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_type          text NOT NULL REFERENCES job_types (name),
    kind              text NOT NULL CHECK (kind IN ('decision', 'execution')),
    entity_id         uuid NOT NULL,
    dedupe_key        text NOT NULL,
    status            text NOT NULL DEFAULT 'queued'
                      CHECK (status IN ('queued', 'running', 'succeeded', 'retrying', 'dead')),
    attempts          int  NOT NULL DEFAULT 0,
    max_attempts      int  NOT NULL DEFAULT 5,
    run_at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    lease_owner       text,
    lease_expires_at  timestamptz,
    payload           jsonb NOT NULL DEFAULT '{}'::jsonb,
    source_event_id   uuid NOT NULL,
    correlation_id    uuid,
    trace_id          text CHECK (trace_id ~ '^[0-9a-f]{32}$'),
    materialized_via  text NOT NULL,
    last_error        text,
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at       timestamptz,
    CONSTRAINT executor_jobs_dedupe_key_key UNIQUE (dedupe_key)
);

-- One row per attempt.
CREATE TABLE executor_job_runs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id           bigint NOT NULL REFERENCES executor_jobs (id),
    attempt          int NOT NULL,
    worker           text NOT NULL,
    started_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at      timestamptz,
    outcome          text CHECK (outcome IN ('succeeded', 'failed', 'lease_expired', 'released')),
    error            text,
    result_event_id  uuid,
    correlation_id   uuid,
    trace_id         text
);

-- Projection only: derived best-effort from document_entities, never read by the decision path.
CREATE TABLE user_documents (
    id              uuid PRIMARY KEY,
    owner_id        text,
    status          text NOT NULL DEFAULT 'new',
    last_event_type text,
    last_event_at   timestamptz,
    content_sha256  text,
    tsa_serial      text,
    anchor_height   bigint,
    updated_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Every insert into executor_jobs that did not come through the gateway (mode compat).
CREATE TABLE compat_warnings (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    source       text NOT NULL,
    job_type     text,
    entity_id    uuid,
    dedupe_key   text,
    job_id       bigint,
    detail       jsonb NOT NULL DEFAULT '{}'::jsonb
);

-- Live workers, so that "a role with no live worker" can be seen.
CREATE TABLE worker_heartbeats (
    worker_id   text PRIMARY KEY,
    role        text NOT NULL,
    pid         int  NOT NULL,
    host        text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_seen   timestamptz NOT NULL DEFAULT clock_timestamp(),
    jobs_done   bigint NOT NULL DEFAULT 0
);

-- Named failpoints armed at run time; workers reload them on NOTIFY pipeline_failpoints.
CREATE TABLE failpoints (
    name        text PRIMARY KEY,
    action      text NOT NULL,
    hits        bigint NOT NULL DEFAULT 0,
    armed_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_hit_at timestamptz
);

-- The claim path reads only ready jobs; the partial index keeps that read proportional to the backlog.
CREATE INDEX executor_jobs_ready_idx ON executor_jobs (kind, run_at, id) WHERE status IN ('queued', 'retrying');
CREATE INDEX executor_jobs_lease_idx ON executor_jobs (lease_expires_at) WHERE status = 'running';
CREATE INDEX executor_jobs_entity_idx ON executor_jobs (entity_id);
CREATE INDEX executor_job_runs_job_idx ON executor_job_runs (job_id);
