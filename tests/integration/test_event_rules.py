"""The event rules rewritten for speed still accept exactly what they accepted before.

0017 rewrote the uuid and trace id checks of event_problem without counted regex repetitions, and 0018 the
trace id CHECK of executor_jobs with them. Here generated strings, most of them near misses of a valid value (a
character changed, added or dropped, a dash moved, upper case, other alphabets), go through both the new
expression and the old pattern in the real server, and any string the two disagree on fails the test.
0019 made append_event and append_events check their arguments instead of the event they build: generated
arguments must be refused exactly when the built event is malformed.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

UUID_PATTERN = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
TRACE_PATTERN = "^[0-9a-f]{32}$"
ALPHABET = "0123456789abcdefABCDEFgz-_ .é\n"


@st.composite
def near_misses(draw: st.DrawFn, valid: st.SearchStrategy[str]) -> str:
    """A valid value, then zero to three edits: replace, insert or delete a character."""
    text = list(draw(valid))
    for _ in range(draw(st.integers(0, 3))):
        edit = draw(st.sampled_from(["replace", "insert", "delete"]))
        at = draw(st.integers(0, max(len(text) - 1, 0)))
        char = draw(st.sampled_from(ALPHABET))
        if edit == "replace" and text:
            text[at] = char
        elif edit == "insert":
            text.insert(at, char)
        elif text:
            del text[at]
    return "".join(text)


uuids = st.uuids().map(str)
traces = st.binary(min_size=16, max_size=16).map(bytes.hex)
candidates = st.one_of(
    near_misses(uuids),
    near_misses(traces),
    uuids.map(str.upper),
    uuids.map(lambda u: u.replace("-", "")),
    st.text(ALPHABET, max_size=40),
)

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def disagreements(conn: psycopg.Connection[Any], new: str, pattern: str, texts: list[str]) -> list[Any]:
    # `new` is one of this module's fixed expressions over s; the texts travel as a parameter.
    return conn.execute(
        f"SELECT s, {new} AS new, s ~ %(pattern)s AS old FROM unnest(%(texts)s::text[]) s "
        f"WHERE ({new}) IS DISTINCT FROM (s ~ %(pattern)s)",
        {"pattern": pattern, "texts": texts},
    ).fetchall()


@SETTINGS
@given(texts=st.lists(candidates, min_size=40, max_size=40))
def test_is_lower_uuid_accepts_what_the_uuid_pattern_accepted(
    conn: psycopg.Connection[Any], texts: list[str]
) -> None:
    assert disagreements(conn, "is_lower_uuid(s)", UUID_PATTERN, texts) == []


@SETTINGS
@given(texts=st.lists(candidates, min_size=40, max_size=40))
def test_is_trace_id_accepts_what_the_trace_pattern_accepted(
    conn: psycopg.Connection[Any], texts: list[str]
) -> None:
    assert disagreements(conn, "is_trace_id(s)", TRACE_PATTERN, texts) == []


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("status", "finished", "executor_jobs.status must be queued, running, succeeded, retrying or dead"),
        ("kind", "misc", "executor_jobs.kind must be decision or execution"),
        ("trace_id", "AB" * 16, "executor_jobs.trace_id must be 32 lower-case hex digits"),
        ("trace_id", "ab" * 17, "executor_jobs.trace_id must be 32 lower-case hex digits"),
    ],
)
def test_executor_jobs_refuses_a_bad_value_naming_its_column(
    conn: psycopg.Connection[Any], column: str, value: str, message: str
) -> None:
    """0018 put executor_jobs' three CHECKs into one function; each rule still holds on every write."""
    entity = str(uuid.uuid4())
    conn.execute("SELECT request_protection(%s, 'rules')", (entity,))
    job = conn.execute("SELECT id FROM executor_jobs WHERE entity_id = %s", (entity,)).fetchone()[0]
    with pytest.raises(psycopg.errors.CheckViolation) as caught:
        conn.execute(f"UPDATE executor_jobs SET {column} = %s WHERE id = %s", (value, job))
    assert message in str(caught.value) and caught.value.diag.column_name == column
    assert caught.value.diag.constraint_name == "executor_jobs_values_check"
    # Values inside the rules pass, and so does a job without a trace id.
    conn.execute(
        "UPDATE executor_jobs SET status = 'dead', kind = 'execution', trace_id = NULL WHERE id = %s", (job,)
    )
    conn.execute("UPDATE executor_jobs SET trace_id = %s WHERE id = %s", ("0123456789abcdef" * 2, job))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        # Fixed values, not uuid4(): test ids must be the same in every collecting process (pytest -n).
        ("id", "D625B6B5-C8AF-4991-98DE-8AF4448F8E8B", 'has no "id" (a lower-case uuid)'),
        ("id", "67990271-f242-4a18-915f-4a5a5efa1ee-", 'has no "id" (a lower-case uuid)'),
        ("trace_id", "ab" * 15, 'has a "trace_id" that is not 32 lower-case hex digits'),
        ("trace_id", "g" * 32, 'has a "trace_id" that is not 32 lower-case hex digits'),
    ],
)
def test_a_malformed_id_is_still_refused_with_its_message(
    conn: psycopg.Connection[Any], field: str, value: str, message: str
) -> None:
    event = {"id": str(uuid.uuid4()), "type": "document.note.added", "trace_id": "a" * 32, field: value}
    found = conn.execute("SELECT event_problem(%s::jsonb)", (psycopg.types.json.Jsonb(event),)).fetchone()[0]
    assert found is not None and message in found
    ok = {**event, field: str(uuid.uuid4()) if field == "id" else "0123456789abcdef" * 2}
    assert (
        conn.execute("SELECT event_problem(%s::jsonb)", (psycopg.types.json.Jsonb(ok),)).fetchone()[0] is None
    )


# -- 0019: the append functions check their arguments -----------------------------------------------------------
event_types = st.one_of(
    st.sampled_from(["document.protect.requested", "job.protect.required", "document.note_1.added"]),
    near_misses(st.sampled_from(["document.protect.requested", "job.tsa.completed"])),
    st.text("abcXYZ._ 1", max_size=12),
    st.none(),
)
# JSON texts: "null" is a JSON null payload (malformed), None no payload at all (filled with {}).
payloads = st.one_of(st.none(), st.sampled_from(["{}", '{"a": [1]}', "[]", '"x"', "3", "null", "true"]))
arguments = st.tuples(event_types, payloads, st.one_of(st.none(), near_misses(traces)))

# The event append_event builds from (type, payload, trace id), as 0019 builds it; %s are psycopg's.
BUILT = """jsonb_build_object('id', gen_random_uuid(), 'type', a.type, 'at', clock_timestamp(),
    'correlation_id', NULL, 'trace_id', coalesce(a.trace_id, new_trace_id()), 'causation_id', NULL,
    'payload', coalesce(a.payload, '{}'::jsonb))"""
ARGUMENTS = "unnest(%s::text[], %s::jsonb[], %s::text[]) AS a (type, payload, trace_id)"


def columns(args: list[tuple[Any, ...]]) -> tuple[list[Any], ...]:
    return tuple(list(column) for column in zip(*args, strict=True))


@SETTINGS
@given(args=st.lists(arguments, min_size=40, max_size=40))
def test_suspect_arguments_are_exactly_those_of_a_malformed_event(
    conn: psycopg.Connection[Any], args: list[tuple[Any, ...]]
) -> None:
    wrong = conn.execute(
        f"SELECT a.* FROM {ARGUMENTS} "
        f"WHERE event_arguments_suspect(a.type, a.payload, a.trace_id) IS DISTINCT FROM "
        f"(event_problem({BUILT}) IS NOT NULL)",
        columns(args),
    ).fetchall()
    assert wrong == []


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=st.lists(arguments, min_size=8, max_size=8))
def test_append_event_refuses_exactly_the_malformed_events_with_the_core_trigger_off(
    conn: psycopg.Connection[Any], args: list[tuple[Any, ...]]
) -> None:
    """With the core trigger disabled, append_event's own check is all that stands between a caller and the
    event list: each malformed event is refused with PJ002, every other one is appended."""
    entity = str(uuid.uuid4())
    conn.execute("SELECT request_protection(%s, 'rules')", (entity,))
    with conn.transaction(force_rollback=True):
        conn.execute("ALTER TABLE document_entities DISABLE TRIGGER on_document_entity_events_change")
        for type_, payload, trace_id in args:
            malformed = conn.execute(
                f"SELECT event_problem({BUILT}) IS NOT NULL FROM {ARGUMENTS}",
                ([type_], [payload], [trace_id]),
            ).fetchone()[0]
            try:
                with conn.transaction():
                    conn.execute(
                        "SELECT append_event(%s, %s, %s::jsonb, NULL, %s)", (entity, type_, payload, trace_id)
                    )
                refused = False
            except psycopg.Error as exc:
                assert exc.sqlstate == "PJ002" and "malformed event" in str(exc)
                refused = True
            assert refused == malformed, (type_, payload, trace_id)
