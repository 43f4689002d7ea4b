-- pipeline/sql/schema.sql: what the migrations in pipeline/sql/migrations/ build, read back from the
-- catalogue of a database migrated to the end (PostgreSQL 18). Generated, do not edit; regenerate with
--
--     python -m tests.schema_snapshot --write
--
-- NOT a migration: nothing applies this file. The migrations alone build the schema, and they are
-- append-only (pipeline/sql/migrations/SHA256SUMS); tests/integration/test_schema_snapshot.py fails when
-- they build anything other than this file. Left out: object owners (whoever ran the migrations), the
-- harness's ledger rows (schema_migrations), and seed columns whose default differs on every build.

-- =========================================================================================================
-- Roles that hold privileges on the pipeline's objects (6)
-- =========================================================================================================

-- role pipeline_decider
CREATE ROLE pipeline_decider NOLOGIN;

-- role pipeline_executor
CREATE ROLE pipeline_executor NOLOGIN;

-- role pipeline_monitor
CREATE ROLE pipeline_monitor NOLOGIN;

-- role pipeline_reader
CREATE ROLE pipeline_reader NOLOGIN;

-- role pipeline_scheduler
CREATE ROLE pipeline_scheduler NOLOGIN;

-- role pipeline_writer
CREATE ROLE pipeline_writer NOLOGIN;

-- =========================================================================================================
-- The schema: its extensions and grants (1)
-- =========================================================================================================

-- schema public
GRANT USAGE ON SCHEMA public TO PUBLIC, pipeline_decider, pipeline_executor, pipeline_monitor, pipeline_reader, pipeline_scheduler, pipeline_writer;

-- =========================================================================================================
-- Types (2)
-- =========================================================================================================

-- type job_queue_state
CREATE TYPE job_queue_state AS ENUM ('ready', 'leased', 'dead');

-- type materialized_job
CREATE TYPE materialized_job AS (
    job_id bigint,
    dedupe_key text,
    created boolean
);

-- =========================================================================================================
-- Tables, with their constraints, indexes, triggers and grants (15)
-- =========================================================================================================

-- table alert_history
CREATE TABLE alert_history (
    id           bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
    at           timestamp with time zone NOT NULL,
    rule         text NOT NULL,
    labels       jsonb NOT NULL DEFAULT '{}'::jsonb,
    from_state   text NOT NULL,
    to_state     text NOT NULL,
    value        double precision,
    threshold    double precision,
    for_s        double precision,
    active_since timestamp with time zone,
    CONSTRAINT alert_history_pkey PRIMARY KEY (id),
    CONSTRAINT alert_history_to_state_check CHECK ((to_state = ANY (ARRAY['inactive'::text, 'pending'::text, 'firing'::text, 'resolved'::text])))
);
CREATE INDEX alert_history_rule_idx ON public.alert_history USING btree (rule, at);
GRANT SELECT ON TABLE alert_history TO pipeline_monitor, pipeline_reader;

-- table alert_profiles
CREATE TABLE alert_profiles (
    profile text NOT NULL,
    key     text NOT NULL,
    value   text NOT NULL,
    CONSTRAINT alert_profiles_pkey PRIMARY KEY (profile, key)
);
GRANT SELECT ON TABLE alert_profiles TO pipeline_monitor, pipeline_reader;

-- table alert_rules
CREATE TABLE alert_rules (
    name       text NOT NULL,
    metric     text NOT NULL,
    op         text NOT NULL,
    severity   text NOT NULL,
    summary    text NOT NULL,
    runbook    text NOT NULL DEFAULT ''::text,
    has_window boolean NOT NULL DEFAULT false,
    CONSTRAINT alert_rules_pkey PRIMARY KEY (name),
    CONSTRAINT alert_rules_metric_check CHECK ((metric ~ '^[a-z_][a-z0-9_]*$'::text)),
    CONSTRAINT alert_rules_name_check CHECK ((name ~ '^[a-z][a-z0-9_]*$'::text)),
    CONSTRAINT alert_rules_op_check CHECK ((op = ANY (ARRAY['>'::text, '<'::text]))),
    CONSTRAINT alert_rules_severity_check CHECK ((severity = ANY (ARRAY['critical'::text, 'warning'::text, 'info'::text])))
);
GRANT SELECT ON TABLE alert_rules TO pipeline_monitor, pipeline_reader;

-- table alert_state
CREATE TABLE alert_state (
    rule         text NOT NULL,
    labels       jsonb NOT NULL DEFAULT '{}'::jsonb,
    state        text NOT NULL,
    value        double precision,
    threshold    double precision,
    for_s        double precision,
    active_since timestamp with time zone,
    fired_at     timestamp with time zone,
    resolved_at  timestamp with time zone,
    evaluated_at timestamp with time zone NOT NULL,
    CONSTRAINT alert_state_pkey PRIMARY KEY (rule, labels),
    CONSTRAINT alert_state_rule_fkey FOREIGN KEY (rule) REFERENCES alert_rules(name),
    CONSTRAINT alert_state_state_check CHECK ((state = ANY (ARRAY['inactive'::text, 'pending'::text, 'firing'::text])))
);
GRANT SELECT ON TABLE alert_state TO pipeline_monitor, pipeline_reader;

-- table compat_warnings
CREATE TABLE compat_warnings (
    id         bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
    at         timestamp with time zone NOT NULL DEFAULT clock_timestamp(),
    source     text NOT NULL,
    job_type   text,
    entity_id  uuid,
    dedupe_key text,
    job_id     bigint,
    detail     jsonb NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT compat_warnings_pkey PRIMARY KEY (id)
);
CREATE INDEX compat_warnings_at_idx ON public.compat_warnings USING btree (at);
GRANT SELECT ON TABLE compat_warnings TO pipeline_decider, pipeline_executor, pipeline_monitor, pipeline_reader, pipeline_scheduler;

-- table document_entities
CREATE TABLE document_entities (
    id         uuid NOT NULL DEFAULT gen_random_uuid(),
    kind       text NOT NULL DEFAULT 'document'::text,
    owner_id   text,
    events     jsonb NOT NULL DEFAULT '[]'::jsonb,
    created_at timestamp with time zone NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamp with time zone NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT document_entities_pkey PRIMARY KEY (id),
    CONSTRAINT document_entities_events_check CHECK ((jsonb_typeof(events) = 'array'::text))
) WITH (autovacuum_vacuum_cost_delay=0, autovacuum_vacuum_scale_factor=0.02, fillfactor=70);
CREATE INDEX document_entities_updated_brin ON public.document_entities USING brin (updated_at) WITH (autosummarize='on', pages_per_range='16');
CREATE TRIGGER on_document_entity_events_change AFTER INSERT OR UPDATE OF events ON public.document_entities FOR EACH ROW EXECUTE FUNCTION on_document_entity_events_change();  -- enabled (fires unless session_replication_role = replica)
CREATE TRIGGER project_user_documents AFTER UPDATE ON public.document_entities REFERENCING NEW TABLE AS new_entities FOR EACH STATEMENT EXECUTE FUNCTION project_user_documents_set();  -- enabled (fires unless session_replication_role = replica)
CREATE TRIGGER project_user_documents_on_insert AFTER INSERT ON public.document_entities REFERENCING NEW TABLE AS new_entities FOR EACH STATEMENT EXECUTE FUNCTION project_user_documents_set();  -- enabled (fires unless session_replication_role = replica)
GRANT SELECT ON TABLE document_entities TO pipeline_decider, pipeline_executor, pipeline_monitor, pipeline_reader, pipeline_scheduler;

-- table executor_job_queue
CREATE TABLE executor_job_queue (
    job_id bigint NOT NULL,
    kind   text NOT NULL,
    state  job_queue_state NOT NULL,
    due_at timestamp with time zone NOT NULL,
    CONSTRAINT executor_job_queue_pkey PRIMARY KEY (job_id)
) WITH (autovacuum_vacuum_cost_delay=0, autovacuum_vacuum_insert_scale_factor=0.0, autovacuum_vacuum_insert_threshold=5000, autovacuum_vacuum_scale_factor=0.0, autovacuum_vacuum_threshold=2000);
CREATE INDEX executor_job_queue_dead_idx ON public.executor_job_queue USING btree (due_at) WHERE (state = 'dead'::job_queue_state);
CREATE INDEX executor_job_queue_leased_idx ON public.executor_job_queue USING btree (kind, due_at) WHERE (state = 'leased'::job_queue_state);
CREATE INDEX executor_job_queue_ready_idx ON public.executor_job_queue USING btree (kind, due_at, job_id) WHERE (state = 'ready'::job_queue_state);
GRANT SELECT ON TABLE executor_job_queue TO pipeline_decider, pipeline_executor, pipeline_monitor, pipeline_reader, pipeline_scheduler;

-- table executor_job_runs
CREATE TABLE executor_job_runs (
    id              bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
    job_id          bigint NOT NULL,
    attempt         integer NOT NULL,
    worker          text NOT NULL,
    started_at      timestamp with time zone NOT NULL DEFAULT clock_timestamp(),
    finished_at     timestamp with time zone,
    outcome         text,
    error           text,
    result_event_id uuid,
    correlation_id  uuid,
    trace_id        text,
    CONSTRAINT executor_job_runs_pkey PRIMARY KEY (id),
    CONSTRAINT executor_job_runs_outcome_check CHECK ((outcome = ANY (ARRAY['succeeded'::text, 'failed'::text, 'lease_expired'::text, 'released'::text])))
) WITH (autovacuum_vacuum_insert_scale_factor=0.05, fillfactor=80);
CREATE INDEX executor_job_runs_finished_brin ON public.executor_job_runs USING brin (finished_at) WITH (autosummarize='on', pages_per_range='16');
CREATE INDEX executor_job_runs_job_idx ON public.executor_job_runs USING btree (job_id);
GRANT SELECT ON TABLE executor_job_runs TO pipeline_decider, pipeline_executor, pipeline_monitor, pipeline_reader, pipeline_scheduler;

-- table executor_jobs
CREATE TABLE executor_jobs (
    id               bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
    job_type         text NOT NULL,
    kind             text NOT NULL,
    entity_id        uuid NOT NULL,
    dedupe_key       text NOT NULL,
    status           text NOT NULL DEFAULT 'queued'::text,
    attempts         integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL DEFAULT 5,
    run_at           timestamp with time zone NOT NULL DEFAULT clock_timestamp(),
    lease_owner      text,
    lease_expires_at timestamp with time zone,
    payload          jsonb NOT NULL DEFAULT '{}'::jsonb,
    source_event_id  uuid NOT NULL,
    correlation_id   uuid,
    trace_id         text,
    materialized_via text NOT NULL,
    last_error       text,
    created_at       timestamp with time zone NOT NULL DEFAULT clock_timestamp(),
    updated_at       timestamp with time zone NOT NULL DEFAULT clock_timestamp(),
    finished_at      timestamp with time zone,
    CONSTRAINT executor_jobs_pkey PRIMARY KEY (id),
    CONSTRAINT executor_jobs_dedupe_key_key UNIQUE (dedupe_key),
    CONSTRAINT executor_jobs_values_check CHECK (executor_job_values_ok(kind, status, trace_id))
) WITH (fillfactor=60);
CREATE INDEX executor_jobs_entity_idx ON public.executor_jobs USING btree (entity_id);
CREATE TRIGGER executor_job_queue_on_delete AFTER DELETE ON public.executor_jobs REFERENCING OLD TABLE AS old_jobs FOR EACH STATEMENT EXECUTE FUNCTION executor_job_queue_sync();  -- enabled always (fires under session_replication_role = replica too)
ALTER TABLE executor_jobs ENABLE ALWAYS TRIGGER executor_job_queue_on_delete;
CREATE TRIGGER executor_job_queue_on_insert AFTER INSERT ON public.executor_jobs REFERENCING NEW TABLE AS new_jobs FOR EACH STATEMENT WHEN ((current_setting('pipeline.via_gateway'::text, true) IS DISTINCT FROM 'on'::text)) EXECUTE FUNCTION executor_job_queue_sync();  -- enabled always (fires under session_replication_role = replica too)
ALTER TABLE executor_jobs ENABLE ALWAYS TRIGGER executor_job_queue_on_insert;
CREATE TRIGGER executor_job_queue_on_truncate AFTER TRUNCATE ON public.executor_jobs FOR EACH STATEMENT EXECUTE FUNCTION executor_job_queue_sync();  -- enabled always (fires under session_replication_role = replica too)
ALTER TABLE executor_jobs ENABLE ALWAYS TRIGGER executor_job_queue_on_truncate;
CREATE TRIGGER executor_job_queue_on_update AFTER UPDATE ON public.executor_jobs REFERENCING NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION executor_job_queue_sync();  -- enabled always (fires under session_replication_role = replica too)
ALTER TABLE executor_jobs ENABLE ALWAYS TRIGGER executor_job_queue_on_update;
CREATE TRIGGER executor_jobs_gateway_guard BEFORE INSERT ON public.executor_jobs FOR EACH ROW WHEN ((current_setting('pipeline.via_gateway'::text, true) IS DISTINCT FROM 'on'::text)) EXECUTE FUNCTION executor_jobs_gateway_guard();  -- enabled (fires unless session_replication_role = replica)
GRANT SELECT ON TABLE executor_jobs TO pipeline_decider, pipeline_executor, pipeline_monitor, pipeline_reader, pipeline_scheduler;

-- table failpoints
CREATE TABLE failpoints (
    name        text NOT NULL,
    action      text NOT NULL,
    hits        bigint NOT NULL DEFAULT 0,
    armed_at    timestamp with time zone NOT NULL DEFAULT clock_timestamp(),
    last_hit_at timestamp with time zone,
    CONSTRAINT failpoints_pkey PRIMARY KEY (name)
);
GRANT SELECT ON TABLE failpoints TO pipeline_decider, pipeline_executor, pipeline_monitor, pipeline_reader, pipeline_scheduler;

-- table job_types
CREATE TABLE job_types (
    name         text NOT NULL,
    kind         text NOT NULL,
    role         text NOT NULL,
    max_attempts integer NOT NULL DEFAULT 5,
    description  text NOT NULL DEFAULT ''::text,
    CONSTRAINT job_types_pkey PRIMARY KEY (name),
    CONSTRAINT job_types_check CHECK (((kind = 'decision'::text) = (role = 'fase1-executor'::text))),
    CONSTRAINT job_types_kind_check CHECK ((kind = ANY (ARRAY['decision'::text, 'execution'::text]))),
    CONSTRAINT job_types_max_attempts_check CHECK ((max_attempts > 0)),
    CONSTRAINT job_types_name_check CHECK ((name ~ '^[a-z][a-z0-9_]*$'::text)),
    CONSTRAINT job_types_role_check CHECK ((role = ANY (ARRAY['fase1-executor'::text, 'orchestrator'::text])))
);
GRANT SELECT ON TABLE job_types TO pipeline_decider, pipeline_executor, pipeline_monitor, pipeline_reader, pipeline_scheduler;

-- table pipeline_settings
CREATE TABLE pipeline_settings (
    key         text NOT NULL,
    value       text NOT NULL,
    description text NOT NULL DEFAULT ''::text,
    updated_at  timestamp with time zone NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT pipeline_settings_pkey PRIMARY KEY (key)
);
CREATE TRIGGER pipeline_settings_validate BEFORE INSERT OR UPDATE ON public.pipeline_settings FOR EACH ROW EXECUTE FUNCTION pipeline_settings_validate();  -- enabled (fires unless session_replication_role = replica)
GRANT SELECT ON TABLE pipeline_settings TO pipeline_decider, pipeline_executor, pipeline_monitor, pipeline_reader, pipeline_scheduler;

-- table schema_migrations
CREATE TABLE schema_migrations (
    version    text NOT NULL,
    name       text NOT NULL,
    class      text NOT NULL,
    applied_at timestamp with time zone NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT schema_migrations_pkey PRIMARY KEY (version),
    CONSTRAINT schema_migrations_class_check CHECK ((class = ANY (ARRAY['core'::text, 'legacy'::text, 'infra'::text])))
);
GRANT SELECT ON TABLE schema_migrations TO pipeline_decider, pipeline_executor, pipeline_monitor, pipeline_reader, pipeline_scheduler;

-- table user_documents
CREATE TABLE user_documents (
    id              uuid NOT NULL,
    owner_id        text,
    status          text NOT NULL DEFAULT 'new'::text,
    last_event_type text,
    last_event_at   timestamp with time zone,
    content_sha256  text,
    tsa_serial      text,
    anchor_height   bigint,
    updated_at      timestamp with time zone NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT user_documents_pkey PRIMARY KEY (id)
) WITH (fillfactor=70);
GRANT SELECT ON TABLE user_documents TO pipeline_decider, pipeline_executor, pipeline_monitor, pipeline_reader, pipeline_scheduler;

-- table worker_heartbeats
CREATE TABLE worker_heartbeats (
    worker_id  text NOT NULL,
    role       text NOT NULL,
    pid        integer NOT NULL,
    host       text NOT NULL,
    started_at timestamp with time zone NOT NULL DEFAULT clock_timestamp(),
    last_seen  timestamp with time zone NOT NULL DEFAULT clock_timestamp(),
    jobs_done  bigint NOT NULL DEFAULT 0,
    CONSTRAINT worker_heartbeats_pkey PRIMARY KEY (worker_id)
);
GRANT SELECT ON TABLE worker_heartbeats TO pipeline_decider, pipeline_executor, pipeline_monitor, pipeline_reader, pipeline_scheduler;

-- =========================================================================================================
-- Views (7)
-- =========================================================================================================

-- view alert_rules_current
CREATE VIEW alert_rules_current AS
 SELECT name,
    metric,
    op,
    alert_setting(name, 'threshold'::text) AS threshold,
    alert_setting(name, 'for_s'::text) AS for_s,
        CASE
            WHEN has_window THEN alert_setting(name, 'window_s'::text, 300::double precision)
            ELSE NULL::double precision
        END AS window_s,
    severity,
    summary,
    runbook,
    format('%s %s %s'::text, metric, op, alert_setting(name, 'threshold'::text)) AS promql
   FROM alert_rules r;
GRANT SELECT ON TABLE alert_rules_current TO pipeline_monitor, pipeline_reader;

-- view dashboard_backlog
CREATE VIEW dashboard_backlog AS
 SELECT k.kind,
    count(q.job_id) FILTER (WHERE q.state = 'ready'::job_queue_state AND q.due_at <= clock_timestamp()) AS ready,
    COALESCE(EXTRACT(epoch FROM clock_timestamp() - min(q.due_at) FILTER (WHERE q.state = 'ready'::job_queue_state AND q.due_at <= clock_timestamp())), 0::numeric) AS oldest_ready_age_s,
    count(q.job_id) FILTER (WHERE j.status = 'queued'::text) AS queued,
    count(q.job_id) FILTER (WHERE j.status = 'retrying'::text) AS retrying,
    count(q.job_id) FILTER (WHERE j.status = 'running'::text) AS running,
    count(q.job_id) FILTER (WHERE q.state = 'leased'::job_queue_state AND q.due_at < clock_timestamp()) AS expired_leases,
    count(q.job_id) FILTER (WHERE q.state = 'dead'::job_queue_state) AS dead
   FROM ( VALUES ('decision'::text), ('execution'::text)) k(kind)
     LEFT JOIN executor_job_queue q ON q.kind = k.kind
     LEFT JOIN executor_jobs j ON j.id = q.job_id
  GROUP BY k.kind
  ORDER BY k.kind;
GRANT SELECT ON TABLE dashboard_backlog TO pipeline_monitor, pipeline_reader;

-- view dashboard_job_runs
CREATE VIEW dashboard_job_runs AS
 SELECT j.id AS job_id,
    j.job_type,
    j.entity_id,
    j.status,
    j.attempts,
    count(r.id) AS runs,
    count(r.id) FILTER (WHERE r.outcome = ANY (ARRAY['failed'::text, 'lease_expired'::text])) AS failed_runs,
    (array_agg(r.error ORDER BY r.id DESC) FILTER (WHERE r.error IS NOT NULL))[1] AS last_error,
    max(r.started_at) AS last_run_at
   FROM ( SELECT executor_jobs.id,
            executor_jobs.job_type,
            executor_jobs.kind,
            executor_jobs.entity_id,
            executor_jobs.dedupe_key,
            executor_jobs.status,
            executor_jobs.attempts,
            executor_jobs.max_attempts,
            executor_jobs.run_at,
            executor_jobs.lease_owner,
            executor_jobs.lease_expires_at,
            executor_jobs.payload,
            executor_jobs.source_event_id,
            executor_jobs.correlation_id,
            executor_jobs.trace_id,
            executor_jobs.materialized_via,
            executor_jobs.last_error,
            executor_jobs.created_at,
            executor_jobs.updated_at,
            executor_jobs.finished_at
           FROM executor_jobs
          ORDER BY executor_jobs.id DESC
         LIMIT 500) j
     LEFT JOIN executor_job_runs r ON r.job_id = j.id
  GROUP BY j.id, j.job_type, j.entity_id, j.status, j.attempts
  ORDER BY j.id DESC;
GRANT SELECT ON TABLE dashboard_job_runs TO pipeline_monitor, pipeline_reader;

-- view dashboard_jobs_per_entity
CREATE VIEW dashboard_jobs_per_entity AS
 SELECT entity_id,
    count(*) AS jobs,
    count(*) FILTER (WHERE status = 'succeeded'::text) AS succeeded,
    count(*) FILTER (WHERE status = ANY (ARRAY['queued'::text, 'retrying'::text, 'running'::text])) AS open,
    count(*) FILTER (WHERE status = 'retrying'::text) AS retrying,
    count(*) FILTER (WHERE status = 'dead'::text) AS dead,
    string_agg((job_type || ':'::text) || status, ' > '::text ORDER BY id) AS path,
    max(updated_at) AS last_change
   FROM executor_jobs j
  WHERE (entity_id IN ( SELECT r.entity_id
           FROM executor_jobs r
          ORDER BY r.id DESC
         LIMIT 500))
  GROUP BY entity_id
  ORDER BY (max(updated_at)) DESC
 LIMIT 50;
GRANT SELECT ON TABLE dashboard_jobs_per_entity TO pipeline_monitor, pipeline_reader;

-- view dashboard_recent_events
CREATE VIEW dashboard_recent_events AS
 SELECT e.id AS entity_id,
    (x.value ->> 'id'::text)::uuid AS event_id,
    x.value ->> 'type'::text AS type,
    (x.value ->> 'at'::text)::timestamp with time zone AS at,
    x.value ->> 'correlation_id'::text AS correlation_id,
    x.value ->> 'trace_id'::text AS trace_id,
    x.value ->> 'causation_id'::text AS causation_id
   FROM ( SELECT d.id,
            d.events
           FROM document_entities d
          WHERE d.updated_at > (clock_timestamp() - '01:00:00'::interval)
          ORDER BY d.updated_at DESC
         LIMIT 100) e
     CROSS JOIN LATERAL jsonb_array_elements(e.events) x(value)
  ORDER BY ((x.value ->> 'at'::text)::timestamp with time zone) DESC
 LIMIT 200;
GRANT SELECT ON TABLE dashboard_recent_events TO pipeline_monitor, pipeline_reader;

-- view dashboard_runs_with_errors
CREATE VIEW dashboard_runs_with_errors AS
 SELECT r.id AS run_id,
    r.job_id,
    j.job_type,
    j.entity_id,
    r.attempt,
    r.worker,
    r.started_at,
    r.finished_at,
    r.outcome,
    r.error,
    j.status AS job_status
   FROM executor_job_runs r
     JOIN executor_jobs j ON j.id = r.job_id
  WHERE r.id > (( SELECT COALESCE(max(m.id), 0::bigint) - 100000
           FROM executor_job_runs m)) AND (r.error IS NOT NULL OR (r.outcome = ANY (ARRAY['failed'::text, 'lease_expired'::text])))
  ORDER BY r.id DESC
 LIMIT 100;
GRANT SELECT ON TABLE dashboard_runs_with_errors TO pipeline_monitor, pipeline_reader;

-- view dashboard_workers
CREATE VIEW dashboard_workers AS
 SELECT role,
    worker_id,
    pid,
    started_at,
    last_seen,
    jobs_done,
    EXTRACT(epoch FROM clock_timestamp() - last_seen) AS silent_s,
    last_seen > (clock_timestamp() - make_interval(secs => pipeline_setting('heartbeat_stale_s'::text, '60'::text)::double precision)) AS live
   FROM worker_heartbeats h
  ORDER BY role, last_seen DESC;
GRANT SELECT ON TABLE dashboard_workers TO pipeline_monitor, pipeline_reader;

-- =========================================================================================================
-- Functions: the definition in force (pg_get_functiondef), by name (47)
-- =========================================================================================================

-- function alert_rule_values(timestamp with time zone)
CREATE OR REPLACE FUNCTION public.alert_rule_values(p_now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS TABLE(rule text, labels jsonb, value double precision)
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
    v_now   timestamptz := coalesce(p_now, clock_timestamp());
    v_stale interval := make_interval(secs => pipeline_setting('heartbeat_stale_s', '60')::double precision);
BEGIN
    RETURN QUERY SELECT 'core_trigger_disabled'::text, '{}'::jsonb, core_trigger_enabled()::double precision;
    RETURN QUERY SELECT 'event_to_job_gap_breached'::text, '{}'::jsonb, count(*)::double precision
                   FROM event_to_job_gaps(NULL, v_now) g WHERE g.status = 'breached';
    RETURN QUERY SELECT 'backlog_ready_jobs'::text, '{}'::jsonb, count(*)::double precision
                   FROM executor_job_queue q WHERE q.state = 'ready' AND q.due_at <= v_now;
    RETURN QUERY SELECT 'backlog_oldest_age'::text, '{}'::jsonb,
                        coalesce(extract(epoch FROM v_now - min(q.due_at)), 0)::double precision
                   FROM executor_job_queue q WHERE q.state = 'ready' AND q.due_at <= v_now;
    RETURN QUERY SELECT 'retry_storm'::text, '{}'::jsonb, count(*)::double precision
                   FROM executor_job_runs r
                  WHERE r.outcome IN ('failed', 'lease_expired') AND r.finished_at <= v_now
                    AND r.finished_at > v_now - make_interval(secs => alert_setting('retry_storm', 'window_s', 300));
    RETURN QUERY SELECT 'dead_jobs'::text, '{}'::jsonb, count(*)::double precision
                   FROM executor_job_queue q
                  WHERE q.state = 'dead' AND q.due_at <= v_now
                    AND q.due_at > v_now - make_interval(secs => alert_setting('dead_jobs', 'window_s', 900));
    RETURN QUERY SELECT 'compat_warnings_present'::text, '{}'::jsonb, count(*)::double precision
                   FROM compat_warnings w
                  WHERE w.at <= v_now
                    AND w.at > v_now - make_interval(secs => alert_setting('compat_warnings_present', 'window_s', 3600));
    RETURN QUERY SELECT 'worker_role_absent'::text, jsonb_build_object('role', r.role),
                        (SELECT count(*) FROM worker_heartbeats h
                          WHERE h.role = r.role AND h.last_seen > v_now - v_stale)::double precision
                   FROM unnest(string_to_array(pipeline_setting('monitor_expected_roles',
                                                                'fase1-executor,orchestrator,scheduler'), ',')) r (role)
                  WHERE btrim(r.role) <> '';
END
$function$;

-- function alert_setting(text,text,double precision)
CREATE OR REPLACE FUNCTION public.alert_setting(p_rule text, p_attribute text, p_default double precision DEFAULT 0)
 RETURNS double precision
 LANGUAGE sql
 STABLE
AS $function$ SELECT coalesce(pipeline_setting('alert.' || p_rule || '.' || p_attribute)::double precision, p_default) $function$;

-- function append_event(uuid,text,jsonb,uuid,text,uuid,uuid)
CREATE OR REPLACE FUNCTION public.append_event(p_entity_id uuid, p_type text, p_payload jsonb DEFAULT '{}'::jsonb, p_correlation_id uuid DEFAULT NULL::uuid, p_trace_id text DEFAULT NULL::text, p_causation_id uuid DEFAULT NULL::uuid, p_event_id uuid DEFAULT NULL::uuid)
 RETURNS uuid
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_seqscan TO 'off'
AS $function$
DECLARE
    v_id    uuid := coalesce(p_event_id, gen_random_uuid());
    v_event jsonb;
BEGIN
    v_event := jsonb_build_object(
        'id', v_id,
        'type', p_type,
        'at', clock_timestamp(),
        'correlation_id', p_correlation_id,
        'trace_id', coalesce(p_trace_id, new_trace_id()),
        'causation_id', p_causation_id,
        'payload', coalesce(p_payload, '{}'::jsonb));
    -- Checked here too, not only by the core trigger, so a malformed event is refused even while an operator
    -- (or a fault) has that trigger disabled.
    IF event_arguments_suspect(p_type, p_payload, p_trace_id) THEN
        PERFORM validate_event(v_event);
    END IF;
    -- Only an id the caller chose can already be there (a retried append): a fresh one skips reading the list.
    UPDATE document_entities e
       SET events = e.events || jsonb_build_array(v_event), updated_at = clock_timestamp()
     WHERE e.id = p_entity_id
       AND (p_event_id IS NULL OR NOT e.events @> jsonb_build_array(jsonb_build_object('id', v_id)));
    IF FOUND THEN
        RETURN v_id;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM document_entities e WHERE e.id = p_entity_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'PJ004',
            MESSAGE = format('unknown entity %s: no document_entities row with that id', p_entity_id),
            HINT = 'create the entity first (request_protection creates it), or check the id';
    END IF;
    RETURN NULL;
END
$function$;
GRANT EXECUTE ON FUNCTION append_event(uuid,text,jsonb,uuid,text,uuid,uuid) TO pipeline_writer;

-- function append_events(uuid[],text[],jsonb[],uuid[],text[],uuid[],uuid[])
CREATE OR REPLACE FUNCTION public.append_events(p_entity_ids uuid[], p_types text[], p_payloads jsonb[], p_correlation_ids uuid[] DEFAULT NULL::uuid[], p_trace_ids text[] DEFAULT NULL::text[], p_causation_ids uuid[] DEFAULT NULL::uuid[], p_event_ids uuid[] DEFAULT NULL::uuid[])
 RETURNS TABLE(entity_id uuid, event_id uuid)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_seqscan TO 'off'
AS $function$
#variable_conflict use_column
DECLARE
    v_missing uuid;
BEGIN
    SELECT x.id INTO v_missing
      FROM unnest(p_entity_ids) x (id)
     WHERE NOT EXISTS (SELECT 1 FROM document_entities e WHERE e.id = x.id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'PJ004',
            MESSAGE = format('unknown entity %s: no document_entities row with that id', v_missing),
            HINT = 'create the entity first (request_protection creates it), or check the id';
    END IF;
    RETURN QUERY
    WITH built AS (
        SELECT u.ord, u.entity_id, event_arguments_suspect(u.type, u.payload, u.trace_id) AS suspect,
               jsonb_build_object(
                   'id', coalesce(u.event_id, gen_random_uuid()), 'type', u.type, 'at', clock_timestamp(),
                   'correlation_id', u.correlation_id, 'trace_id', coalesce(u.trace_id, new_trace_id()),
                   'causation_id', u.causation_id, 'payload', coalesce(u.payload, '{}'::jsonb)) AS event
          FROM unnest(p_entity_ids, p_types, p_payloads, p_correlation_ids, p_trace_ids, p_causation_ids,
                      p_event_ids)
               WITH ORDINALITY AS u (entity_id, type, payload, correlation_id, trace_id, causation_id, event_id,
                                     ord)
    ), checked AS (
        SELECT b.ord, b.entity_id, b.event, CASE WHEN b.suspect THEN validate_event(b.event) END AS valid
          FROM built b
    ), appended AS (
        UPDATE document_entities e
           SET events = e.events || n.events, updated_at = clock_timestamp()
          FROM (SELECT c.entity_id, jsonb_agg(c.event ORDER BY c.ord) AS events
                  FROM checked c GROUP BY c.entity_id) n
         WHERE e.id = n.entity_id
    )
    SELECT c.entity_id, (c.event ->> 'id')::uuid FROM checked c ORDER BY c.ord;
END
$function$;

-- function apply_alert_profile(text)
CREATE OR REPLACE FUNCTION public.apply_alert_profile(p_profile text)
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v_count int;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM alert_profiles p WHERE p.profile = p_profile) THEN
        RAISE EXCEPTION USING ERRCODE = 'PJ020',
            MESSAGE = format('unknown alert profile %L (profiles: %s)', p_profile,
                             (SELECT string_agg(DISTINCT p.profile, ', ') FROM alert_profiles p));
    END IF;
    INSERT INTO pipeline_settings AS s (key, value, description)
    SELECT p.key, p.value, format('alert profile %s', p_profile) FROM alert_profiles p WHERE p.profile = p_profile
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = clock_timestamp();
    GET DIAGNOSTICS v_count = ROW_COUNT;
    INSERT INTO pipeline_settings AS s (key, value, description)
    VALUES ('alert_profile', p_profile, 'the alert profile last applied (apply_alert_profile)')
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = clock_timestamp();
    PERFORM pg_notify('pipeline_settings', p_profile);
    RETURN v_count;
END
$function$;
REVOKE EXECUTE ON FUNCTION apply_alert_profile(text) FROM PUBLIC;

-- function arm_failpoint(text,text)
CREATE OR REPLACE FUNCTION public.arm_failpoint(p_name text, p_action text)
 RETURNS void
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    INSERT INTO failpoints AS f (name, action) VALUES (p_name, p_action)
    ON CONFLICT (name) DO UPDATE SET action = EXCLUDED.action, hits = 0, armed_at = clock_timestamp();
    SELECT pg_notify('pipeline_failpoints', p_name);
$function$;

-- function claim_initial_decision_jobs(text,integer,double precision,timestamp with time zone)
CREATE OR REPLACE FUNCTION public.claim_initial_decision_jobs(p_worker text, p_limit integer DEFAULT 1, p_lease_seconds double precision DEFAULT NULL::double precision, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS TABLE(job_id bigint, run_id bigint, job_type text, kind text, entity_id uuid, payload jsonb, attempt integer, max_attempts integer, source_event_id uuid, correlation_id uuid, trace_id text, lease_expires_at timestamp with time zone)
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$ SELECT * FROM claim_jobs_of_kind('decision', p_worker, p_limit, p_lease_seconds, p_now) $function$;
REVOKE EXECUTE ON FUNCTION claim_initial_decision_jobs(text,integer,double precision,timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION claim_initial_decision_jobs(text,integer,double precision,timestamp with time zone) TO pipeline_decider;

-- function claim_jobs_of_kind(text,text,integer,double precision,timestamp with time zone)
CREATE OR REPLACE FUNCTION public.claim_jobs_of_kind(p_kind text, p_worker text, p_limit integer DEFAULT 1, p_lease_seconds double precision DEFAULT NULL::double precision, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS TABLE(job_id bigint, run_id bigint, job_type text, kind text, entity_id uuid, payload jsonb, attempt integer, max_attempts integer, source_event_id uuid, correlation_id uuid, trace_id text, lease_expires_at timestamp with time zone)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_seqscan TO 'off'
AS $function$
#variable_conflict use_column
DECLARE
    v_now      timestamptz := coalesce(p_now, clock_timestamp());
    v_lease    interval := make_interval(secs => coalesce(p_lease_seconds,
                                                          pipeline_setting('lease_seconds', '30')::double precision));
    v_earliest timestamptz;
BEGIN
    SELECT q.due_at INTO v_earliest
      FROM executor_job_queue q
     WHERE q.state = 'leased' AND q.kind = p_kind
     ORDER BY q.due_at
     LIMIT 1;
    IF v_earliest < v_now THEN
        PERFORM reap_expired_leases(p_kind, v_now);
    END IF;
    RETURN QUERY
    WITH picked AS (
        SELECT q.job_id FROM executor_job_queue q JOIN executor_jobs j ON j.id = q.job_id
         WHERE q.kind = p_kind AND q.state = 'ready' AND q.due_at <= v_now
           AND j.status IN ('queued', 'retrying')
         ORDER BY q.due_at, q.job_id
         LIMIT p_limit
         FOR UPDATE OF q, j SKIP LOCKED
    ), claimed AS (
        UPDATE executor_jobs j
           SET status = 'running', attempts = j.attempts + 1, lease_owner = p_worker,
               lease_expires_at = v_now + v_lease, updated_at = v_now
          FROM picked
         WHERE j.id = picked.job_id
     RETURNING j.*
    ), runs AS (
        INSERT INTO executor_job_runs (job_id, attempt, worker, started_at, correlation_id, trace_id)
        SELECT c.id, c.attempts, p_worker, v_now, c.correlation_id, c.trace_id FROM claimed c
        RETURNING executor_job_runs.id AS run_id, executor_job_runs.job_id AS run_job_id
    )
    SELECT c.id, r.run_id, c.job_type, c.kind, c.entity_id, c.payload, c.attempts, c.max_attempts,
           c.source_event_id, c.correlation_id, c.trace_id, c.lease_expires_at
      FROM claimed c JOIN runs r ON r.run_job_id = c.id
     ORDER BY c.run_at, c.id;
END
$function$;
REVOKE EXECUTE ON FUNCTION claim_jobs_of_kind(text,text,integer,double precision,timestamp with time zone) FROM PUBLIC;

-- function claim_orchestrator_jobs(text,integer,double precision,timestamp with time zone)
CREATE OR REPLACE FUNCTION public.claim_orchestrator_jobs(p_worker text, p_limit integer DEFAULT 1, p_lease_seconds double precision DEFAULT NULL::double precision, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS TABLE(job_id bigint, run_id bigint, job_type text, kind text, entity_id uuid, payload jsonb, attempt integer, max_attempts integer, source_event_id uuid, correlation_id uuid, trace_id text, lease_expires_at timestamp with time zone)
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$ SELECT * FROM claim_jobs_of_kind('execution', p_worker, p_limit, p_lease_seconds, p_now) $function$;
REVOKE EXECUTE ON FUNCTION claim_orchestrator_jobs(text,integer,double precision,timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION claim_orchestrator_jobs(text,integer,double precision,timestamp with time zone) TO pipeline_executor;

-- function complete_job(bigint,bigint,jsonb,uuid,timestamp with time zone)
CREATE OR REPLACE FUNCTION public.complete_job(p_job_id bigint, p_run_id bigint, p_result jsonb DEFAULT '{}'::jsonb, p_result_event_id uuid DEFAULT NULL::uuid, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS uuid
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    SELECT c.result_event_id
      FROM complete_jobs(ARRAY[p_job_id], ARRAY[p_run_id], ARRAY[p_result], ARRAY[p_result_event_id], p_now) c
$function$;

-- function complete_jobs(bigint[],bigint[],jsonb[],uuid[],timestamp with time zone)
CREATE OR REPLACE FUNCTION public.complete_jobs(p_job_ids bigint[], p_run_ids bigint[], p_results jsonb[] DEFAULT NULL::jsonb[], p_result_event_ids uuid[] DEFAULT NULL::uuid[], p_now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS TABLE(job_id bigint, run_id bigint, result_event_id uuid)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_seqscan TO 'off'
AS $function$
#variable_conflict use_column
DECLARE
    v_now timestamptz := coalesce(p_now, clock_timestamp());
BEGIN
    IF cardinality(p_job_ids) IS DISTINCT FROM cardinality(p_run_ids) THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('complete_jobs got %s job ids and %s run ids; they must pair up',
                             coalesce(cardinality(p_job_ids), 0), coalesce(cardinality(p_run_ids), 0)),
            HINT = 'pass the job_id and run_id of each claimed row, in the same order';
    END IF;
    -- Entities first, in id order, so two workers completing jobs of the same entities never deadlock.
    PERFORM 1 FROM document_entities e
     WHERE e.id IN (SELECT j.entity_id FROM executor_jobs j WHERE j.id = ANY (p_job_ids) AND j.kind = 'execution')
     ORDER BY e.id
       FOR UPDATE OF e;
    RETURN QUERY
    WITH input AS (
        SELECT u.job_id, u.run_id, coalesce(u.result, '{}'::jsonb) AS result, u.event_id
          FROM unnest(p_job_ids, p_run_ids, p_results, p_result_event_ids) AS u (job_id, run_id, result, event_id)
    ), held AS (
        -- Each run by primary key, in a subquery the planner keeps whole (see lock_job_for_run).
        SELECT i.job_id, i.run_id, i.result, i.event_id, r.attempt
          FROM input i
         CROSS JOIN LATERAL (SELECT x.job_id, x.attempt, x.finished_at FROM executor_job_runs x
                              WHERE x.id = i.run_id OFFSET 0) r
         WHERE r.job_id = i.job_id AND r.finished_at IS NULL
    ), done AS (
        UPDATE executor_jobs j
           SET status = 'succeeded', finished_at = v_now, lease_owner = NULL, lease_expires_at = NULL,
               last_error = NULL, updated_at = v_now
          FROM held i
         WHERE j.id = i.job_id AND j.status = 'running' AND j.attempts = i.attempt
     RETURNING j.id, j.kind, j.job_type, j.entity_id, j.correlation_id, j.trace_id, j.source_event_id,
               i.run_id, i.result,
               CASE WHEN j.kind = 'execution' THEN result_event_id_for(j.id, 'completed') ELSE i.event_id END
                   AS event_id
    ), runs AS (
        UPDATE executor_job_runs r
           SET finished_at = v_now, outcome = 'succeeded', result_event_id = d.event_id
          FROM done d
         WHERE r.id = d.run_id
    ), appended AS (
        UPDATE document_entities e
           SET events = e.events || n.events, updated_at = v_now
          FROM (SELECT d.entity_id,
                       jsonb_agg(jsonb_build_object(
                           'id', d.event_id, 'type', 'job.' || d.job_type || '.completed', 'at', v_now,
                           'correlation_id', d.correlation_id, 'trace_id', coalesce(d.trace_id, new_trace_id()),
                           'causation_id', d.source_event_id,
                           'payload', d.result || jsonb_build_object('job_id', d.id)) ORDER BY d.id) AS events
                  FROM done d
                 WHERE d.kind = 'execution'
                 GROUP BY d.entity_id) n
         WHERE e.id = n.entity_id
    )
    SELECT d.id, d.run_id, coalesce(d.event_id, '00000000-0000-0000-0000-000000000000'::uuid) FROM done d;
END
$function$;
REVOKE EXECUTE ON FUNCTION complete_jobs(bigint[],bigint[],jsonb[],uuid[],timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION complete_jobs(bigint[],bigint[],jsonb[],uuid[],timestamp with time zone) TO pipeline_decider, pipeline_executor;

-- function core_trigger_enabled()
CREATE OR REPLACE FUNCTION public.core_trigger_enabled()
 RETURNS integer
 LANGUAGE sql
 STABLE
AS $function$
    SELECT coalesce((SELECT CASE WHEN t.tgenabled IN ('O', 'A') THEN 1 ELSE 0 END
                       FROM pg_trigger t
                      WHERE t.tgrelid = to_regclass('public.document_entities')
                        AND t.tgname = 'on_document_entity_events_change' AND NOT t.tgisinternal), 0)
$function$;

-- function disarm_failpoint(text)
CREATE OR REPLACE FUNCTION public.disarm_failpoint(p_name text)
 RETURNS void
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    DELETE FROM failpoints WHERE name = p_name;
    SELECT pg_notify('pipeline_failpoints', p_name);
$function$;

-- function evaluate_alerts(timestamp with time zone)
CREATE OR REPLACE FUNCTION public.evaluate_alerts(p_now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS TABLE(rule text, labels jsonb, metric text, state text, value double precision, threshold double precision, for_s double precision, changed boolean)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
#variable_conflict use_column
DECLARE
    v_now    timestamptz := coalesce(p_now, clock_timestamp());
    s        record;
    v_holds  boolean;
    v_from   text;
    v_to     text;
    v_since  timestamptz;
    v_fired  timestamptz;
    v_res    timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('pipeline.evaluate_alerts'));
    FOR s IN
        WITH vals AS MATERIALIZED (SELECT * FROM alert_rule_values(v_now)),
        series AS (
            SELECT v.rule, v.labels FROM vals v
            UNION
            SELECT st.rule, st.labels FROM alert_state st
        )
        SELECT r.name, r.metric, r.op, r.threshold, r.for_s, k.labels, v.value,
               st.state AS cur, st.active_since, st.fired_at, st.resolved_at
          FROM alert_rules_current r
          JOIN series k ON k.rule = r.name
          LEFT JOIN vals v ON v.rule = r.name AND v.labels = k.labels
          LEFT JOIN alert_state st ON st.rule = r.name AND st.labels = k.labels
         ORDER BY r.name, k.labels
    LOOP
        v_holds := s.value IS NOT NULL
                   AND CASE s.op WHEN '>' THEN s.value > s.threshold ELSE s.value < s.threshold END;
        v_from := coalesce(s.cur, 'inactive');
        v_since := s.active_since;
        v_fired := s.fired_at;
        v_res := s.resolved_at;
        IF v_holds AND v_from = 'inactive' THEN
            v_since := v_now;
            v_to := CASE WHEN s.for_s <= 0 THEN 'firing' ELSE 'pending' END;
        ELSIF v_holds AND v_from = 'pending' AND v_now - v_since >= make_interval(secs => s.for_s) THEN
            v_to := 'firing';
        ELSIF v_holds THEN
            v_to := v_from;
        ELSIF v_from = 'firing' THEN
            v_to := 'resolved';
        ELSE
            v_to := 'inactive';
        END IF;
        IF v_to = 'firing' AND v_from <> 'firing' THEN
            v_fired := v_now;
            v_res := NULL;
        ELSIF v_to = 'resolved' THEN
            v_res := v_now;
        END IF;
        IF v_to <> v_from THEN
            INSERT INTO alert_history (at, rule, labels, from_state, to_state, value, threshold, for_s, active_since)
            VALUES (v_now, s.name, s.labels, v_from, v_to, s.value, s.threshold, s.for_s, v_since);
        END IF;
        IF v_to IN ('resolved', 'inactive') THEN
            v_since := NULL;
        END IF;
        IF s.value IS NULL AND v_to IN ('resolved', 'inactive') THEN
            DELETE FROM alert_state st WHERE st.rule = s.name AND st.labels = s.labels;
        ELSE
            INSERT INTO alert_state AS st (rule, labels, state, value, threshold, for_s, active_since, fired_at,
                                           resolved_at, evaluated_at)
            VALUES (s.name, s.labels, CASE WHEN v_to = 'resolved' THEN 'inactive' ELSE v_to END, s.value,
                    s.threshold, s.for_s, v_since, v_fired, v_res, v_now)
            ON CONFLICT ON CONSTRAINT alert_state_pkey DO UPDATE
               SET state = EXCLUDED.state, value = EXCLUDED.value, threshold = EXCLUDED.threshold,
                   for_s = EXCLUDED.for_s, active_since = EXCLUDED.active_since, fired_at = EXCLUDED.fired_at,
                   resolved_at = EXCLUDED.resolved_at, evaluated_at = EXCLUDED.evaluated_at;
        END IF;
        rule := s.name;
        labels := s.labels;
        metric := s.metric;
        state := CASE WHEN v_to = 'resolved' THEN 'inactive' ELSE v_to END;
        value := s.value;
        threshold := s.threshold;
        for_s := s.for_s;
        changed := v_to <> v_from;
        IF s.value IS NOT NULL THEN
            RETURN NEXT;
        END IF;
    END LOOP;
END
$function$;
REVOKE EXECUTE ON FUNCTION evaluate_alerts(timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evaluate_alerts(timestamp with time zone) TO pipeline_monitor;

-- function event_arguments_suspect(text,jsonb,text)
CREATE OR REPLACE FUNCTION public.event_arguments_suspect(p_type text, p_payload jsonb, p_trace_id text)
 RETURNS boolean
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
    SELECT coalesce(p_type !~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$', true)
        OR coalesce(jsonb_typeof(p_payload) <> 'object', false)
        OR coalesce(NOT is_trace_id(p_trace_id), false)
$function$;

-- function event_problem(jsonb)
CREATE OR REPLACE FUNCTION public.event_problem(p_event jsonb)
 RETURNS text
 LANGUAGE sql
 STABLE
AS $function$
    SELECT CASE
        WHEN jsonb_typeof(p_event) IS DISTINCT FROM 'object' THEN 'is not a JSON object'
        WHEN jsonb_typeof(p_event -> 'type') IS DISTINCT FROM 'string' OR (p_event ->> 'type') = ''
            THEN 'has no "type" (a non-empty string such as "document.protect.requested")'
        WHEN (p_event ->> 'type') !~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'
            THEN format('has type %L, which is not dotted lower-case words', p_event ->> 'type')
        WHEN jsonb_typeof(p_event -> 'id') IS DISTINCT FROM 'string' OR NOT is_lower_uuid(p_event ->> 'id')
            THEN 'has no "id" (a lower-case uuid)'
        WHEN p_event ? 'payload' AND jsonb_typeof(p_event -> 'payload') IS DISTINCT FROM 'object'
            THEN format('has a %s "payload"; the payload must be a JSON object', jsonb_typeof(p_event -> 'payload'))
        WHEN p_event ? 'trace_id' AND jsonb_typeof(p_event -> 'trace_id') <> 'null'
             AND NOT is_trace_id(p_event ->> 'trace_id')
            THEN 'has a "trace_id" that is not 32 lower-case hex digits (W3C trace-context)'
    END
$function$;

-- function event_to_job_gap_breaches(double precision,timestamp with time zone)
CREATE OR REPLACE FUNCTION public.event_to_job_gap_breaches(p_window_s double precision DEFAULT NULL::double precision, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS TABLE(entity_id uuid, event_id uuid, job_type text, event_at timestamp with time zone, age_s double precision, delta_s double precision)
 LANGUAGE sql
 STABLE
AS $function$
    SELECT g.entity_id, g.event_id, g.job_type, g.event_at, g.age_s, g.delta_s
      FROM event_to_job_gaps(p_window_s, p_now) g WHERE g.status = 'breached' ORDER BY g.event_at
$function$;

-- function event_to_job_gap_series(double precision,double precision,timestamp with time zone)
CREATE OR REPLACE FUNCTION public.event_to_job_gap_series(p_window_s double precision DEFAULT NULL::double precision, p_bucket_s double precision DEFAULT NULL::double precision, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS TABLE(bucket_start timestamp with time zone, events bigint, p50_s double precision, p95_s double precision, max_s double precision, breached bigint, delta_s double precision)
 LANGUAGE sql
 STABLE
AS $function$
    WITH params AS (
        SELECT coalesce(p_now, clock_timestamp()) AS now,
               coalesce(p_window_s, pipeline_setting('gap_window_s', '900')::double precision) AS win_s
    ), sized AS (
        SELECT p.now, p.win_s, greatest(coalesce(p_bucket_s, p.win_s / 30), 0.001) AS bucket_s FROM params p
    ), buckets AS (
        SELECT to_timestamp(floor(extract(epoch FROM s.now - make_interval(secs => s.win_s)) / s.bucket_s)
                            * s.bucket_s + k * s.bucket_s) AS start, s.bucket_s
          FROM sized s, generate_series(0, ceil(s.win_s / s.bucket_s)::int) k
    ), gaps AS (
        SELECT g.*, s.bucket_s FROM event_to_job_gaps(p_window_s, p_now) g CROSS JOIN sized s
    )
    SELECT b.start, count(g.event_id), percentile_cont(0.5) WITHIN GROUP (ORDER BY g.gap_s),
           percentile_cont(0.95) WITHIN GROUP (ORDER BY g.gap_s), max(g.gap_s),
           count(*) FILTER (WHERE g.status = 'breached'),
           pipeline_setting('gap_delta_s_default', '60')::double precision
      FROM buckets b
      LEFT JOIN gaps g ON g.event_at >= b.start AND g.event_at < b.start + make_interval(secs => b.bucket_s)
     WHERE b.start <= (SELECT now FROM sized)
     GROUP BY b.start ORDER BY b.start
$function$;

-- function event_to_job_gap_stats(double precision,timestamp with time zone)
CREATE OR REPLACE FUNCTION public.event_to_job_gap_stats(p_window_s double precision DEFAULT NULL::double precision, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS TABLE(events bigint, materialized bigint, late bigint, pending bigint, breached bigint, p50_s double precision, p95_s double precision, p99_s double precision, max_s double precision)
 LANGUAGE sql
 STABLE
AS $function$
    SELECT count(*), count(*) FILTER (WHERE g.status = 'materialized'), count(*) FILTER (WHERE g.status = 'late'),
           count(*) FILTER (WHERE g.status = 'pending'), count(*) FILTER (WHERE g.status = 'breached'),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY g.gap_s),
           percentile_cont(0.95) WITHIN GROUP (ORDER BY g.gap_s),
           percentile_cont(0.99) WITHIN GROUP (ORDER BY g.gap_s),
           max(g.gap_s)
      FROM event_to_job_gaps(p_window_s, p_now) g
$function$;

-- function event_to_job_gaps(double precision,timestamp with time zone)
CREATE OR REPLACE FUNCTION public.event_to_job_gaps(p_window_s double precision DEFAULT NULL::double precision, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS TABLE(entity_id uuid, event_id uuid, job_type text, event_at timestamp with time zone, job_id bigint, job_created_at timestamp with time zone, gap_s double precision, age_s double precision, delta_s double precision, status text)
 LANGUAGE sql
 STABLE
AS $function$
    WITH params AS (
        SELECT coalesce(p_now, clock_timestamp()) AS now,
               make_interval(secs => coalesce(p_window_s, pipeline_setting('gap_window_s', '900')::double precision))
                   AS win
    ), required AS (
        SELECT DISTINCT ON (e.id, x ->> 'id')
               e.id AS entity_id, (x ->> 'id')::uuid AS event_id,
               substring(x ->> 'type' FROM '^job\.([a-z][a-z0-9_]*)\.required$') AS job_type,
               (x ->> 'at')::timestamptz AS event_at
          FROM params p, document_entities e
         CROSS JOIN LATERAL jsonb_array_elements(e.events) WITH ORDINALITY AS a (x, pos)
         WHERE e.updated_at > p.now - p.win
           AND x ->> 'type' ~ '^job\.[a-z][a-z0-9_]*\.required$'
           AND (x ->> 'at')::timestamptz > p.now - p.win
           AND (x ->> 'at')::timestamptz <= p.now
         ORDER BY e.id, x ->> 'id', a.pos
    )
    SELECT r.entity_id, r.event_id, r.job_type, r.event_at, j.id, j.created_at,
           extract(epoch FROM j.created_at - r.event_at)::double precision,
           extract(epoch FROM p.now - r.event_at)::double precision,
           d.delta_s,
           CASE WHEN j.id IS NOT NULL THEN
                    CASE WHEN extract(epoch FROM j.created_at - r.event_at) > d.delta_s THEN 'late'
                         ELSE 'materialized' END
                WHEN extract(epoch FROM p.now - r.event_at) > d.delta_s THEN 'breached'
                ELSE 'pending' END
      FROM required r
     CROSS JOIN params p
     CROSS JOIN LATERAL (SELECT gap_delta_s(r.job_type) AS delta_s) d
      LEFT JOIN executor_jobs j
             ON j.dedupe_key = r.entity_id::text || ':' || r.job_type || ':' || r.event_id::text
            AND j.created_at <= p.now
$function$;

-- function executor_job_queue_sync()
CREATE OR REPLACE FUNCTION public.executor_job_queue_sync()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_seqscan TO 'off'
AS $function$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        TRUNCATE executor_job_queue;
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        DELETE FROM executor_job_queue q USING old_jobs o WHERE q.job_id = o.id;
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM executor_job_queue q USING new_jobs n WHERE q.job_id = n.id AND n.status = 'succeeded';
    END IF;
    INSERT INTO executor_job_queue AS q (job_id, kind, state, due_at)
    SELECT n.id, n.kind, job_queue_state_for(n.status),
           job_queue_due_at_for(n.status, n.run_at, n.lease_expires_at, n.finished_at, n.updated_at)
      FROM new_jobs n
     WHERE n.status <> 'succeeded'
    ON CONFLICT (job_id) DO UPDATE SET state = EXCLUDED.state, due_at = EXCLUDED.due_at
     WHERE (q.state, q.due_at) IS DISTINCT FROM (EXCLUDED.state, EXCLUDED.due_at);
    RETURN NULL;
END
$function$;
REVOKE EXECUTE ON FUNCTION executor_job_queue_sync() FROM PUBLIC;

-- function executor_job_values_ok(text,text,text)
CREATE OR REPLACE FUNCTION public.executor_job_values_ok(p_kind text, p_status text, p_trace_id text)
 RETURNS boolean
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
AS $function$
BEGIN
    -- One expression on the path every row takes; the error branches only for a row that breaks a rule.
    IF p_kind IN ('decision', 'execution') AND p_status IN ('queued', 'running', 'succeeded', 'retrying', 'dead')
       AND (p_trace_id IS NULL OR is_trace_id(p_trace_id)) THEN
        RETURN true;
    END IF;
    IF p_kind NOT IN ('decision', 'execution') THEN
        RAISE EXCEPTION USING ERRCODE = 'check_violation', TABLE = 'executor_jobs', COLUMN = 'kind',
            CONSTRAINT = 'executor_jobs_values_check',
            MESSAGE = format('executor_jobs.kind must be decision or execution, got %L', p_kind);
    END IF;
    IF p_status NOT IN ('queued', 'running', 'succeeded', 'retrying', 'dead') THEN
        RAISE EXCEPTION USING ERRCODE = 'check_violation', TABLE = 'executor_jobs', COLUMN = 'status',
            CONSTRAINT = 'executor_jobs_values_check',
            MESSAGE = format('executor_jobs.status must be queued, running, succeeded, retrying or dead, got %L',
                             p_status);
    END IF;
    IF NOT is_trace_id(p_trace_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'check_violation', TABLE = 'executor_jobs', COLUMN = 'trace_id',
            CONSTRAINT = 'executor_jobs_values_check',
            MESSAGE = format('executor_jobs.trace_id must be 32 lower-case hex digits (W3C trace-context), got %L',
                             p_trace_id);
    END IF;
    RETURN true;  -- a NULL kind or status: NOT NULL says so
END
$function$;

-- function executor_jobs_gateway_guard()
CREATE OR REPLACE FUNCTION public.executor_jobs_gateway_guard()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_seqscan TO 'off'
AS $function$
DECLARE
    v_mode     text;
    v_source   text := coalesce(NEW.materialized_via, 'direct_insert');
    v_event_id uuid;
BEGIN
    IF current_setting('pipeline.via_gateway', true) = 'on' THEN
        RETURN NEW;  -- the gateway's own insert: the hot path, so nothing else is read before this
    END IF;
    v_mode := pipeline_setting('gateway_mode', 'compat');
    IF v_mode = 'strict' THEN
        RAISE EXCEPTION USING ERRCODE = 'PJ003',
            MESSAGE = format('direct insert into executor_jobs rejected (gateway_mode=strict): job_type=%s, '
                             'entity=%s, source=%s', coalesce(NEW.job_type, 'null'),
                             coalesce(NEW.entity_id::text, 'null'), v_source),
            HINT = 'materialize jobs by appending a job.<type>.required event (append_event), never by INSERT';
    END IF;
    IF NEW.entity_id IS NULL OR NOT EXISTS (SELECT 1 FROM document_entities e WHERE e.id = NEW.entity_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'PJ004',
            MESSAGE = format('direct insert into executor_jobs cannot be redirected (gateway_mode=compat): '
                             'entity %s does not exist', coalesce(NEW.entity_id::text, 'null')),
            HINT = 'append a job.<type>.required event to an existing entity instead';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM job_types t WHERE t.name = NEW.job_type) THEN
        PERFORM materialize_job(NEW.job_type, NEW.entity_id, gen_random_uuid());  -- raises PJ001, clearly
    END IF;
    v_event_id := append_event(
        NEW.entity_id, 'job.' || NEW.job_type || '.required',
        coalesce(NEW.payload, '{}'::jsonb)
            || jsonb_build_object('_compat', jsonb_build_object('source', v_source, 'dedupe_key', NEW.dedupe_key)),
        NEW.correlation_id, NEW.trace_id, NEW.source_event_id);
    INSERT INTO compat_warnings (source, job_type, entity_id, dedupe_key, job_id, detail)
    SELECT v_source, NEW.job_type, NEW.entity_id, j.dedupe_key, j.id,
           jsonb_build_object('redirected_event_id', v_event_id, 'original_dedupe_key', NEW.dedupe_key,
                              'application_name', current_setting('application_name', true),
                              'user', session_user)
      FROM executor_jobs j WHERE j.source_event_id = v_event_id;
    RAISE WARNING 'direct insert into executor_jobs redirected through the gateway (gateway_mode=compat): '
                  'job_type=%, entity=%, source=%', NEW.job_type, NEW.entity_id, v_source;
    RETURN NULL;
END
$function$;
REVOKE EXECUTE ON FUNCTION executor_jobs_gateway_guard() FROM PUBLIC;

-- function fail_job(bigint,bigint,text,boolean,timestamp with time zone)
CREATE OR REPLACE FUNCTION public.fail_job(p_job_id bigint, p_run_id bigint, p_error text, p_retryable boolean DEFAULT true, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS text
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_seqscan TO 'off'
AS $function$
DECLARE
    v_now   timestamptz := coalesce(p_now, clock_timestamp());
    v_job   executor_jobs%ROWTYPE;
    v_delay double precision;
BEGIN
    v_job := lock_job_for_run(p_job_id, p_run_id);
    IF v_job.id IS NULL THEN
        RETURN NULL;
    END IF;
    UPDATE executor_job_runs r SET finished_at = v_now, outcome = 'failed', error = p_error WHERE r.id = p_run_id;
    IF p_retryable AND v_job.attempts < v_job.max_attempts THEN
        v_delay := least(pipeline_setting('retry_cap_ms', '60000')::double precision,
                         pipeline_setting('retry_base_ms', '500')::double precision * 2 ^ (v_job.attempts - 1));
        v_delay := v_delay / 2 + random() * v_delay / 2;
        UPDATE executor_jobs j
           SET status = 'retrying', run_at = v_now + make_interval(secs => v_delay / 1000.0),
               lease_owner = NULL, lease_expires_at = NULL, last_error = p_error, updated_at = v_now
         WHERE j.id = p_job_id;
        RETURN 'retrying';
    END IF;
    PERFORM mark_job_dead(v_job, p_error, v_now);
    RETURN 'dead';
END
$function$;

-- function failpoint_hit(text,text)
CREATE OR REPLACE FUNCTION public.failpoint_hit(p_name text, p_action text DEFAULT NULL::text)
 RETURNS bigint
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    INSERT INTO failpoints AS f (name, action, hits, last_hit_at)
    VALUES (p_name, coalesce(p_action, 'unknown'), 1, clock_timestamp())
    ON CONFLICT (name) DO UPDATE SET hits = f.hits + 1, last_hit_at = clock_timestamp()
    RETURNING hits
$function$;

-- function gap_delta_s(text)
CREATE OR REPLACE FUNCTION public.gap_delta_s(p_job_type text)
 RETURNS double precision
 LANGUAGE sql
 STABLE
AS $function$
    SELECT coalesce(pipeline_setting('gap_delta_s.' || p_job_type),
                    pipeline_setting('gap_delta_s_default', '60'))::double precision
$function$;

-- function is_lower_uuid(text)
CREATE OR REPLACE FUNCTION public.is_lower_uuid(p_text text)
 RETURNS boolean
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
    SELECT p_text LIKE '________-____-____-____-____________' AND length(replace(p_text, '-', '')) = 32
       AND p_text ~ '^[-0-9a-f]+$'
$function$;

-- function is_trace_id(text)
CREATE OR REPLACE FUNCTION public.is_trace_id(p_text text)
 RETURNS boolean
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$ SELECT length(p_text) = 32 AND p_text ~ '^[0-9a-f]+$' $function$;

-- function job_queue_due_at_for(text,timestamp with time zone,timestamp with time zone,timestamp with time zone,timestamp with time zone)
CREATE OR REPLACE FUNCTION public.job_queue_due_at_for(p_status text, p_run_at timestamp with time zone, p_lease_expires_at timestamp with time zone, p_finished_at timestamp with time zone, p_updated_at timestamp with time zone)
 RETURNS timestamp with time zone
 LANGUAGE sql
 IMMUTABLE
AS $function$
    SELECT CASE p_status WHEN 'running' THEN coalesce(p_lease_expires_at, p_run_at)
                         WHEN 'dead' THEN coalesce(p_finished_at, p_updated_at)
                         ELSE p_run_at END
$function$;

-- function job_queue_state_for(text)
CREATE OR REPLACE FUNCTION public.job_queue_state_for(p_status text)
 RETURNS job_queue_state
 LANGUAGE sql
 STABLE
AS $function$ SELECT (CASE p_status WHEN 'running' THEN 'leased' WHEN 'dead' THEN 'dead' ELSE 'ready' END)::job_queue_state $function$;

-- function lock_entities_events(uuid[])
CREATE OR REPLACE FUNCTION public.lock_entities_events(p_entity_ids uuid[])
 RETURNS TABLE(entity_id uuid, events jsonb)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_seqscan TO 'off'
AS $function$
BEGIN
    RETURN QUERY
    SELECT e.id, e.events FROM document_entities e
     WHERE e.id = ANY (p_entity_ids)
     ORDER BY e.id
       FOR UPDATE;
END
$function$;

-- function lock_job_for_run(bigint,bigint)
CREATE OR REPLACE FUNCTION public.lock_job_for_run(p_job_id bigint, p_run_id bigint)
 RETURNS executor_jobs
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_seqscan TO 'off'
AS $function$
DECLARE
    v_job executor_jobs%ROWTYPE;
BEGIN
    SELECT j.* INTO v_job
      FROM (SELECT r.job_id, r.attempt, r.finished_at FROM executor_job_runs r WHERE r.id = p_run_id OFFSET 0) r
      JOIN executor_jobs j ON j.id = r.job_id
     WHERE j.id = p_job_id AND r.finished_at IS NULL AND j.status = 'running' AND j.attempts = r.attempt
       FOR UPDATE OF j;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    RETURN v_job;
END
$function$;
REVOKE EXECUTE ON FUNCTION lock_job_for_run(bigint,bigint) FROM PUBLIC;

-- function mark_job_dead(executor_jobs,text,timestamp with time zone)
CREATE OR REPLACE FUNCTION public.mark_job_dead(p_job executor_jobs, p_reason text, p_now timestamp with time zone)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
    UPDATE executor_jobs j
       SET status = 'dead', finished_at = p_now, lease_owner = NULL, lease_expires_at = NULL,
           last_error = p_reason, updated_at = p_now
     WHERE j.id = p_job.id;
    IF p_job.kind = 'execution' THEN
        PERFORM append_event(p_job.entity_id, 'job.' || p_job.job_type || '.failed',
                             jsonb_build_object('job_id', p_job.id, 'reason', p_reason, 'attempts', p_job.attempts),
                             p_job.correlation_id, p_job.trace_id, p_job.source_event_id,
                             result_event_id_for(p_job.id, 'failed'));
    END IF;
END
$function$;
REVOKE EXECUTE ON FUNCTION mark_job_dead(executor_jobs,text,timestamp with time zone) FROM PUBLIC;

-- function materialize_job(text,uuid,uuid,jsonb,uuid,text,text)
CREATE OR REPLACE FUNCTION public.materialize_job(p_job_type text, p_entity_id uuid, p_source_event_id uuid, p_payload jsonb DEFAULT '{}'::jsonb, p_correlation_id uuid DEFAULT NULL::uuid, p_trace_id text DEFAULT NULL::text, p_via text DEFAULT 'direct_call'::text)
 RETURNS materialized_job
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_seqscan TO 'off'
AS $function$
DECLARE
    v_type   job_types%ROWTYPE;
    v_result materialized_job;
    v_unused text;
BEGIN
    SELECT * INTO v_type FROM job_types t WHERE t.name = p_job_type;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'PJ001',
            MESSAGE = format('unknown job type %L: not in the job_types whitelist (known: %s)', p_job_type,
                             (SELECT string_agg(t.name, ', ' ORDER BY t.name) FROM job_types t)),
            HINT = 'use a listed type, or add the type to job_types in a core migration';
    END IF;
    IF p_entity_id IS NULL OR p_source_event_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'PJ006',
            MESSAGE = format('materialize_job(%L) needs an entity id and a source event id (got %s, %s)',
                             p_job_type, coalesce(p_entity_id::text, 'null'),
                             coalesce(p_source_event_id::text, 'null')),
            HINT = 'every job is born from a canonical event: append job.<type>.required to the entity instead';
    END IF;
    v_result.dedupe_key := p_entity_id::text || ':' || p_job_type || ':' || p_source_event_id::text;
    -- Assignments, not PERFORM: an expression skips the executor run a PERFORM pays.
    v_unused := set_config('pipeline.via_gateway', 'on', true);
    -- The job and its claim-queue row in one statement (the queue's insert trigger skips the gateway's own
    -- inserts; its state and due time come from the same functions the trigger uses).
    WITH job AS (
        INSERT INTO executor_jobs AS j (job_type, kind, entity_id, dedupe_key, max_attempts, payload,
                                        source_event_id, correlation_id, trace_id, materialized_via)
        VALUES (p_job_type, v_type.kind, p_entity_id, v_result.dedupe_key, v_type.max_attempts,
                coalesce(p_payload, '{}'::jsonb), p_source_event_id, p_correlation_id, p_trace_id, p_via)
        ON CONFLICT ON CONSTRAINT executor_jobs_dedupe_key_key DO NOTHING
        RETURNING j.id, j.kind, j.status, j.run_at, j.lease_expires_at, j.finished_at, j.updated_at
    )
    INSERT INTO executor_job_queue AS q (job_id, kind, state, due_at)
    SELECT job.id, job.kind, job_queue_state_for(job.status),
           job_queue_due_at_for(job.status, job.run_at, job.lease_expires_at, job.finished_at, job.updated_at)
      FROM job
    RETURNING q.job_id INTO v_result.job_id;
    v_unused := set_config('pipeline.via_gateway', 'off', true);
    v_result.created := v_result.job_id IS NOT NULL;
    IF v_result.created THEN
        v_unused := pg_notify('executor_jobs_' || v_type.kind, '');
    ELSE
        SELECT j.id INTO v_result.job_id FROM executor_jobs j WHERE j.dedupe_key = v_result.dedupe_key;
    END IF;
    RETURN v_result;
END
$function$;
REVOKE EXECUTE ON FUNCTION materialize_job(text,uuid,uuid,jsonb,uuid,text,text) FROM PUBLIC;

-- function new_trace_id()
CREATE OR REPLACE FUNCTION public.new_trace_id()
 RETURNS text
 LANGUAGE sql
AS $function$ SELECT replace(gen_random_uuid()::text, '-', '') $function$;

-- function observability_setting_problem(text,text)
CREATE OR REPLACE FUNCTION public.observability_setting_problem(p_key text, p_value text)
 RETURNS text
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
    v_match  text[];
    v_number double precision;
    v_rule   alert_rules%ROWTYPE;
    v_min    double precision := 0;
    v_what   text;
BEGIN
    IF p_key = 'monitor_expected_roles' OR p_key = 'alert_profile' THEN
        RETURN NULL;
    ELSIF p_key IN ('monitor_interval_s', 'heartbeat_stale_s', 'gap_delta_s_default', 'gap_window_s') THEN
        v_what := format('setting %s', p_key);
        v_min := 0.001;
    ELSIF p_key LIKE 'gap\_delta\_s.%' THEN
        IF NOT EXISTS (SELECT 1 FROM job_types t WHERE t.name = substr(p_key, 13)) THEN
            RETURN format('unknown job type %L in %s (known: %s)', substr(p_key, 13), p_key,
                          (SELECT string_agg(t.name, ', ' ORDER BY t.name) FROM job_types t));
        END IF;
        v_what := format('the Delta of job type %s', substr(p_key, 13));
        v_min := 0.001;
    ELSIF p_key LIKE 'alert.%' THEN
        v_match := regexp_match(p_key, '^alert\.([a-z0-9_]+)\.(threshold|for_s|window_s)$');
        IF v_match IS NULL THEN
            RETURN format('%s is not an alert setting; expected alert.<rule>.threshold|for_s|window_s', p_key);
        END IF;
        SELECT * INTO v_rule FROM alert_rules r WHERE r.name = v_match[1];
        IF NOT FOUND THEN
            RETURN format('unknown alert rule %L in %s (rules: %s)', v_match[1], p_key,
                          (SELECT string_agg(r.name, ', ' ORDER BY r.name) FROM alert_rules r));
        END IF;
        IF v_match[2] = 'window_s' AND NOT v_rule.has_window THEN
            RETURN format('alert rule %s has no window; %s means nothing', v_rule.name, p_key);
        END IF;
        v_what := CASE v_match[2]
            WHEN 'threshold' THEN format('the threshold of alert rule %s (it fires when %s %s threshold)',
                                         v_rule.name, v_rule.metric, v_rule.op)
            WHEN 'for_s' THEN format('the for duration (seconds) of alert rule %s', v_rule.name)
            ELSE format('the window (seconds) of alert rule %s', v_rule.name) END;
        v_min := CASE v_match[2] WHEN 'window_s' THEN 0.001 ELSE 0 END;
    ELSE
        RETURN NULL;
    END IF;
    BEGIN
        v_number := p_value::double precision;
    EXCEPTION WHEN invalid_text_representation OR null_value_not_allowed THEN
        RETURN format('%s must be a number, got %L', v_what, p_value);
    END;
    IF v_number IS NULL OR v_number = 'NaN'::double precision OR v_number IN ('Infinity', '-Infinity') THEN
        RETURN format('%s must be a finite number, got %L', v_what, p_value);
    END IF;
    IF v_number < v_min THEN
        RETURN format('%s must be %s, got %L', v_what,
                      CASE WHEN v_min = 0 THEN 'a number >= 0' ELSE 'a number > 0' END, p_value);
    END IF;
    RETURN NULL;
END
$function$;

-- function on_document_entity_events_change()
CREATE OR REPLACE FUNCTION public.on_document_entity_events_change()
 RETURNS trigger
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_seqscan TO 'off'
AS $function$
DECLARE
    -- `x || '[]'` returns x itself, decompressed: the variable then holds the plain value.
    v_new      jsonb := NEW.events || '[]'::jsonb;
    v_old      jsonb := CASE WHEN TG_OP = 'INSERT' THEN '[]'::jsonb ELSE OLD.events || '[]'::jsonb END;
    v_old_len  int := jsonb_array_length(v_old);
    v_new_len  int := jsonb_array_length(v_new);
    v_event    jsonb;
    v_parts    text[];
    v_job_type text;
    v_via      text;
    v_job      materialized_job;
BEGIN
    IF v_new_len < v_old_len
       OR (v_old_len > 0 AND (v_new -> (v_old_len - 1)) IS DISTINCT FROM (v_old -> (v_old_len - 1))) THEN
        RAISE EXCEPTION USING ERRCODE = 'PJ005',
            MESSAGE = format('events of entity %s are append-only: an update removed or edited past events', NEW.id),
            HINT = 'append new events with append_event(); never rewrite document_entities.events';
    END IF;
    FOR i IN v_old_len .. v_new_len - 1 LOOP
        v_event := v_new -> i;
        IF event_problem(v_event) IS NOT NULL THEN
            PERFORM validate_event(v_event, i);  -- raises PJ002 naming the position
        END IF;
        v_job_type := NULL;
        -- The type is validated dotted lower-case words, so splitting on dots reads it exactly.
        v_parts := string_to_array(v_event ->> 'type', '.');
        IF cardinality(v_parts) = 3 AND v_parts[1] = 'job' THEN
            IF v_parts[3] = 'required' THEN
                v_job_type := v_parts[2];
            ELSIF v_parts[3] IN ('completed', 'failed') THEN
                -- Outcomes of execution jobs wake the decision worker; outcomes of decision jobs do not, so a
                -- poison decision job cannot feed itself.
                IF EXISTS (SELECT 1 FROM job_types t WHERE t.name = v_parts[2] AND t.kind = 'execution') THEN
                    v_job_type := 'decide_outcome';
                END IF;
            END IF;
        ELSIF cardinality(v_parts) = 3 AND v_parts[1] = 'document' AND v_parts[3] = 'requested' THEN
            v_job_type := 'decide_request';
        END IF;
        IF v_job_type IS NOT NULL THEN
            v_via := CASE WHEN v_event #> '{payload,_compat}' IS NOT NULL THEN 'compat_redirect' ELSE 'trigger' END;
            v_job := materialize_job(v_job_type, NEW.id, (v_event ->> 'id')::uuid,
                                     coalesce(v_event -> 'payload', '{}'::jsonb),
                                     (v_event ->> 'correlation_id')::uuid, v_event ->> 'trace_id', v_via);
        END IF;
    END LOOP;
    RETURN NULL;
END
$function$;

-- function pipeline_setting(text,text)
CREATE OR REPLACE FUNCTION public.pipeline_setting(p_key text, p_default text DEFAULT NULL::text)
 RETURNS text
 LANGUAGE sql
 STABLE
AS $function$
    SELECT coalesce((SELECT value FROM pipeline_settings WHERE key = p_key), p_default)
$function$;

-- function pipeline_settings_validate()
CREATE OR REPLACE FUNCTION public.pipeline_settings_validate()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_problem text := observability_setting_problem(NEW.key, NEW.value);
BEGIN
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'PJ020',
            MESSAGE = format('invalid setting %s = %L: %s', NEW.key, NEW.value, v_problem),
            HINT = 'see alert_rules and alert_profiles; e.g. SELECT apply_alert_profile(''fast'')';
    END IF;
    RETURN NEW;
END
$function$;

-- function project_user_documents_set()
CREATE OR REPLACE FUNCTION public.project_user_documents_set()
 RETURNS trigger
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_seqscan TO 'off'
AS $function$
BEGIN
    BEGIN
        INSERT INTO user_documents AS u (id, owner_id, status, last_event_type, last_event_at, content_sha256,
                                         tsa_serial, anchor_height)
        SELECT n.id, n.owner_id,
               CASE l.type WHEN 'document.protect.requested' THEN 'protecting' WHEN 'document.anchored' THEN 'anchored'
                           WHEN 'document.failed' THEN 'failed' ELSE 'new' END,
               l.type, (l.event ->> 'at')::timestamptz,
               CASE WHEN l.type = 'job.protect.completed' THEN l.event #>> '{payload,sha256}' END,
               CASE WHEN l.type = 'job.tsa.completed' THEN l.event #>> '{payload,token,serial}' END,
               CASE WHEN l.type = 'job.anchor.completed' THEN (l.event #>> '{payload,receipt,height}')::bigint END
          FROM new_entities n
         CROSS JOIN LATERAL (SELECT n.events -> -1 AS event OFFSET 0) last
         CROSS JOIN LATERAL (SELECT last.event, last.event ->> 'type' AS type) l
         WHERE l.event IS NOT NULL
        ON CONFLICT (id) DO UPDATE
           SET status = CASE WHEN EXCLUDED.status = 'new' THEN u.status ELSE EXCLUDED.status END,
               last_event_type = EXCLUDED.last_event_type, last_event_at = EXCLUDED.last_event_at,
               content_sha256 = coalesce(EXCLUDED.content_sha256, u.content_sha256),
               tsa_serial = coalesce(EXCLUDED.tsa_serial, u.tsa_serial),
               anchor_height = coalesce(EXCLUDED.anchor_height, u.anchor_height),
               updated_at = clock_timestamp();
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'user_documents projection skipped for % entities: % (%)',
            (SELECT count(*) FROM new_entities), SQLERRM, SQLSTATE;
    END;
    RETURN NULL;
END
$function$;

-- function reap_expired_leases(text,timestamp with time zone)
CREATE OR REPLACE FUNCTION public.reap_expired_leases(p_kind text, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_seqscan TO 'off'
AS $function$
#variable_conflict use_column
DECLARE
    v_now   timestamptz := coalesce(p_now, clock_timestamp());
    v_job   executor_jobs%ROWTYPE;
    v_count int := 0;
BEGIN
    FOR v_job IN
        SELECT j.* FROM executor_job_queue q JOIN executor_jobs j ON j.id = q.job_id
         WHERE q.state = 'leased' AND q.kind = p_kind AND q.due_at < v_now AND j.status = 'running'
         ORDER BY q.due_at
         FOR UPDATE OF q, j SKIP LOCKED
    LOOP
        -- The job's runs by their job index, in a subquery kept whole (see lock_job_for_run in 0011).
        UPDATE executor_job_runs r
           SET finished_at = v_now, outcome = 'lease_expired',
               error = format('lease of %s expired at %s', v_job.lease_owner, v_job.lease_expires_at)
         WHERE r.id IN (SELECT x.id FROM executor_job_runs x WHERE x.job_id = v_job.id OFFSET 0)
           AND r.finished_at IS NULL;
        IF v_job.attempts >= v_job.max_attempts THEN
            PERFORM mark_job_dead(v_job, format('lease expired on the last attempt (%s of %s)',
                                                v_job.attempts, v_job.max_attempts), v_now);
        ELSE
            UPDATE executor_jobs j
               SET status = 'retrying', run_at = v_now, lease_owner = NULL, lease_expires_at = NULL,
                   last_error = 'lease expired', updated_at = v_now
             WHERE j.id = v_job.id;
        END IF;
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END
$function$;
REVOKE EXECUTE ON FUNCTION reap_expired_leases(text,timestamp with time zone) FROM PUBLIC;

-- function release_job(bigint,bigint,timestamp with time zone)
CREATE OR REPLACE FUNCTION public.release_job(p_job_id bigint, p_run_id bigint, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone)
 RETURNS boolean
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_seqscan TO 'off'
AS $function$
DECLARE
    v_now timestamptz := coalesce(p_now, clock_timestamp());
    v_job executor_jobs%ROWTYPE;
BEGIN
    v_job := lock_job_for_run(p_job_id, p_run_id);
    IF v_job.id IS NULL THEN
        RETURN false;
    END IF;
    UPDATE executor_job_runs r SET finished_at = v_now, outcome = 'released' WHERE r.id = p_run_id;
    UPDATE executor_jobs j
       SET status = 'queued', attempts = greatest(j.attempts - 1, 0), run_at = v_now, lease_owner = NULL,
           lease_expires_at = NULL, updated_at = v_now
     WHERE j.id = p_job_id;
    RETURN true;
END
$function$;

-- function replay_unmaterialized_events(double precision)
CREATE OR REPLACE FUNCTION public.replay_unmaterialized_events(p_window_s double precision DEFAULT 3600)
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE
    v_row   record;
    v_count int := 0;
    v_made  boolean;
BEGIN
    FOR v_row IN
        SELECT e.id AS entity_id, x AS event, m.job_type
          FROM document_entities e
         CROSS JOIN LATERAL jsonb_array_elements(e.events) WITH ORDINALITY AS a (x, pos)
         CROSS JOIN LATERAL (
             SELECT CASE
                 WHEN x ->> 'type' ~ '^job\.[a-z][a-z0-9_]*\.required$'
                     THEN substring(x ->> 'type' FROM '^job\.([a-z][a-z0-9_]*)\.required$')
                 WHEN x ->> 'type' ~ '^job\.[a-z][a-z0-9_]*\.(completed|failed)$'
                      AND EXISTS (SELECT 1 FROM job_types t
                                   WHERE t.kind = 'execution'
                                     AND t.name = substring(x ->> 'type' FROM '^job\.([a-z][a-z0-9_]*)\.'))
                     THEN 'decide_outcome'
                 WHEN x ->> 'type' ~ '^document\.[a-z0-9_]+\.requested$' THEN 'decide_request'
             END AS job_type) m
         WHERE e.updated_at > clock_timestamp() - make_interval(secs => p_window_s)
           AND (x ->> 'at')::timestamptz > clock_timestamp() - make_interval(secs => p_window_s)
           AND m.job_type IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM executor_jobs j
                            WHERE j.dedupe_key = e.id::text || ':' || m.job_type || ':' || (x ->> 'id'))
         ORDER BY (x ->> 'at')::timestamptz, a.pos
    LOOP
        SELECT g.created INTO v_made
          FROM materialize_job(v_row.job_type, v_row.entity_id, (v_row.event ->> 'id')::uuid,
                               coalesce(v_row.event -> 'payload', '{}'::jsonb),
                               (v_row.event ->> 'correlation_id')::uuid, v_row.event ->> 'trace_id', 'replay') g;
        IF v_made THEN
            v_count := v_count + 1;
        END IF;
    END LOOP;
    RETURN v_count;
END
$function$;
REVOKE EXECUTE ON FUNCTION replay_unmaterialized_events(double precision) FROM PUBLIC;

-- function request_protection(uuid,text,text,uuid,text,uuid)
CREATE OR REPLACE FUNCTION public.request_protection(p_entity_id uuid, p_document text, p_owner_id text DEFAULT NULL::text, p_correlation_id uuid DEFAULT NULL::uuid, p_trace_id text DEFAULT NULL::text, p_event_id uuid DEFAULT NULL::uuid)
 RETURNS uuid
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
 SET plan_cache_mode TO 'force_generic_plan'
 SET enable_seqscan TO 'off'
AS $function$
DECLARE
    v_first jsonb;
BEGIN
    INSERT INTO document_entities (id, owner_id) VALUES (p_entity_id, p_owner_id) ON CONFLICT (id) DO NOTHING;
    SELECT x INTO v_first
      FROM document_entities e, jsonb_array_elements(e.events) x
     WHERE e.id = p_entity_id AND x ->> 'type' = 'document.protect.requested'
     LIMIT 1;
    RETURN append_event(p_entity_id, 'document.protect.requested',
                        jsonb_build_object('document', p_document),
                        coalesce(p_correlation_id, (v_first ->> 'correlation_id')::uuid, gen_random_uuid()),
                        coalesce(p_trace_id, v_first ->> 'trace_id', new_trace_id()), NULL, p_event_id);
END
$function$;
GRANT EXECUTE ON FUNCTION request_protection(uuid,text,text,uuid,text,uuid) TO pipeline_writer;

-- function result_event_id_for(bigint,text)
CREATE OR REPLACE FUNCTION public.result_event_id_for(p_job_id bigint, p_outcome text)
 RETURNS uuid
 LANGUAGE sql
 IMMUTABLE
AS $function$ SELECT md5('executor_job:' || p_job_id || ':' || p_outcome)::uuid $function$;

-- function validate_event(jsonb,integer)
CREATE OR REPLACE FUNCTION public.validate_event(p_event jsonb, p_position integer DEFAULT NULL::integer)
 RETURNS void
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_problem text := event_problem(p_event);
BEGIN
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'PJ002',
            MESSAGE = format('malformed event: %s %s',
                             CASE WHEN p_position IS NULL THEN 'event' ELSE format('events[%s]', p_position) END,
                             v_problem),
            HINT = 'append events with append_event(entity_id, type, payload, ...), which fills id, at and trace_id';
    END IF;
END
$function$;

-- function worker_heartbeat(text,text,integer,text,bigint)
CREATE OR REPLACE FUNCTION public.worker_heartbeat(p_worker_id text, p_role text, p_pid integer, p_host text, p_jobs_done bigint)
 RETURNS void
 LANGUAGE sql
 SECURITY DEFINER
 SET search_path TO 'public', 'pg_temp'
AS $function$
    INSERT INTO worker_heartbeats AS h (worker_id, role, pid, host, jobs_done)
    VALUES (p_worker_id, p_role, p_pid, p_host, p_jobs_done)
    ON CONFLICT (worker_id) DO UPDATE SET last_seen = clock_timestamp(), jobs_done = EXCLUDED.jobs_done
$function$;

-- =========================================================================================================
-- Rows the migrations insert (4)
-- =========================================================================================================

-- data alert_profiles
INSERT INTO alert_profiles (profile, key, value) VALUES
    ('fast', 'alert.backlog_oldest_age.for_s', '2'),
    ('fast', 'alert.backlog_oldest_age.threshold', '5'),
    ('fast', 'alert.backlog_ready_jobs.for_s', '2'),
    ('fast', 'alert.backlog_ready_jobs.threshold', '200'),
    ('fast', 'alert.compat_warnings_present.for_s', '1'),
    ('fast', 'alert.compat_warnings_present.threshold', '0'),
    ('fast', 'alert.compat_warnings_present.window_s', '20'),
    ('fast', 'alert.core_trigger_disabled.for_s', '2'),
    ('fast', 'alert.core_trigger_disabled.threshold', '1'),
    ('fast', 'alert.dead_jobs.for_s', '1'),
    ('fast', 'alert.dead_jobs.threshold', '0'),
    ('fast', 'alert.dead_jobs.window_s', '20'),
    ('fast', 'alert.event_to_job_gap_breached.for_s', '1'),
    ('fast', 'alert.event_to_job_gap_breached.threshold', '0'),
    ('fast', 'alert.retry_storm.for_s', '2'),
    ('fast', 'alert.retry_storm.threshold', '5'),
    ('fast', 'alert.retry_storm.window_s', '30'),
    ('fast', 'alert.worker_role_absent.for_s', '2'),
    ('fast', 'alert.worker_role_absent.threshold', '1'),
    ('fast', 'gap_delta_s_default', '2'),
    ('fast', 'gap_window_s', '60'),
    ('fast', 'heartbeat_stale_s', '5'),
    ('fast', 'monitor_interval_s', '1'),
    ('production', 'alert.backlog_oldest_age.for_s', '120'),
    ('production', 'alert.backlog_oldest_age.threshold', '300'),
    ('production', 'alert.backlog_ready_jobs.for_s', '300'),
    ('production', 'alert.backlog_ready_jobs.threshold', '5000'),
    ('production', 'alert.compat_warnings_present.for_s', '0'),
    ('production', 'alert.compat_warnings_present.threshold', '0'),
    ('production', 'alert.compat_warnings_present.window_s', '3600'),
    ('production', 'alert.core_trigger_disabled.for_s', '30'),
    ('production', 'alert.core_trigger_disabled.threshold', '1'),
    ('production', 'alert.dead_jobs.for_s', '0'),
    ('production', 'alert.dead_jobs.threshold', '0'),
    ('production', 'alert.dead_jobs.window_s', '900'),
    ('production', 'alert.event_to_job_gap_breached.for_s', '30'),
    ('production', 'alert.event_to_job_gap_breached.threshold', '0'),
    ('production', 'alert.retry_storm.for_s', '120'),
    ('production', 'alert.retry_storm.threshold', '50'),
    ('production', 'alert.retry_storm.window_s', '300'),
    ('production', 'alert.worker_role_absent.for_s', '60'),
    ('production', 'alert.worker_role_absent.threshold', '1'),
    ('production', 'gap_delta_s_default', '60'),
    ('production', 'gap_window_s', '900'),
    ('production', 'heartbeat_stale_s', '60'),
    ('production', 'monitor_interval_s', '15');

-- data alert_rules
INSERT INTO alert_rules (name, metric, op, severity, summary, runbook, has_window) VALUES
    ('backlog_oldest_age', 'pipeline_backlog_oldest_ready_age_seconds', '>', 'critical', 'the oldest ready job has waited too long to be claimed', 'runbooks/enqueued-not-executed.md', false),
    ('backlog_ready_jobs', 'pipeline_backlog_ready_jobs', '>', 'warning', 'too many jobs are ready and waiting to be claimed', 'runbooks/enqueued-not-executed.md', false),
    ('compat_warnings_present', 'pipeline_compat_warnings_recent', '>', 'warning', 'direct inserts into executor_jobs were redirected through the gateway (compat warnings)', 'runbooks/not-enqueued.md', true),
    ('core_trigger_disabled', 'pipeline_core_trigger_enabled', '<', 'critical', 'the core trigger on_document_entity_events_change is disabled or missing: events make no jobs', 'runbooks/not-enqueued.md', false),
    ('dead_jobs', 'pipeline_jobs_dead_recent', '>', 'warning', 'jobs died (all attempts used) in the recent window', 'runbooks/executed-no-event.md', true),
    ('event_to_job_gap_breached', 'pipeline_event_to_job_gap_breaches', '>', 'critical', 'job.*.required events older than their Delta have no job (event_to_job_gap breached)', 'runbooks/not-enqueued.md', false),
    ('retry_storm', 'pipeline_job_runs_failed_recent', '>', 'warning', 'many runs failed or lost their lease in the recent window (a retry storm)', 'runbooks/executed-no-event.md', true),
    ('worker_role_absent', 'pipeline_live_workers', '<', 'critical', 'a worker role has no live worker (no heartbeat within heartbeat_stale_s)', 'runbooks/enqueued-not-executed.md', false);

-- data job_types
INSERT INTO job_types (name, kind, role, max_attempts, description) VALUES
    ('anchor', 'execution', 'orchestrator', 5, 'obtain a ledger receipt'),
    ('decide_outcome', 'decision', 'fase1-executor', 5, 'decide the next step after a job outcome'),
    ('decide_request', 'decision', 'fase1-executor', 5, 'decide what a document.*.requested event starts'),
    ('protect', 'execution', 'orchestrator', 5, 'hash and sign the document'),
    ('tsa', 'execution', 'orchestrator', 5, 'obtain a signed timestamp token');

-- data pipeline_settings
-- (left out: updated_at (default clock_timestamp()))
INSERT INTO pipeline_settings (key, value, description) VALUES
    ('alert.backlog_oldest_age.for_s', '120', 'alert profile production'),
    ('alert.backlog_oldest_age.threshold', '300', 'alert profile production'),
    ('alert.backlog_ready_jobs.for_s', '300', 'alert profile production'),
    ('alert.backlog_ready_jobs.threshold', '5000', 'alert profile production'),
    ('alert.compat_warnings_present.for_s', '0', 'alert profile production'),
    ('alert.compat_warnings_present.threshold', '0', 'alert profile production'),
    ('alert.compat_warnings_present.window_s', '3600', 'alert profile production'),
    ('alert.core_trigger_disabled.for_s', '30', 'alert profile production'),
    ('alert.core_trigger_disabled.threshold', '1', 'alert profile production'),
    ('alert.dead_jobs.for_s', '0', 'alert profile production'),
    ('alert.dead_jobs.threshold', '0', 'alert profile production'),
    ('alert.dead_jobs.window_s', '900', 'alert profile production'),
    ('alert.event_to_job_gap_breached.for_s', '30', 'alert profile production'),
    ('alert.event_to_job_gap_breached.threshold', '0', 'alert profile production'),
    ('alert.retry_storm.for_s', '120', 'alert profile production'),
    ('alert.retry_storm.threshold', '50', 'alert profile production'),
    ('alert.retry_storm.window_s', '300', 'alert profile production'),
    ('alert.worker_role_absent.for_s', '60', 'alert profile production'),
    ('alert.worker_role_absent.threshold', '1', 'alert profile production'),
    ('alert_profile', 'production', 'the alert profile last applied (apply_alert_profile)'),
    ('default_max_attempts', '5', 'attempts before a job is dead'),
    ('gap_delta_s_default', '60', 'alert profile production'),
    ('gap_window_s', '900', 'alert profile production'),
    ('gateway_mode', 'compat', 'compat: direct inserts into executor_jobs are redirected through the gateway and recorded in compat_warnings; strict: they are rejected'),
    ('heartbeat_stale_s', '60', 'alert profile production'),
    ('lease_seconds', '30', 'how long a claimed job belongs to its worker before another may re-claim it'),
    ('monitor_expected_roles', 'fase1-executor,orchestrator,scheduler', 'worker roles that must always have a live worker (alert worker_role_absent)'),
    ('monitor_interval_s', '15', 'alert profile production'),
    ('retry_base_ms', '500', 'first retry delay; doubles on every attempt, with jitter'),
    ('retry_cap_ms', '60000', 'longest retry delay');
