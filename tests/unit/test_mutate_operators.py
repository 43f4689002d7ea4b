"""harness mutate's operators on literal function definitions (no database): each one makes mutants that
parse (header and body), still replace the same function, differ from the original by the one change, and
none at all when its target is absent. Also the pieces a wrong mutant would come from: locating embedded
SQL in a PL/pgSQL body (INTO put back, PERFORM kept), the seeded order, the coverage probes."""

from __future__ import annotations

import pglast
import pytest

from harness.mutate.anatomy import analyse, create_function, identity, parses
from harness.mutate.generator import generate, seeded_order
from harness.mutate.operators import OPERATORS, choose
from harness.mutate.probes import instrument
from harness.mutate.source import Definition


def plpgsql(body: str, returns: str = "void", name: str = "f", header: str = "") -> str:
    return (
        f"CREATE OR REPLACE FUNCTION public.{name}(p_id bigint, p_kind text)\n RETURNS {returns}\n"
        f" LANGUAGE plpgsql\n{header}AS $function$\nDECLARE\n    v_id bigint;\nBEGIN\n{body}\nEND\n$function$"
    )


def sql_function(body: str, name: str = "g") -> str:
    return (
        f"CREATE OR REPLACE FUNCTION public.{name}(p_id bigint)\n RETURNS SETOF bigint\n LANGUAGE sql\n"
        f"AS $function$\n{body}\n$function$"
    )


PLAIN = plpgsql("    INSERT INTO audit (id) VALUES (p_id);\n    RETURN;")
# operator -> (a definition holding its target, language)
PRESENT = {
    "drop-for-update": plpgsql(
        "    SELECT j.id INTO v_id FROM jobs j WHERE j.kind = p_kind LIMIT 1 FOR UPDATE SKIP LOCKED;"
    ),
    "drop-skip-locked": plpgsql("    SELECT j.id INTO v_id FROM jobs j FOR UPDATE OF j SKIP LOCKED;"),
    "drop-on-conflict": plpgsql("    INSERT INTO jobs (id) VALUES (p_id) ON CONFLICT (id) DO NOTHING;"),
    "drop-where-conjunct": plpgsql("    UPDATE jobs SET status = 'dead' WHERE id = p_id AND kind = p_kind;"),
    "negate-comparison": plpgsql("    DELETE FROM jobs WHERE attempts >= 3 AND finished_at IS NULL;"),
    "swap-status-literal": plpgsql(
        "    UPDATE jobs SET status = 'running' WHERE status IN ('queued', 'retrying');"
    ),
    "left-join-to-inner": sql_function(
        "SELECT j.id FROM jobs j LEFT JOIN runs r ON r.job_id = j.id WHERE r.id IS NULL AND j.id > p_id"
    ),
    "drop-limit": sql_function("SELECT id FROM jobs WHERE id > p_id ORDER BY id LIMIT 10"),
    "drop-set-column": plpgsql(
        "    UPDATE jobs SET status = 'running', lease_owner = p_kind WHERE id = p_id;"
    ),
    "drop-notify": plpgsql(
        "    INSERT INTO jobs (id) VALUES (p_id);\n    PERFORM pg_notify('jobs', p_kind);"
    ),
    "drop-perform": plpgsql("    PERFORM reap(p_kind);\n    RETURN;"),
    "drop-raise": plpgsql(
        "    IF p_id < 0 THEN\n        RAISE EXCEPTION 'bad id %; try again', p_id USING ERRCODE = 'P0001';\n    END IF;"
    ),
    "drop-statement": plpgsql("    v_id := p_id + 1;\n    INSERT INTO jobs (id) VALUES (v_id);"),
    "negate-condition": plpgsql(
        "    IF p_kind = 'x' THEN\n        RETURN;\n    ELSIF p_id > 2 THEN\n        RETURN;\n    END IF;"
    ),
    "drop-security-definer": plpgsql(
        "    RETURN;", header=" SECURITY DEFINER\n SET search_path TO 'public'\n"
    ),
}
TRIGGER = (
    "CREATE TRIGGER on_events AFTER INSERT OR UPDATE OF events ON public.entities FOR EACH ROW "
    "WHEN ((current_setting('x.y'::text, true) IS DISTINCT FROM 'on'::text)) EXECUTE FUNCTION on_events()"
)
# What an absent target looks like for each operator: a body with none of it.
ABSENT = {
    "drop-for-update": plpgsql("    SELECT j.id INTO v_id FROM jobs j WHERE j.kind = p_kind;"),
    "drop-skip-locked": plpgsql("    SELECT j.id INTO v_id FROM jobs j FOR UPDATE;"),
    "drop-where-conjunct": plpgsql("    UPDATE jobs SET status = 'dead' WHERE id = p_id;"),
    "negate-comparison": PLAIN,
    "swap-status-literal": plpgsql("    UPDATE jobs SET note = 'queued up' WHERE id = p_id;"),
    "left-join-to-inner": sql_function("SELECT j.id FROM jobs j JOIN runs r ON r.job_id = j.id"),
    "drop-limit": sql_function("SELECT id FROM jobs WHERE id > p_id"),
    "drop-set-column": plpgsql("    UPDATE jobs SET status = 'running';"),
    "drop-notify": PLAIN,
    "drop-perform": PLAIN,
    "drop-raise": plpgsql("    RAISE NOTICE 'only a notice';\n    RETURN;"),
    "drop-statement": plpgsql("    IF p_id > 0 THEN\n        RETURN;\n    END IF;"),
    "negate-condition": PLAIN,
    "drop-security-definer": PLAIN,
    "drop-on-conflict": PLAIN,
}


def definition(text: str) -> Definition:
    language = "sql" if "LANGUAGE sql" in text else "plpgsql"
    return Definition("function", identity(create_function(text)), "f", language, text)


def mutants_of(operator: str, text: str) -> list:
    return generate([definition(text)], choose(operator)).mutants


@pytest.mark.parametrize("operator", sorted(PRESENT))
def test_each_function_operator_makes_parseable_different_mutants(operator: str) -> None:
    original = PRESENT[operator]
    language = "sql" if "LANGUAGE sql" in original else "plpgsql"
    found = mutants_of(operator, original)
    assert found, f"{operator} found nothing to change"
    for mutant in found:
        assert mutant.sql != original and mutant.operator == operator
        assert parses(mutant.sql, language), mutant.sql
        assert identity(create_function(mutant.sql)) == identity(create_function(original))
        changed = [
            line for line in mutant.diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")
        ]
        assert changed, mutant.diff
    assert len({m.sql for m in found}) == len(found)


@pytest.mark.parametrize("operator", sorted(ABSENT))
def test_an_operator_makes_nothing_when_its_target_is_absent(operator: str) -> None:
    assert mutants_of(operator, ABSENT[operator]) == []


def test_operators_make_exactly_the_expected_changes() -> None:
    changes = lambda op: sorted(m.change for m in mutants_of(op, PRESENT[op]))  # noqa: E731
    assert changes("drop-where-conjunct") == ["drop `id = p_id` from AND", "drop `kind = p_kind` from AND"]
    assert changes("negate-comparison") == [
        "`attempts >= 3`: >= -> <",
        "`finished_at IS NULL`: IS [NOT] NULL negated",
    ]
    assert changes("swap-status-literal") == [
        "'queued' -> 'retrying'",
        "'retrying' -> 'running'",
        "'running' -> 'succeeded'",
    ]
    assert len(mutants_of("negate-condition", PRESENT["negate-condition"])) == 2  # the IF and the ELSIF
    (raise_,) = mutants_of("drop-raise", PRESENT["drop-raise"])
    assert "RAISE" not in raise_.sql and "END IF;" in raise_.sql  # the `;` inside its string did not end it


def test_drop_skip_locked_keeps_the_lock_and_the_into_clause() -> None:
    (mutant,) = mutants_of("drop-skip-locked", PRESENT["drop-skip-locked"])
    assert "FOR UPDATE OF j" in mutant.sql and "SKIP LOCKED" not in mutant.sql
    assert "INTO v_id" in mutant.sql  # PL/pgSQL cut the INTO out of the parsed text; it is put back
    body = pglast.parse_plpgsql(mutant.sql)[0]["PLpgSQL_function"]["action"]["PLpgSQL_stmt_block"]["body"]
    assert body[0]["PLpgSQL_stmt_execsql"]["into"] is True


def test_perform_is_rewritten_as_perform_and_dropped_whole() -> None:
    text = plpgsql("    PERFORM reap(p_kind) WHERE p_id > 0 AND p_kind <> '';\n    RETURN;")
    for mutant in mutants_of("drop-where-conjunct", text):
        assert "PERFORM reap(p_kind)" in mutant.sql and "SELECT reap" not in mutant.sql
    (dropped,) = mutants_of("drop-perform", text)
    assert "reap" not in dropped.sql and parses(dropped.sql, "plpgsql")


def test_trigger_operators() -> None:
    trigger = Definition("trigger", "on_events ON entities", "on_events", "trigger", TRIGGER, "A", "entities")
    found = generate([trigger], choose("trigger-drop-event,trigger-drop-when")).mutants
    assert sorted(m.change.split(" (")[0] for m in found) == [
        "drop WHEN",
        "the trigger no longer fires on INSERT",
        "the trigger no longer fires on UPDATE",
    ]
    for mutant in found:
        statement, enable = mutant.sql.split(";\n")
        assert statement.startswith("CREATE OR REPLACE TRIGGER on_events")
        assert enable == "ALTER TABLE entities ENABLE ALWAYS TRIGGER on_events"  # its state kept
        pglast.parse_sql(mutant.sql)
    no_update = next(m for m in found if m.change.endswith("UPDATE"))
    assert "UPDATE" not in no_update.sql.split(";")[0] and "OF events" not in no_update.sql
    plain = Definition(
        "trigger",
        "t ON x",
        "t",
        "trigger",
        "CREATE TRIGGER t AFTER INSERT ON x FOR EACH ROW EXECUTE FUNCTION f()",
    )
    assert generate([plain], choose("trigger-drop-event,trigger-drop-when")).mutants == []


def test_seeded_order_is_deterministic_and_spread_over_functions() -> None:
    texts = [
        PRESENT["negate-comparison"].replace(".f(", ".f1("),
        PRESENT["swap-status-literal"].replace(".f(", ".h("),
        PRESENT["drop-where-conjunct"].replace(".f(", ".k("),
    ]
    found = generate([definition(t) for t in texts], list(OPERATORS.values())).mutants
    first, again = seeded_order(found, 7), seeded_order(found, 7)
    assert [m.id for m in first] == [m.id for m in again]
    assert sorted(m.id for m in first) == sorted(m.id for m in found)
    assert len({m.target for m in first[:3]}) == 3  # one of each function before a second of any
    assert [m.id for m in seeded_order(found, 8)] != [m.id for m in first]


def test_probes_go_before_every_mutable_statement_and_still_parse() -> None:
    text = PRESENT["negate-condition"].replace("RETURN;\n    ELSIF", "PERFORM 1;\n        RETURN;\n    ELSIF")
    anatomy = analyse(text, "plpgsql")
    instrumented, placed = instrument(4, anatomy)
    assert parses(instrumented, "plpgsql")
    assert [s.kind for s in anatomy.statements] == [
        "if",
        "perform",
    ]  # a bare RETURN changes nothing to mutate
    assert placed == {"f4.s0", "f4.s1"}
    assert instrumented.index("harness-mutate-probe f4.s0") < instrumented.index("IF p_kind")
    assert instrumented.index("harness-mutate-probe f4.s1") < instrumented.index("PERFORM 1")


def test_dropping_limit_1_of_a_select_into_is_judged_equivalent_by_its_rule() -> None:
    into = plpgsql("    SELECT j.id INTO v_id FROM jobs j ORDER BY j.id LIMIT 1;")
    (mutant,) = mutants_of("drop-limit", into)
    assert mutant.equivalent and "keeps the first row" in mutant.equivalent
    strict = plpgsql("    SELECT j.id INTO STRICT v_id FROM jobs j ORDER BY j.id LIMIT 1;")
    (not_equivalent,) = mutants_of("drop-limit", strict)  # STRICT: a second row is an error now
    assert not_equivalent.equivalent is None and "INTO STRICT v_id" in not_equivalent.sql
    assert all(m.equivalent is None for m in mutants_of("drop-limit", PRESENT["drop-limit"]))  # no INTO there
