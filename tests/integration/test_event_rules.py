"""The event id and trace id rules of 0017 and 0018 accept exactly what the old patterns accepted.

0017 rewrote the uuid and trace id checks of event_problem without counted regex repetitions, for speed, and
0018 the trace id CHECK of executor_jobs with them. Here generated strings, most of them near misses of a valid value (a
character changed, added or dropped, a dash moved, upper case, other alphabets), go through both the new
expression and the old pattern in the real server, and any string the two disagree on fails the test.
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
        ("id", str(uuid.uuid4()).upper(), 'has no "id" (a lower-case uuid)'),
        ("id", str(uuid.uuid4())[:-1] + "-", 'has no "id" (a lower-case uuid)'),
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
