"""The three reports of a run (JSON, JUnit, HTML) and the terminal table, from a hand-built RunSummary."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.errors import BadInput
from harness.history import Op, OpType
from harness.records import (
    AlertExpectation,
    Anomaly,
    CheckResult,
    Expectations,
    FaultSpec,
    FaultWindow,
    FinalState,
    RunRecord,
    RunSummary,
    Scenario,
    ScenarioResult,
    Verdict,
    Workload,
)
from harness.reports import load_report, report_table, summary_table, write_reports
from harness.reports.series import series_of
from harness.reports.timeline import timeline_svg

T0 = 1_790_000_000.0  # the wall clock when the scenario run started
START = T0 + 2.0  # the workload start: the timeline's zero
PLANTED = "<script>alert('x')</script> job 17 & entity e3"


def history(seconds: float = 20.0, rate: float = 4.0, fault: tuple[float, float] = (5.0, 11.0)) -> list[Op]:
    """Requests at `rate`, a few ambiguous inside the fault, and observer samples of a backlog and a gap that
    build while the fault holds, and of flows that close a second after their request, or after the heal."""
    ops: list[Op] = []
    closes: list[float] = []

    def add(at: float, process: str, kind: OpType, value: object = None, error: str | None = None) -> None:
        f = "sample" if process == "observer" else "request"
        ops.append(Op(len(ops), at + 2.0, START + at, process, kind, f, value, error))

    for i in range(int(seconds * rate)):
        at = i / rate
        client = f"client-{i % 2}"
        add(at, client, OpType.INVOKE, {"entity_id": f"e{i}"})
        inside = fault[0] <= at <= fault[1]
        kind = OpType.INFO if inside and i % 7 == 0 else OpType.FAIL if i == 30 else OpType.OK
        add(at + 0.05, client, kind, {"entity_id": f"e{i}"}, "timeout" if kind is OpType.INFO else None)
        closes.append(fault[1] + 1.5 if inside else at + 1.0)
    backlog = 0.0
    for step in range(int((seconds + 6) * 2)):
        at = step / 2
        backlog = backlog + 3 if fault[0] <= at <= fault[1] else max(0.0, backlog - 5)
        gap = (at - fault[0]) if fault[0] <= at <= fault[1] + 1 else 0.3
        sample = {"backlog": backlog, "oldest_age_s": 0.2, "event_to_job_gap_s": round(gap, 2), "dead": 0}
        closed = sum(close <= at for close in closes)
        add(at, "observer", OpType.OK, sample | {"flows_closed": closed, "alerts_firing": int(9 <= at <= 13)})
    ops.sort(key=lambda op: op.wall)
    return [
        Op(i, op.time, op.wall, op.process, op.type, op.f, op.value, op.error) for i, op in enumerate(ops)
    ]


def scenario(name: str, catch: tuple[str, ...] = ()) -> Scenario:
    return Scenario(
        name=name,
        description=f"{name}: the core trigger is disabled for six seconds under load, then re-enabled.",
        suites=("nightly",),
        seed=42,
        workload=Workload(flows=80, rate=4.0),
        faults=(FaultSpec("disable-core-trigger", at=5.0, duration=6.0),),
        expect=Expectations(
            checks=("no-lost-job", "no-duplicate-job"),
            catch=catch,
            alerts_fire=(AlertExpectation("event_to_job_gap_high", within_s=5.0),),
            gap_p99_s=2.0,
        ),
        path=Path("scenarios") / f"{name}.yaml",
    )


def record(
    name: str, catch: tuple[str, ...] = (), samples: bool = True, took_effect: bool | None = True
) -> RunRecord:
    ops = history()
    if not samples:
        ops = [op for op in ops if op.process != "observer"]
    trigger = ("disable-core-trigger", "disable-core-trigger(method=alter)", 7.0, 13.0, START + 5, START + 11)
    kill = ("kill-worker", "kill-worker(role=orchestrator)", 14.0, 15.5, START + 12, START + 13.5)
    faults = (
        FaultWindow(*trigger, took_effect=took_effect, evidence="pg_trigger.tgenabled = 'D' read back"),
        FaultWindow(*kill, took_effect=True, evidence="pid 4242 seen dead"),
    )
    alerts = (
        {"rule": "event_to_job_gap_high", "state": "pending", "at": START + 7.0, "value": 2.1},
        {"rule": "event_to_job_gap_high", "state": "firing", "at": START + 9.0, "value": 4.0},
        {"rule": "event_to_job_gap_high", "state": "resolved", "at": START + 13.0, "value": 0.4},
        {"rule": "worker_down", "labels": {"role": "orchestrator"}, "state": "firing", "at": START + 12.5},
        {"rule": "worker_down", "labels": {"role": "orchestrator"}, "state": "resolved", "at": START + 14.0},
    )
    return RunRecord(
        scenario=scenario(name, catch),
        ops=tuple(ops),
        faults=faults,
        samples=(),
        final=FinalState(alert_history=alerts),
        drained=True,
        workload_start_wall=START,
        workload_end_wall=START + 20.0,
    )


def result(
    name: str, verdict: Verdict, checks: tuple[CheckResult, ...], folder: Path, **kw: object
) -> ScenarioResult:
    rec = kw.pop("record", record(name))
    return ScenarioResult(name, verdict, checks, 42, T0, 31.5, rec, folder / name, **kw)  # type: ignore[arg-type]


WITNESS = {"event_id": "9f1", "type": "job.protect.required", "at": "12:00:01.2"}
LOST = Anomaly("lost", PLANTED, ("e3",), (WITNESS,))
DUPLICATED = Anomaly("duplicated", "job 21 (protect, entity e7) exists twice: rows 21 and 22.", ("e7",),
                     ({"job_id": 21}, {"job_id": 22}))  # fmt: skip
CRASH = "Traceback (most recent call last):\nProvisionError: initdb failed"
COMMAND = "harness run nightly --seed 42"
VERSIONS = {"harness": "0.1.0", "python": "3.11.9", "postgres": "16.4"}


def summary(folder: Path) -> RunSummary:
    """One valid, one invalid (with anomalies), one unknown (a crashed checker) and one that could not run."""
    valid = CheckResult("no-lost-job", Verdict.VALID, counts={"required": 80, "materialized": 80})
    lost = CheckResult("no-lost-job", Verdict.INVALID, (LOST, DUPLICATED), {"lost": 1})
    crashed = CheckResult("alerts-fired", Verdict.UNKNOWN, error="Traceback ...\nKeyError: 'rule'")
    no_dup = CheckResult("no-duplicate-job", Verdict.VALID)
    scenarios = (
        result("core-trigger-disabled", Verdict.VALID, (valid, no_dup), folder),
        result("dedupe-bug", Verdict.INVALID, (lost, no_dup), folder),
        result("alert-window", Verdict.UNKNOWN, (valid, crashed), folder, record=record("x", samples=False)),
        ScenarioResult(
            "postgres-crash", Verdict.UNKNOWN, (), 42, T0, 0.8, None, folder / "postgres-crash", CRASH
        ),
    )
    return RunSummary(
        "20261122-120000-ab12", COMMAND, "0123456789abcdef", True, VERSIONS, 42, T0, 120.0, scenarios
    )


def small_run(*results: ScenarioResult, interrupted: bool = False) -> RunSummary:
    return RunSummary("r", "harness run x", "abc", False, {}, 7, T0, 4.0, results, interrupted)


@pytest.fixture
def run_folder(tmp_path: Path) -> Path:
    assert write_reports(summary(tmp_path), tmp_path) == {
        "json": tmp_path / "report.json", "junit": tmp_path / "junit.xml", "html": tmp_path / "report.html"
    }  # fmt: skip
    return tmp_path


def test_writes_three_files_and_no_temporary_ones(run_folder: Path) -> None:
    assert sorted(p.name for p in run_folder.iterdir() if p.is_file()) == [
        "junit.xml",
        "report.html",
        "report.json",
    ]


def test_report_json_holds_verdicts_checks_and_anomalies(run_folder: Path) -> None:
    document = load_report(run_folder)
    assert (document["verdict"], document["command"], document["seed"]) == ("invalid", COMMAND, 42)
    assert (document["git_sha"], document["git_dirty"], document["interrupted"]) == (
        "0123456789abcdef",
        True,
        False,
    )
    assert document["versions"] == VERSIONS and document["duration_s"] == 120.0
    assert document["counts"] == {"scenarios": 4, "valid": 1, "invalid": 1, "unknown": 2, "not-applicable": 0}
    by_name = {s["name"]: s for s in document["scenarios"]}
    verdicts = {n: s["verdict"] for n, s in by_name.items()}
    assert verdicts == {"core-trigger-disabled": "valid", "dedupe-bug": "invalid", "alert-window": "unknown",
                        "postgres-crash": "unknown"}  # fmt: skip
    bug = by_name["dedupe-bug"]
    lost = bug["checks"][0]
    assert (lost["name"], lost["verdict"], lost["outcome"], lost["counts"]) == (
        "no-lost-job",
        "invalid",
        "failed",
        {"lost": 1},
    )
    assert lost["anomalies"][0] == {
        "kind": "lost",
        "explanation": PLANTED,
        "entities": ["e3"],
        "witnesses": [WITNESS],
    }
    assert [a["kind"] for a in lost["anomalies"]] == ["lost", "duplicated"]
    assert bug["failed"] == ["no-lost-job"] and bug["folder"] == "dedupe-bug"  # relative to the run folder
    assert (bug["seed"], bug["repeat"], bug["duration_s"], bug["error"]) == (42, 0, 31.5, None)
    window = bug["faults"][0]
    assert (window["label"], window["start"], window["end"], window["took_effect"]) == (
        "disable-core-trigger(method=alter)", 7.0, 13.0, True)  # fmt: skip
    assert (window["start_since_workload_s"], window["end_since_workload_s"]) == (5.0, 11.0)
    assert window["evidence"] == "pg_trigger.tgenabled = 'D' read back"
    assert by_name["alert-window"]["undecided"] == ["alerts-fired"]
    crashed = by_name["postgres-crash"]
    assert crashed["checks"] == [] and crashed["error"] == CRASH and crashed["faults"] == []


def test_report_json_is_strict_json_for_odd_witness_values(tmp_path: Path) -> None:
    odd = Anomaly("gap", "nan gap", witnesses=({"gap": math.nan, "at": Path("x"), "ids": {3}},))
    bad = ScenarioResult(
        "odd", Verdict.INVALID, (CheckResult("gap-slo", Verdict.INVALID, (odd,)),), 1, T0, 1.0, None
    )
    write_reports(small_run(bad), tmp_path)
    text = (tmp_path / "report.json").read_text()
    assert "NaN" not in text
    witnesses = json.loads(text)["scenarios"][0]["checks"][0]["anomalies"][0]["witnesses"]
    assert witnesses == [{"gap": None, "at": "x", "ids": [3]}]


def test_load_report_names_the_folder_when_there_is_no_report(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no report here"):
        load_report(tmp_path)
    (tmp_path / "report.json").write_text('{"verdict": "valid"')
    with pytest.raises(BadInput, match="cut off"):
        load_report(tmp_path)


def test_junit_has_one_case_per_scenario_check(run_folder: Path) -> None:
    root = ET.parse(run_folder / "junit.xml").getroot()
    assert root.tag == "testsuites"
    cases = root.findall("./testsuite/testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("core-trigger-disabled", "no-lost-job"), ("core-trigger-disabled", "no-duplicate-job"),
        ("dedupe-bug", "no-lost-job"), ("dedupe-bug", "no-duplicate-job"),
        ("alert-window", "no-lost-job"), ("alert-window", "alerts-fired"),
        ("postgres-crash", "run"),
    ]  # fmt: skip
    failure = cases[2].find("failure")
    assert failure is not None and failure.get("message") == PLANTED and failure.get("type") == "lost"
    assert PLANTED in (failure.text or "") and "job 21 (protect, entity e7)" in (failure.text or "")
    undecided = cases[5].find("error")
    assert undecided is not None and "KeyError" in (undecided.get("message") or "")
    crashed = cases[6].find("error")
    assert crashed is not None and "initdb failed" in (crashed.text or "")
    assert len([c for c in cases if not list(c)]) == 4  # passed: no failure, error or skipped inside
    assert [root.get(k) for k in ("tests", "failures", "errors", "skipped")] == ["7", "1", "2", "0"]
    for suite in root.findall("testsuite"):
        inside = suite.findall("testcase")
        assert int(suite.get("tests", "")) == len(inside)
        assert int(suite.get("failures", "")) == sum(c.find("failure") is not None for c in inside)
        assert int(suite.get("errors", "")) == sum(c.find("error") is not None for c in inside)
    properties = {p.get("name"): p.get("value") for p in root.findall("./testsuite[1]/properties/property")}
    assert (properties["seed"], properties["command"], properties["verdict"]) == ("42", COMMAND, "valid")


def test_junit_marks_repeats_and_a_caught_bug_passes(tmp_path: Path) -> None:
    found = CheckResult("no-duplicate-job", Verdict.INVALID, (DUPLICATED,))
    missed = CheckResult("no-duplicate-job", Verdict.VALID)
    rec = record("dedupe-bug", catch=("no-duplicate-job",))
    runs = [ScenarioResult("dedupe-bug", verdict, (check,), 7, T0, 2.0, rec, repeat=n)
            for n, (verdict, check) in enumerate([(Verdict.VALID, found), (Verdict.INVALID, missed)])]  # fmt: skip
    write_reports(small_run(*runs), tmp_path)
    cases = ET.parse(tmp_path / "junit.xml").getroot().findall("./testsuite/testcase")
    assert [c.get("classname") for c in cases] == ["dedupe-bug#1", "dedupe-bug#2"]
    assert cases[0].find("failure") is None and "job 21" in (cases[0].findtext("system-out") or "")
    assert "not caught" in (cases[1].find("failure").get("message") or "")  # type: ignore[union-attr]
    check = load_report(tmp_path)["scenarios"][0]["checks"][0]
    assert (check["verdict"], check["expected"], check["outcome"]) == ("invalid", "invalid", "passed")


def test_junit_is_not_green_when_the_scenario_is_worse_than_its_checks(tmp_path: Path) -> None:
    rec = record("no-bite", took_effect=False)
    run = ScenarioResult(
        "no-bite", Verdict.UNKNOWN, (CheckResult("no-lost-job", Verdict.VALID),), 1, T0, 1.0, rec
    )
    write_reports(small_run(run, interrupted=True), tmp_path)
    root = ET.parse(tmp_path / "junit.xml").getroot()
    errors = root.findall(".//error")
    assert "never took effect" in (errors[0].get("message") or "")
    assert errors[1].get("type") == "interrupted"
    assert (root.get("tests"), root.get("errors")) == ("3", "2")


def test_junit_survives_control_characters(tmp_path: Path) -> None:
    check = CheckResult("no-lost-job", Verdict.UNKNOWN, error="bad byte \x00\x1b[31m here")
    write_reports(small_run(ScenarioResult("ctl", Verdict.UNKNOWN, (check,), 1, T0, 1.0, None)), tmp_path)
    error = ET.parse(tmp_path / "junit.xml").getroot().find(".//error")
    assert error is not None and "bad byte" in (error.text or "")


def test_html_shows_every_scenario_and_escapes_anomalies(run_folder: Path) -> None:
    page = (run_folder / "report.html").read_text()
    for name in ("core-trigger-disabled", "dedupe-bug", "alert-window", "postgres-crash"):
        assert f'<a href="#s-{name}">{name}</a>' in page and f'id="s-{name}"' in page
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; job 17 &amp; entity e3" in page
    assert "job 21 (protect, entity e7) exists twice" in page and "ProvisionError: initdb failed" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing fetched
    assert "No recorded run" in page and "no observer samples recorded" in page


def test_html_timeline_shades_each_fault_window(run_folder: Path) -> None:
    page = (run_folder / "report.html").read_text()
    svgs = [part.split("</svg>")[0] for part in page.split("<svg")[1:]]
    assert len(svgs) == 3  # the scenario that could not run has no timeline
    for svg in svgs:
        ET.fromstring("<svg" + svg + "</svg>")  # well-formed, so browsers draw all of it
        assert svg.count('class="fault"') == 2 + 1  # two windows, one legend swatch
        assert "disable-core-trigger(method=alter)" in svg and "kill-worker(role=orchestrator)" in svg
        assert "event_to_job_gap_high: firing at +9.0s" in svg and "worker_down{role=orchestrator}" in svg
    assert "<polyline" in svgs[0] and "<polyline" not in svgs[2]


def test_timeline_reads_runner_samples_and_iso_alert_times() -> None:
    base = record("s", samples=False)
    at = dt.datetime.fromtimestamp(START + 3.0, dt.UTC).isoformat()
    final = FinalState(alert_history=({"rule": "backlog_high", "state": "firing", "at": at},))
    rec = dataclasses.replace(
        base, samples=({"wall": START + 1.0, "backlog": 4}, {"at": START + 2, "backlog": 6}), final=final
    )
    series = series_of(rec)
    assert [(t, s["backlog"]) for t, s in series.samples] == [(1.0, 4), (2.0, 6)]
    assert series.alerts == {"backlog_high": [(pytest.approx(3.0), "firing", None)]}
    assert series.faults[0][:3] == (5.0, 11.0, "disable-core-trigger(method=alter)")
    assert {o for _t, o, _d in series.requests} == {"ok", "fail", "info"}
    assert (series.gap_name, series.gap_limit) == ("oldest queued job", None)  # no gap KPI sampled
    assert "backlog_high: firing at +3.0s" in timeline_svg(rec)
    full = series_of(record("full"))
    assert (full.gap_name, full.gap_limit, max(v for _t, v in full.gap)) == ("event-to-job gap", 2.0, 7.0)
    opened = dict(full.open_flows)
    assert opened[4.0] <= 5 and opened[11.0] >= 15 and opened[25.5] == 0  # builds in the fault, all close


def test_summary_table_names_failed_and_undecided_checks(tmp_path: Path) -> None:
    lines = summary_table(summary(tmp_path)).splitlines()
    assert lines[0].split() == ["scenario", "verdict", "duration", "failed", "unknown"]
    assert lines[2].split() == ["core-trigger-disabled", "valid", "31.5s", "-", "-"]
    assert lines[3].split() == ["dedupe-bug", "invalid", "31.5s", "no-lost-job", "-"]
    assert lines[4].endswith("alerts-fired") and lines[5].endswith("run")
    assert lines[-1] == f"verdict: INVALID (1 valid, 1 invalid, 2 unknown) - reports in {tmp_path}"
    assert "\033[31m" in summary_table(summary(tmp_path), colour=True)


def test_a_stored_report_shows_the_same_table(run_folder: Path) -> None:
    assert report_table(load_report(run_folder), run_folder) == summary_table(summary(run_folder), run_folder)


def test_a_caught_bug_unseen_while_a_fault_did_not_bite_is_undecided(tmp_path: Path) -> None:
    rec = record("no-bite", catch=("no-duplicate-job",), took_effect=False)
    missed = CheckResult("no-duplicate-job", Verdict.VALID)
    write_reports(small_run(ScenarioResult("no-bite", Verdict.UNKNOWN, (missed,), 1, T0, 1.0, rec)), tmp_path)
    case = ET.parse(tmp_path / "junit.xml").getroot().find("./testsuite/testcase")
    assert case is not None and case.find("failure") is None
    assert "may not be planted" in (case.find("error").get("message") or "")  # type: ignore[union-attr]
