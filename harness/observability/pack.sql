-- The harness's observability pack: the RFC's phase-3 KPI and alerts over the RFC's tables only, for a pipeline
-- that has none of its own. Installed into the schema harness_obs (`harness obs install`, and by the harness
-- itself for a chaos run on a disposable database); evaluated by calling harness_obs.evaluate() every few
-- seconds (`harness obs evaluate`, pg_cron, or the harness during a run).
--
-- The views below read the pipeline's canonical relations (the SUT contract: entities, jobs, runs, compat
-- warnings): the installer puts in the pipeline's own tables or the SELECTs its SUT file gives. The pack
-- writes nothing but its own schema.

CREATE SCHEMA IF NOT EXISTS harness_obs;

CREATE OR REPLACE VIEW harness_obs.entities AS {entities};
CREATE OR REPLACE VIEW harness_obs.jobs AS {jobs};
CREATE OR REPLACE VIEW harness_obs.runs AS {runs};
CREATE OR REPLACE VIEW harness_obs.compat_warnings AS {compat_warnings_or_empty};

CREATE TABLE IF NOT EXISTS harness_obs.settings (
    key   text PRIMARY KEY,
    value double precision NOT NULL
);

-- production: the RFC's numbers (Delta 60 s); fast: what a chaos run uses (and says so in its scenario).
CREATE TABLE IF NOT EXISTS harness_obs.profiles (
    profile text NOT NULL,
    key     text NOT NULL,
    value   double precision NOT NULL,
    PRIMARY KEY (profile, key)
);
INSERT INTO harness_obs.profiles (profile, key, value)
SELECT p.profile, v.key, CASE p.profile WHEN 'production' THEN v.production ELSE v.fast END
  FROM (VALUES ('production'), ('fast')) p (profile),
       (VALUES ('gap_delta_s', 60, 2), ('gap_window_s', 900, 60),
               ('core-trigger-disabled.for_s', 30, 2),
               ('event-to-job-gap.for_s', 30, 1),
               ('backlog-ready.threshold', 5000, 200), ('backlog-ready.for_s', 300, 2),
               ('backlog-age.threshold', 300, 5), ('backlog-age.for_s', 120, 2),
               ('retry-storm.threshold', 50, 5), ('retry-storm.for_s', 120, 2), ('retry-storm.window_s', 300, 30),
               ('dead-jobs.for_s', 0, 1), ('dead-jobs.window_s', 900, 20),
               ('compat-warnings.for_s', 0, 1), ('compat-warnings.window_s', 3600, 20)) v (key, production, fast)
ON CONFLICT (profile, key) DO UPDATE SET value = EXCLUDED.value;

CREATE OR REPLACE FUNCTION harness_obs.apply_profile(p_profile text) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO harness_obs.settings (key, value)
    SELECT key, value FROM harness_obs.profiles WHERE profile = p_profile
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value
$$;

CREATE OR REPLACE FUNCTION harness_obs.setting(p_key text, p_default double precision) RETURNS double precision
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT value FROM harness_obs.settings WHERE key = p_key), p_default)
$$;

-- KPI event_to_job_gap: every job.<type>.required event, the job born from it (if any) and the gap.
CREATE OR REPLACE VIEW harness_obs.event_to_job_gap AS
SELECT e.id::text AS entity_id, x ->> 'id' AS event_id, substring(x ->> 'type' FROM '^job\.(.*)\.required$') AS job_type,
       (x ->> 'at')::timestamptz AS event_at, j.created_at AS job_created_at,
       extract(epoch FROM j.created_at - (x ->> 'at')::timestamptz) AS gap_s
  FROM harness_obs.entities e
 CROSS JOIN LATERAL jsonb_array_elements(e.events) x
  LEFT JOIN LATERAL (SELECT min(j.created_at) AS created_at FROM harness_obs.jobs j
                      WHERE j.entity_id::text = e.id::text AND j.source_event_id::text = x ->> 'id') j ON true
 WHERE x ->> 'type' ~ '^job\.[a-z0-9_]+\.required$';

-- The value of each rule's metric now.
CREATE OR REPLACE FUNCTION harness_obs.metric(p_rule text, p_now timestamptz) RETURNS double precision
LANGUAGE plpgsql STABLE AS $$
DECLARE v double precision;
BEGIN
    IF p_rule = 'core-trigger-disabled' THEN
        SELECT count(*) FILTER (WHERE t.tgenabled IN ('O', 'A')) INTO v FROM pg_trigger t
         WHERE t.tgrelid = 'document_entities'::regclass AND t.tgname = 'on_document_entity_events_change';
        RETURN CASE WHEN v > 0 THEN 0 ELSE 1 END;
    ELSIF p_rule = 'event-to-job-gap' THEN
        SELECT count(*) INTO v FROM harness_obs.event_to_job_gap g
         WHERE g.job_created_at IS NULL
           AND g.event_at < p_now - make_interval(secs => harness_obs.setting('gap_delta_s', 60))
           AND g.event_at > p_now - make_interval(secs => harness_obs.setting('gap_window_s', 900));
    ELSIF p_rule = 'backlog-ready' THEN
        SELECT count(*) INTO v FROM harness_obs.jobs j
         WHERE j.status IN ('queued', 'retrying') AND coalesce(j.run_at, j.created_at) <= p_now;
    ELSIF p_rule = 'backlog-age' THEN
        SELECT coalesce(extract(epoch FROM p_now - min(coalesce(j.run_at, j.created_at))), 0) INTO v
          FROM harness_obs.jobs j WHERE j.status IN ('queued', 'retrying') AND coalesce(j.run_at, j.created_at) <= p_now;
    ELSIF p_rule = 'retry-storm' THEN
        SELECT count(*) INTO v FROM harness_obs.runs r
         WHERE r.outcome IN ('failed', 'lease_expired')
           AND r.finished_at > p_now - make_interval(secs => harness_obs.setting('retry-storm.window_s', 300));
    ELSIF p_rule = 'dead-jobs' THEN
        SELECT count(DISTINCT j.id) INTO v FROM harness_obs.jobs j JOIN harness_obs.runs r ON r.job_id = j.id
         WHERE j.status = 'dead'
           AND r.finished_at > p_now - make_interval(secs => harness_obs.setting('dead-jobs.window_s', 900));
    ELSIF p_rule = 'compat-warnings' THEN
        SELECT count(*) INTO v FROM harness_obs.compat_warnings w
         WHERE w.at > p_now - make_interval(secs => harness_obs.setting('compat-warnings.window_s', 3600));
    ELSE
        RAISE EXCEPTION 'harness_obs: unknown rule %', p_rule;
    END IF;
    RETURN v;
END $$;

CREATE TABLE IF NOT EXISTS harness_obs.rules (
    name      text PRIMARY KEY,
    threshold double precision NOT NULL,   -- fires while metric > threshold
    summary   text NOT NULL
);
INSERT INTO harness_obs.rules (name, threshold, summary) VALUES
    ('core-trigger-disabled', 0, 'the core trigger on_document_entity_events_change is disabled or missing'),
    ('event-to-job-gap', 0, 'job.*.required events older than Delta have no job (event_to_job_gap breached)'),
    ('backlog-ready', 5000, 'too many jobs are ready and waiting to be claimed'),
    ('backlog-age', 300, 'the oldest ready job has waited too long to be claimed'),
    ('retry-storm', 50, 'many runs failed or lost their lease in the recent window'),
    ('dead-jobs', 0, 'jobs died (all attempts used) in the recent window'),
    ('compat-warnings', 0, 'direct inserts into executor_jobs were redirected through the gateway')
ON CONFLICT (name) DO UPDATE SET summary = EXCLUDED.summary;

CREATE TABLE IF NOT EXISTS harness_obs.alert_state (
    rule         text PRIMARY KEY,
    state        text NOT NULL CHECK (state IN ('inactive', 'pending', 'firing')),
    value        double precision,
    active_since timestamptz,
    fired_at     timestamptz,
    evaluated_at timestamptz
);

CREATE TABLE IF NOT EXISTS harness_obs.alert_history (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL,
    rule         text NOT NULL,
    from_state   text NOT NULL,
    to_state     text NOT NULL,
    value        double precision,
    for_s        double precision,
    active_since timestamptz
);

-- Prometheus semantics: a rule whose condition holds is pending, then firing once it has held for its `for`;
-- when it stops holding a firing rule is resolved (then inactive), a pending one inactive. Every transition
-- is a row of alert_history. Returns the rules' states after this evaluation.
CREATE OR REPLACE FUNCTION harness_obs.evaluate(p_now timestamptz DEFAULT NULL)
RETURNS TABLE (rule text, state text, value double precision)
LANGUAGE plpgsql AS $$
DECLARE
    v_now   timestamptz := coalesce(p_now, clock_timestamp());
    r       record;
    v_value double precision;
    v_for   double precision;
    v_holds boolean;
    s       harness_obs.alert_state%ROWTYPE;
    v_next  text;
BEGIN
    FOR r IN SELECT * FROM harness_obs.rules ORDER BY name LOOP
        v_value := harness_obs.metric(r.name, v_now);
        v_for := harness_obs.setting(r.name || '.for_s', 0);
        v_holds := v_value > harness_obs.setting(r.name || '.threshold', r.threshold);
        SELECT * INTO s FROM harness_obs.alert_state a WHERE a.rule = r.name FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO harness_obs.alert_state (rule, state) VALUES (r.name, 'inactive') RETURNING * INTO s;
        END IF;
        v_next := s.state;
        IF v_holds AND s.state = 'inactive' THEN
            v_next := CASE WHEN v_for <= 0 THEN 'firing' ELSE 'pending' END;
            s.active_since := v_now;
        ELSIF v_holds AND s.state = 'pending' AND v_now - s.active_since >= make_interval(secs => v_for) THEN
            v_next := 'firing';
        ELSIF NOT v_holds AND s.state IN ('pending', 'firing') THEN
            v_next := 'inactive';
        END IF;
        IF v_next <> s.state THEN
            INSERT INTO harness_obs.alert_history (at, rule, from_state, to_state, value, for_s, active_since)
            VALUES (v_now, r.name, s.state,
                    CASE WHEN s.state = 'firing' AND v_next = 'inactive' THEN 'resolved' ELSE v_next END,
                    v_value, v_for, s.active_since);
        END IF;
        UPDATE harness_obs.alert_state a
           SET state = v_next, value = v_value, evaluated_at = v_now,
               active_since = CASE WHEN v_next = 'inactive' THEN NULL ELSE s.active_since END,
               fired_at = CASE WHEN v_next = 'firing' AND s.state <> 'firing' THEN v_now
                               WHEN v_next = 'inactive' THEN NULL ELSE a.fired_at END
         WHERE a.rule = r.name;
        rule := r.name; state := v_next; value := v_value;
        RETURN NEXT;
    END LOOP;
END $$;
