"""Gateway checkers: strict mode admits nothing around the gateway; compat warns once per legacy insert."""

from __future__ import annotations

from typing import Any

from harness.checkers import compat_warnings, strict_gateway
from harness.records import FaultEffects, Verdict
from tests.quality.records import T0, World, healthy


def _legacy_insert(world: World, s: float, *, warn: bool = True) -> dict[str, Any]:
    """What the compat guard does with a legacy insert: a `_compat` required event, its job, a warning."""
    entity = next(iter(world.entities))
    event = world.append(entity, "job.protect.required", s, {"_compat": {"source": "legacy:user_documents"}})
    job = world.job_for(event)
    if warn:
        world.compat_warnings.append(
            {
                "id": len(world.compat_warnings) + 1,
                "at": T0 + s,
                "source": "legacy:user_documents",
                "job_type": "protect",
                "entity_id": entity,
                "job_id": job["id"],
            }
        )
    return job


def _nemesis_inserts(world: World, s: float, mode: str, count: int) -> None:
    """The legacy-insert fault's window, with the effects it reports: the mode it held, the inserts made."""
    redirected = count if mode == "compat" else 0
    world.fault("legacy-insert", s, s + 0.1, effects=FaultEffects({"gateway_mode": mode}, redirected))


def test_strict_mode_admitting_a_compat_warning_or_a_foreign_job_is_caught() -> None:
    world = healthy()
    world.settings["gateway_mode"] = "strict"
    assert strict_gateway.check(world.record()).verdict is Verdict.VALID
    job = _legacy_insert(world, 9.0)  # the guard redirected instead of rejecting
    result = strict_gateway.check(world.record())
    assert result.verdict is Verdict.INVALID
    warning, redirected = result.anomalies  # the warning, and the job it materialized via compat_redirect
    assert warning.kind == redirected.kind == "admitted"
    assert warning.entities == redirected.entities == (job["entity_id"],)
    assert "compat warning 1" in warning.explanation and "via compat_redirect" in redirected.explanation
    world.compat_warnings.clear()
    job["materialized_via"] = "legacy:user_documents"  # ... or let the row straight in
    [anomaly] = strict_gateway.check(world.record()).anomalies
    assert anomaly.kind == "admitted" and "via legacy:user_documents" in anomaly.explanation


def test_strict_is_judged_inside_the_nemesis_window_that_switched_to_it() -> None:
    world = healthy()
    _nemesis_inserts(world, 8.95, "strict", 3)
    _legacy_insert(world, 9.0)  # during the strict window (between the start invoke and the heal)
    result = strict_gateway.check(world.record())  # final settings say compat again
    assert result.verdict is Verdict.INVALID and result.anomalies[0].kind == "admitted"
    world.compat_warnings[0]["at"] = T0 + 20.0  # a warning from later, back under compat
    world.jobs[-1]["created_at"] = T0 + 20.0
    assert strict_gateway.check(world.record()).verdict is Verdict.VALID


def test_compat_mode_is_only_counted_by_strict_gateway() -> None:
    world = healthy()
    _legacy_insert(world, 9.0)
    result = strict_gateway.check(world.record())
    assert result.verdict is Verdict.VALID and result.counts["compat_warnings"] == 1


def test_each_legacy_insert_under_compat_has_exactly_one_warning() -> None:
    world = healthy()
    _nemesis_inserts(world, 9.0, "compat", 2)
    _legacy_insert(world, 9.02)
    _legacy_insert(world, 9.03)
    result = compat_warnings.check(world.record())
    assert result.verdict is Verdict.VALID and result.counts["legacy_inserts_under_compat"] == 2


def test_a_redirected_insert_without_its_warning_is_unwarned() -> None:
    world = healthy()
    _nemesis_inserts(world, 9.0, "compat", 2)
    _legacy_insert(world, 9.02)
    silent = _legacy_insert(world, 9.03, warn=False)
    result = compat_warnings.check(world.record())
    assert result.verdict is Verdict.INVALID
    [anomaly] = result.anomalies
    assert anomaly.kind == "unwarned-legacy-insert" and anomaly.entities == (silent["entity_id"],)
    assert anomaly.witnesses[0]["job_id"] == silent["id"]


def test_an_insert_the_guard_dropped_silently_is_unwarned_by_count() -> None:
    world = healthy()
    _nemesis_inserts(world, 9.0, "compat", 1)
    [anomaly] = compat_warnings.check(world.record()).anomalies
    assert anomaly.kind == "unwarned-legacy-insert" and "1 legacy insert(s)" in anomaly.explanation


def test_a_warning_naming_no_redirected_job_or_with_no_insert_is_spurious() -> None:
    world = healthy()
    entity = next(iter(world.entities))
    trigger_job = next(j for j in world.jobs if j["entity_id"] == entity)
    world.compat_warnings.append(
        {
            "id": 1,
            "at": T0 + 9.0,
            "source": "direct_insert",
            "job_type": "protect",
            "entity_id": entity,
            "job_id": trigger_job["id"],
        }
    )
    result = compat_warnings.check(world.record())
    assert result.verdict is Verdict.INVALID
    assert [a.kind for a in result.anomalies] == ["spurious-warning", "spurious-warning"]
    assert (
        result.anomalies[0].entities == (entity,)
        and "materialized via trigger" in result.anomalies[0].explanation
    )


def test_legacy_inserts_under_strict_expect_no_warning() -> None:
    world = healthy()
    _nemesis_inserts(world, 9.0, "strict", 3)
    result = compat_warnings.check(world.record())
    assert result.verdict is Verdict.VALID and result.counts["legacy_inserts_under_compat"] == 0
