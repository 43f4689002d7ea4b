-- class: core
-- Observability of truth (RFC phase 3): the KPI event_to_job_gap, the dashboard's views, alert rules with
-- Prometheus semantics evaluated in SQL (so a psql user, the monitor and a test all see one behaviour), and
-- a replay of events whose job was never materialized (the fix step of runbooks/not-enqueued.md).
--
-- Tables:
--   alert_rules     one row per rule: the metric it watches, the comparison, severity, summary, runbook.
--                   Its numbers (threshold, for, window) are settings: `alert.<rule>.threshold|for_s|window_s`.
--   alert_profiles  named sets of setting values (`production`, `fast`); apply_alert_profile(name) writes one.
--   alert_state     the current state of every series of every rule: inactive, pending or firing.
--   alert_history   one row per transition (inactive->pending, pending->firing, pending->inactive,
--                   firing->resolved, inactive->firing when for = 0), with its time and triggering value.
-- SQLSTATE PJ020: a bad observability setting (a threshold that is not a number, an unknown rule, ...).

-- == Indexes that keep the monitor's reads proportional to the recent past =================================
-- BRIN indexes are "summarizing": since Postgres 16 they do not prevent HOT updates, so the append path
-- (which rewrites document_entities rows) and run completion pay nothing for them.
CREATE INDEX document_entities_updated_brin ON document_entities USING brin (updated_at)
    WITH (autosummarize = on, pages_per_range = 16);
CREATE INDEX executor_job_runs_finished_brin ON executor_job_runs USING brin (finished_at)
    WITH (autosummarize = on, pages_per_range = 16);
-- Only dead rows enter this one; status changes are already non-HOT (executor_jobs_ready_idx's predicate).
CREATE INDEX executor_jobs_dead_idx ON executor_jobs (finished_at) WHERE status = 'dead';
CREATE INDEX compat_warnings_at_idx ON compat_warnings (at);

-- == Rules and their settings ===============================================================================
CREATE TABLE alert_rules (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]*$'),
    metric      text NOT NULL CHECK (metric ~ '^[a-z_][a-z0-9_]*$'),
    op          text NOT NULL CHECK (op IN ('>', '<')),
    severity    text NOT NULL CHECK (severity IN ('critical', 'warning', 'info')),
    summary     text NOT NULL,
    runbook     text NOT NULL DEFAULT '',
    has_window  boolean NOT NULL DEFAULT false
);

INSERT INTO alert_rules (name, metric, op, severity, summary, runbook, has_window) VALUES
    ('core_trigger_disabled', 'pipeline_core_trigger_enabled', '<', 'critical',
     'the core trigger on_document_entity_events_change is disabled or missing: events make no jobs',
     'runbooks/not-enqueued.md', false),
    ('event_to_job_gap_breached', 'pipeline_event_to_job_gap_breaches', '>', 'critical',
     'job.*.required events older than their Delta have no job (event_to_job_gap breached)',
     'runbooks/not-enqueued.md', false),
    ('backlog_ready_jobs', 'pipeline_backlog_ready_jobs', '>', 'warning',
     'too many jobs are ready and waiting to be claimed',
     'runbooks/enqueued-not-executed.md', false),
    ('backlog_oldest_age', 'pipeline_backlog_oldest_ready_age_seconds', '>', 'critical',
     'the oldest ready job has waited too long to be claimed',
     'runbooks/enqueued-not-executed.md', false),
    ('retry_storm', 'pipeline_job_runs_failed_recent', '>', 'warning',
     'many runs failed or lost their lease in the recent window (a retry storm)',
     'runbooks/executed-no-event.md', true),
    ('dead_jobs', 'pipeline_jobs_dead_recent', '>', 'warning',
     'jobs died (all attempts used) in the recent window',
     'runbooks/executed-no-event.md', true),
    ('compat_warnings_present', 'pipeline_compat_warnings_recent', '>', 'warning',
     'direct inserts into executor_jobs were redirected through the gateway (compat warnings)',
     'runbooks/not-enqueued.md', true),
    ('worker_role_absent', 'pipeline_live_workers', '<', 'critical',
     'a worker role has no live worker (no heartbeat within heartbeat_stale_s)',
     'runbooks/enqueued-not-executed.md', false);

-- Profiles: production defaults and a fast profile that scenarios and `harness up` use (and say so).
CREATE TABLE alert_profiles (
    profile     text NOT NULL,
    key         text NOT NULL,
    value       text NOT NULL,
    PRIMARY KEY (profile, key)
);

INSERT INTO alert_profiles (profile, key, value)
SELECT p.profile, v.key, CASE p.profile WHEN 'production' THEN v.production ELSE v.fast END
  FROM (VALUES ('production'), ('fast')) p (profile),
       (VALUES
        ('monitor_interval_s',                       '15',   '1'),
        ('heartbeat_stale_s',                        '60',   '5'),
        ('gap_delta_s_default',                      '60',   '2'),
        ('gap_window_s',                             '900',  '60'),
        ('alert.core_trigger_disabled.threshold',    '1',    '1'),
        ('alert.core_trigger_disabled.for_s',        '30',   '2'),
        ('alert.event_to_job_gap_breached.threshold', '0',   '0'),
        ('alert.event_to_job_gap_breached.for_s',    '30',   '1'),
        ('alert.backlog_ready_jobs.threshold',       '5000', '200'),
        ('alert.backlog_ready_jobs.for_s',           '300',  '2'),
        ('alert.backlog_oldest_age.threshold',       '300',  '5'),
        ('alert.backlog_oldest_age.for_s',           '120',  '2'),
        ('alert.retry_storm.threshold',              '50',   '5'),
        ('alert.retry_storm.for_s',                  '120',  '2'),
        ('alert.retry_storm.window_s',               '300',  '30'),
        ('alert.dead_jobs.threshold',                '0',    '0'),
        ('alert.dead_jobs.for_s',                    '0',    '1'),
        ('alert.dead_jobs.window_s',                 '900',  '20'),
        ('alert.compat_warnings_present.threshold',  '0',    '0'),
        ('alert.compat_warnings_present.for_s',      '0',    '1'),
        ('alert.compat_warnings_present.window_s',   '3600', '20'),
        ('alert.worker_role_absent.threshold',       '1',    '1'),
        ('alert.worker_role_absent.for_s',           '60',   '2')
       ) v (key, production, fast);

-- Says what is wrong with an observability setting, or NULL when it is fine (or not an observability key).
CREATE FUNCTION observability_setting_problem(p_key text, p_value text)
RETURNS text
LANGUAGE plpgsql STABLE
AS $$
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
$$;

-- One clear error for a bad observability setting, whoever writes it (psql, a scenario, a profile).
CREATE FUNCTION pipeline_settings_validate()
RETURNS trigger
LANGUAGE plpgsql
AS $$
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
$$;

CREATE TRIGGER pipeline_settings_validate
    BEFORE INSERT OR UPDATE ON pipeline_settings
    FOR EACH ROW EXECUTE FUNCTION pipeline_settings_validate();

-- Writes a profile's values into pipeline_settings (and records which profile is active). Returns the number
-- of settings written.
CREATE FUNCTION apply_alert_profile(p_profile text)
RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
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
$$;

INSERT INTO pipeline_settings (key, value, description) VALUES
    ('monitor_expected_roles', 'fase1-executor,orchestrator,scheduler',
     'worker roles that must always have a live worker (alert worker_role_absent)');
SELECT apply_alert_profile('production');

-- A setting of a rule as a number (validated on write; the cast here is the last line of defence).
CREATE FUNCTION alert_setting(p_rule text, p_attribute text, p_default double precision DEFAULT 0)
RETURNS double precision
LANGUAGE sql STABLE
AS $$ SELECT coalesce(pipeline_setting('alert.' || p_rule || '.' || p_attribute)::double precision, p_default) $$;

-- The rules with their current numbers, and the PromQL expression each one means over /metrics.
CREATE VIEW alert_rules_current AS
SELECT r.name, r.metric, r.op, alert_setting(r.name, 'threshold') AS threshold,
       alert_setting(r.name, 'for_s') AS for_s,
       CASE WHEN r.has_window THEN alert_setting(r.name, 'window_s', 300) END AS window_s,
       r.severity, r.summary, r.runbook,
       format('%s %s %s', r.metric, r.op, alert_setting(r.name, 'threshold')) AS promql
  FROM alert_rules r;

-- == The KPI event_to_job_gap ================================================================================
-- Delta of a job type: `gap_delta_s.<type>` if set, else `gap_delta_s_default` (60 s in production).
CREATE FUNCTION gap_delta_s(p_job_type text)
RETURNS double precision
LANGUAGE sql STABLE
AS $$
    SELECT coalesce(pipeline_setting('gap_delta_s.' || p_job_type),
                    pipeline_setting('gap_delta_s_default', '60'))::double precision
$$;

-- Every job.<type>.required event whose `at` lies in (now - window, now], with its job (matched by the
-- gateway's dedupe key, so the unique index answers) and its gap. Entities are pruned by updated_at first
-- (every append moves it, and an event is never later than its append), so the cost follows the recent
-- past, not the whole history. status: materialized (job within Delta), late (job after Delta), pending (no
-- job yet, younger than Delta), breached (no job, older than Delta). A job created after p_now is not seen.
CREATE FUNCTION event_to_job_gaps(p_window_s double precision DEFAULT NULL, p_now timestamptz DEFAULT NULL)
RETURNS TABLE (
    entity_id uuid, event_id uuid, job_type text, event_at timestamptz, job_id bigint,
    job_created_at timestamptz, gap_s double precision, age_s double precision, delta_s double precision,
    status text
)
LANGUAGE sql STABLE
AS $$
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
$$;

-- p50/p95/p99/max of the gap over the materialized events of the window, and the counts per status.
CREATE FUNCTION event_to_job_gap_stats(p_window_s double precision DEFAULT NULL, p_now timestamptz DEFAULT NULL)
RETURNS TABLE (
    events bigint, materialized bigint, late bigint, pending bigint, breached bigint,
    p50_s double precision, p95_s double precision, p99_s double precision, max_s double precision
)
LANGUAGE sql STABLE
AS $$
    SELECT count(*), count(*) FILTER (WHERE g.status = 'materialized'), count(*) FILTER (WHERE g.status = 'late'),
           count(*) FILTER (WHERE g.status = 'pending'), count(*) FILTER (WHERE g.status = 'breached'),
           percentile_cont(0.5) WITHIN GROUP (ORDER BY g.gap_s),
           percentile_cont(0.95) WITHIN GROUP (ORDER BY g.gap_s),
           percentile_cont(0.99) WITHIN GROUP (ORDER BY g.gap_s),
           max(g.gap_s)
      FROM event_to_job_gaps(p_window_s, p_now) g
$$;

-- The current breaches: which entity, which event, how late.
CREATE FUNCTION event_to_job_gap_breaches(p_window_s double precision DEFAULT NULL, p_now timestamptz DEFAULT NULL)
RETURNS TABLE (entity_id uuid, event_id uuid, job_type text, event_at timestamptz, age_s double precision,
               delta_s double precision)
LANGUAGE sql STABLE
AS $$
    SELECT g.entity_id, g.event_id, g.job_type, g.event_at, g.age_s, g.delta_s
      FROM event_to_job_gaps(p_window_s, p_now) g WHERE g.status = 'breached' ORDER BY g.event_at
$$;

-- The gap over time, one row per bucket (empty buckets included), for the dashboard's chart.
CREATE FUNCTION event_to_job_gap_series(
    p_window_s double precision DEFAULT NULL, p_bucket_s double precision DEFAULT NULL, p_now timestamptz DEFAULT NULL
)
RETURNS TABLE (bucket_start timestamptz, events bigint, p50_s double precision, p95_s double precision,
               max_s double precision, breached bigint, delta_s double precision)
LANGUAGE sql STABLE
AS $$
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
$$;

-- == Alert evaluation ========================================================================================
-- The core trigger as a number: 1 when it exists and fires for ordinary sessions (tgenabled O or A), else 0.
-- A writer session with session_replication_role = replica skips it while the catalog says enabled: the gap
-- rule catches that case, from its effect.
CREATE FUNCTION core_trigger_enabled()
RETURNS int
LANGUAGE sql STABLE
AS $$
    SELECT coalesce((SELECT CASE WHEN t.tgenabled IN ('O', 'A') THEN 1 ELSE 0 END
                       FROM pg_trigger t
                      WHERE t.tgrelid = to_regclass('public.document_entities')
                        AND t.tgname = 'on_document_entity_events_change' AND NOT t.tgisinternal), 0)
$$;

-- The value of every series of every rule at p_now (one series per rule, one per role for
-- worker_role_absent). The metric of each rule on /metrics is exactly this value.
CREATE FUNCTION alert_rule_values(p_now timestamptz DEFAULT NULL)
RETURNS TABLE (rule text, labels jsonb, value double precision)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_now   timestamptz := coalesce(p_now, clock_timestamp());
    v_stale interval := make_interval(secs => pipeline_setting('heartbeat_stale_s', '60')::double precision);
BEGIN
    RETURN QUERY SELECT 'core_trigger_disabled'::text, '{}'::jsonb, core_trigger_enabled()::double precision;
    RETURN QUERY SELECT 'event_to_job_gap_breached'::text, '{}'::jsonb, count(*)::double precision
                   FROM event_to_job_gaps(NULL, v_now) g WHERE g.status = 'breached';
    RETURN QUERY SELECT 'backlog_ready_jobs'::text, '{}'::jsonb, count(*)::double precision
                   FROM executor_jobs j WHERE j.status IN ('queued', 'retrying') AND j.run_at <= v_now;
    RETURN QUERY SELECT 'backlog_oldest_age'::text, '{}'::jsonb,
                        coalesce(extract(epoch FROM v_now - min(j.run_at)), 0)::double precision
                   FROM executor_jobs j WHERE j.status IN ('queued', 'retrying') AND j.run_at <= v_now;
    RETURN QUERY SELECT 'retry_storm'::text, '{}'::jsonb, count(*)::double precision
                   FROM executor_job_runs r
                  WHERE r.outcome IN ('failed', 'lease_expired') AND r.finished_at <= v_now
                    AND r.finished_at > v_now - make_interval(secs => alert_setting('retry_storm', 'window_s', 300));
    RETURN QUERY SELECT 'dead_jobs'::text, '{}'::jsonb, count(*)::double precision
                   FROM executor_jobs j
                  WHERE j.status = 'dead' AND j.finished_at <= v_now
                    AND j.finished_at > v_now - make_interval(secs => alert_setting('dead_jobs', 'window_s', 900));
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
$$;

CREATE TABLE alert_state (
    rule          text NOT NULL REFERENCES alert_rules (name),
    labels        jsonb NOT NULL DEFAULT '{}'::jsonb,
    state         text NOT NULL CHECK (state IN ('inactive', 'pending', 'firing')),
    value         double precision,
    threshold     double precision,
    for_s         double precision,
    active_since  timestamptz,   -- when the condition became true (start of pending)
    fired_at      timestamptz,
    resolved_at   timestamptz,
    evaluated_at  timestamptz NOT NULL,
    PRIMARY KEY (rule, labels)
);

CREATE TABLE alert_history (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            timestamptz NOT NULL,
    rule          text NOT NULL,
    labels        jsonb NOT NULL DEFAULT '{}'::jsonb,
    from_state    text NOT NULL,
    to_state      text NOT NULL CHECK (to_state IN ('inactive', 'pending', 'firing', 'resolved')),
    value         double precision,
    threshold     double precision,
    for_s         double precision,
    active_since  timestamptz
);
CREATE INDEX alert_history_rule_idx ON alert_history (rule, at);

-- One evaluation of every rule at p_now, with Prometheus semantics: a series whose condition holds goes
-- pending, and firing once it has held for `for` seconds (at once when for = 0); when it stops holding, a
-- pending series goes back to inactive and a firing one is resolved. A series that disappears (a role no
-- longer expected) counts as not holding. Every transition is written to alert_history. Returns every
-- series' state after the evaluation. Evaluations are serialized, so two monitors never interleave.
CREATE FUNCTION evaluate_alerts(p_now timestamptz DEFAULT NULL)
RETURNS TABLE (rule text, labels jsonb, metric text, state text, value double precision,
               threshold double precision, for_s double precision, changed boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
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
$$;

-- == Views of the single dashboard ===========================================================================
-- Each reads a bounded recent slice (by BRIN-pruned updated_at or by the newest ids), never the whole history.
CREATE VIEW dashboard_recent_events AS
SELECT e.id AS entity_id, (x ->> 'id')::uuid AS event_id, x ->> 'type' AS type, (x ->> 'at')::timestamptz AS at,
       x ->> 'correlation_id' AS correlation_id, x ->> 'trace_id' AS trace_id, x ->> 'causation_id' AS causation_id
  FROM (SELECT d.id, d.events FROM document_entities d
         WHERE d.updated_at > clock_timestamp() - interval '1 hour'
         ORDER BY d.updated_at DESC LIMIT 100) e
 CROSS JOIN LATERAL jsonb_array_elements(e.events) x
 ORDER BY (x ->> 'at')::timestamptz DESC
 LIMIT 200;

CREATE VIEW dashboard_jobs_per_entity AS
SELECT j.entity_id, count(*) AS jobs,
       count(*) FILTER (WHERE j.status = 'succeeded') AS succeeded,
       count(*) FILTER (WHERE j.status IN ('queued', 'retrying', 'running')) AS open,
       count(*) FILTER (WHERE j.status = 'retrying') AS retrying,
       count(*) FILTER (WHERE j.status = 'dead') AS dead,
       string_agg(j.job_type || ':' || j.status, ' > ' ORDER BY j.id) AS path,
       max(j.updated_at) AS last_change
  FROM executor_jobs j
 WHERE j.entity_id IN (SELECT r.entity_id FROM executor_jobs r ORDER BY r.id DESC LIMIT 500)
 GROUP BY j.entity_id
 ORDER BY max(j.updated_at) DESC
 LIMIT 50;

-- Runs per job, for the newest jobs: how many runs, how many failed or lost their lease, the last error.
CREATE VIEW dashboard_job_runs AS
SELECT j.id AS job_id, j.job_type, j.entity_id, j.status, j.attempts, count(r.id) AS runs,
       count(r.id) FILTER (WHERE r.outcome IN ('failed', 'lease_expired')) AS failed_runs,
       (array_agg(r.error ORDER BY r.id DESC) FILTER (WHERE r.error IS NOT NULL))[1] AS last_error,
       max(r.started_at) AS last_run_at
  FROM (SELECT * FROM executor_jobs ORDER BY id DESC LIMIT 500) j
  LEFT JOIN executor_job_runs r ON r.job_id = j.id
 GROUP BY j.id, j.job_type, j.entity_id, j.status, j.attempts
 ORDER BY j.id DESC;

-- Runs that ended with an error, newest first, among the newest 100000 runs.
CREATE VIEW dashboard_runs_with_errors AS
SELECT r.id AS run_id, r.job_id, j.job_type, j.entity_id, r.attempt, r.worker, r.started_at, r.finished_at,
       r.outcome, r.error, j.status AS job_status
  FROM executor_job_runs r JOIN executor_jobs j ON j.id = r.job_id
 WHERE r.id > (SELECT coalesce(max(m.id), 0) - 100000 FROM executor_job_runs m)
   AND (r.error IS NOT NULL OR r.outcome IN ('failed', 'lease_expired'))
 ORDER BY r.id DESC
 LIMIT 100;

-- The queue per kind: ready (claimable now), the oldest ready job's wait, retrying, running, expired leases,
-- dead. Read through the partial indexes of the open states.
CREATE VIEW dashboard_backlog AS
SELECT k.kind,
       count(j.id) FILTER (WHERE j.status IN ('queued', 'retrying') AND j.run_at <= clock_timestamp()) AS ready,
       coalesce(extract(epoch FROM clock_timestamp() - min(j.run_at)
                FILTER (WHERE j.status IN ('queued', 'retrying') AND j.run_at <= clock_timestamp())), 0)
           AS oldest_ready_age_s,
       count(j.id) FILTER (WHERE j.status = 'queued') AS queued,
       count(j.id) FILTER (WHERE j.status = 'retrying') AS retrying,
       count(j.id) FILTER (WHERE j.status = 'running') AS running,
       count(j.id) FILTER (WHERE j.status = 'running' AND j.lease_expires_at < clock_timestamp()) AS expired_leases,
       count(j.id) FILTER (WHERE j.status = 'dead') AS dead
  FROM (VALUES ('decision'), ('execution')) k (kind)
  LEFT JOIN executor_jobs j ON j.kind = k.kind AND j.status IN ('queued', 'retrying', 'running', 'dead')
 GROUP BY k.kind
 ORDER BY k.kind;

CREATE VIEW dashboard_workers AS
SELECT h.role, h.worker_id, h.pid, h.started_at, h.last_seen, h.jobs_done,
       extract(epoch FROM clock_timestamp() - h.last_seen) AS silent_s,
       h.last_seen > clock_timestamp() - make_interval(secs => pipeline_setting('heartbeat_stale_s', '60')::double precision)
           AS live
  FROM worker_heartbeats h
 ORDER BY h.role, h.last_seen DESC;

-- == Replay: the fix step after the core trigger was disabled =================================================
-- Asks the gateway for the job of every event appended in the last p_window_s seconds that needs one and has
-- none (the same mapping as the core trigger), with materialized_via = 'replay'. Idempotent: the gateway's
-- dedupe key makes a second replay a no-op. Returns how many jobs it created.
CREATE FUNCTION replay_unmaterialized_events(p_window_s double precision DEFAULT 3600)
RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
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
$$;

-- == Privileges ===============================================================================================
REVOKE EXECUTE ON FUNCTION evaluate_alerts(timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION replay_unmaterialized_events(double precision) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION apply_alert_profile(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION evaluate_alerts(timestamptz) TO pipeline_monitor;
GRANT SELECT ON alert_rules, alert_profiles, alert_state, alert_history, alert_rules_current,
                dashboard_recent_events, dashboard_jobs_per_entity, dashboard_job_runs, dashboard_runs_with_errors,
                dashboard_backlog, dashboard_workers
   TO pipeline_monitor, pipeline_reader;
