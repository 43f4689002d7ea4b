-- class: core
-- executor_jobs' three CHECK constraints (kind, status, trace id) become one, which calls a function. Why: a
-- CHECK is stored as a serialized expression tree, and Postgres reads it back (stringToNode) for every
-- statement that writes the table. A constant array such as the five statuses is serialized byte by byte, so
-- reading the three back cost about 107,000 instructions per statement (callgrind, a single-row INSERT: 25,700
-- with no CHECK, 132,600 with the three), and the hot path writes executor_jobs in every gateway insert (one
-- per job), every claim and every completion. A call to a function is a three-node tree: the same statement
-- costs 48,400, and a 10-row UPDATE 504,000 against 565,000.
-- The rules are the same (a NULL passes, as it did: the NOT NULL constraints deal with those), and a broken
-- one now says which column and which value, where a failed CHECK named only itself.
-- Measured (callgrind, instructions per job, fresh databases of one server, after 0017 -> after this):
-- an append of job.protect.required 1,034,634 -> 948,892; the raw canonical step at batch 10 1,135,484 ->
-- 969,798. From 0016 to here, with 0017: appends -15.8%, the step -18.4% at batch 10 and -11.3% at batch 1
-- (2,728,886 -> 2,419,634), a no-op decision job (claim, lock, complete) -13.1% (467,531 -> 406,283).

CREATE FUNCTION executor_job_values_ok(p_kind text, p_status text, p_trace_id text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
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
$$;

ALTER TABLE executor_jobs
    DROP CONSTRAINT executor_jobs_kind_check,
    DROP CONSTRAINT executor_jobs_status_check,
    DROP CONSTRAINT executor_jobs_trace_id_check,
    ADD CONSTRAINT executor_jobs_values_check CHECK (executor_job_values_ok(kind, status, trace_id));
