-- class: core
-- The decision worker's batch in two round trips instead of two per job. It used to lock and read one
-- entity, then append that entity's next event, job after job, waiting for the server each time; a flow
-- has four decision jobs, so decisions set the pace of every end-to-end run. Now, per batch:
--   lock_entities_events(ids[])  every entity of the batch, locked in id order (so two decision workers never
--                                deadlock) until the transaction ends, with its events;
--   append_events(...)           every decided event in one UPDATE per entity, validated first, in the order
--                                given; the core trigger sees each one as it sees any append.
-- The worker sends the appends, the completions and the COMMIT together in one pipeline. lock_entity_events
-- (0004), the one-entity lock it replaces, has no caller left and goes.

CREATE FUNCTION lock_entities_events(p_entity_ids uuid[])
RETURNS TABLE (entity_id uuid, events jsonb)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    RETURN QUERY
    SELECT e.id, e.events FROM document_entities e
     WHERE e.id = ANY (p_entity_ids)
     ORDER BY e.id
       FOR UPDATE;
END
$$;

-- Appends events to entities: element i of every array is one event (entity, type, payload, correlation id,
-- trace id, causation id, and optionally its id; a missing id or trace id is generated, as append_event
-- does). Returns (entity_id, event_id) per event, in the order given. A malformed event raises PJ002, an
-- unknown entity PJ004; either way nothing is appended.
CREATE FUNCTION append_events(
    p_entity_ids      uuid[],
    p_types           text[],
    p_payloads        jsonb[],
    p_correlation_ids uuid[] DEFAULT NULL,
    p_trace_ids       text[] DEFAULT NULL,
    p_causation_ids   uuid[] DEFAULT NULL,
    p_event_ids       uuid[] DEFAULT NULL
)
RETURNS TABLE (entity_id uuid, event_id uuid)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET plan_cache_mode = force_generic_plan
AS $$
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
        SELECT u.ord, u.entity_id,
               jsonb_build_object(
                   'id', coalesce(u.event_id, gen_random_uuid()), 'type', u.type, 'at', clock_timestamp(),
                   'correlation_id', u.correlation_id, 'trace_id', coalesce(u.trace_id, new_trace_id()),
                   'causation_id', u.causation_id, 'payload', coalesce(u.payload, '{}'::jsonb)) AS event
          FROM unnest(p_entity_ids, p_types, p_payloads, p_correlation_ids, p_trace_ids, p_causation_ids,
                      p_event_ids)
               WITH ORDINALITY AS u (entity_id, type, payload, correlation_id, trace_id, causation_id, event_id,
                                     ord)
    ), checked AS (
        SELECT b.ord, b.entity_id, b.event, validate_event(b.event) AS valid FROM built b
    ), appended AS (
        UPDATE document_entities e
           SET events = e.events || n.events, updated_at = clock_timestamp()
          FROM (SELECT c.entity_id, jsonb_agg(c.event ORDER BY c.ord) AS events
                  FROM checked c GROUP BY c.entity_id) n
         WHERE e.id = n.entity_id
    )
    SELECT c.entity_id, (c.event ->> 'id')::uuid FROM checked c ORDER BY c.ord;
END
$$;

DROP FUNCTION lock_entity_events(uuid);
