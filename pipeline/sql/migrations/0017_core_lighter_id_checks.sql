-- class: core
-- The id and trace id checks without counted repetitions. Counted with callgrind on one backend appending
-- job.protect.required events (the same count on every run, unlike a timing): each append executed about
-- 1,125,000 instructions, and 15% of them were Postgres' regex engine. Most went to two patterns with counted
-- repetitions, `[0-9a-f]{32}` for a trace id and the uuid pattern for an event id: each {n} becomes n states
-- of the automaton the match walks, about 3 us per match on this machine against 0.6 us for the type pattern.
-- They ran seven times per append: twice each in event_problem (append_event checks the event, then the core
-- trigger checks it again) and once in the trace id CHECK of executor_jobs (0018 rewrites that one).
-- The same rules, written so that the regex engine only checks the characters:
--   trace id  ^[0-9a-f]{32}$  ->  32 characters, all of them in [0-9a-f]
--   event id  ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$  ->  36 characters with a dash
--             at 9, 14, 19 and 24 (LIKE), exactly four dashes, every character in [-0-9a-f]
-- tests/integration/test_event_rules.py checks each new expression against its old pattern on generated
-- strings. The type pattern has no counted repetition and stays.
-- Measured (callgrind, instructions per job on fresh databases of one server): an append of
-- job.protect.required 1,126,903 -> 1,034,634 (-8.2%); the raw canonical step at batch 10 1,189,097 ->
-- 1,135,484 (-4.5%).

-- 32 lower-case hex digits (W3C trace-context). SQL and IMMUTABLE: inlined into the expressions that call it.
CREATE FUNCTION is_trace_id(p_text text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT length(p_text) = 32 AND p_text ~ '^[0-9a-f]+$' $$;

-- A lower-case uuid in its 36-character form.
CREATE FUNCTION is_lower_uuid(p_text text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT p_text LIKE '________-____-____-____-____________' AND length(replace(p_text, '-', '')) = 32
       AND p_text ~ '^[-0-9a-f]+$'
$$;

-- As 0015, with the id and trace id patterns replaced by the functions above.
CREATE OR REPLACE FUNCTION event_problem(p_event jsonb)
RETURNS text
LANGUAGE sql STABLE
AS $$
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
$$;
