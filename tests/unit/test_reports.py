"""The three reports of a run (JSON, JUnit, HTML) and the terminal table, from a hand-built RunSummary."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.errors import BadInput
from harness.history import Op, OpType
from harness.model import (
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
from harness.reports import load_report, summary_table, write_reports

T0 = 1_790_000_000.0  # the wall clock when the scenario run started
START = T0 + 2.0  # the workload start: the timeline's zero
PLANTED = "<script>alert('x')</script> job 17 & entity e3"


def history(seconds: float = 20.0, rate: float = 4.0, fault: tuple[float, float] = (5.0, 11.0)) -> list[Op]:
    """Requests at `rate`, a few ambiguous inside the fault, and observer samples of a backlog that builds
    while the fault holds and drains after the heal."""
    ops: list[Op] = []

    def add(
        at: float, process: str, kind: OpType, f: str, value: object = None, error: str | None = None
    ) -> None:
        ops.append(Op(len(ops), at + 2.0, START + at, process, kind, f, value, error))

    for i in range(int(seconds * rate)):
        at = i / rate
        client = f"client-{i % 2}"
        add(at, client, OpType.INVOKE, "request", {"document": f"d{i}"})
        inside = fault[0] <= at <= fault[1]
        kind = OpType.INFO if inside and i % 7 == 0 else OpType.FAIL if i == 30 else OpType.OK
        add(
            at + 0.05,
            client,
            kind,
            "request",
            {"document": f"d{i}"},
            "timeout" if kind is OpType.INFO else None,
        )
    backlog = 0.0
    for step in range(int((seconds + 6) * 2)):
        at = step / 2
        backlog = backlog + 3 if fault[0] <= at <= fault[1] else max(0.0, backlog - 5)
        oldest = (at - fault[0]) if fault[0] <= at <= fault[1] + 2 else 0.4
        sample = {
            "backlog": backlog,
            "oldest_age_s": round(oldest, 2),
            "running": 1,
            "retrying": 0,
            "dead": 0,
            "flows_closed": step,
            "alerts_firing": int(9 <= at <= 13),
        }
        add(at, "observer", OpType.OK, "sample", sample)
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
    faults = (
        FaultWindow(
            "disable-core-trigger",
            "disable-core-trigger(method=alter)",
            7.0,
            13.0,
            START + 5.0,
            START + 11.0,
            took_effect,
            "pg_trigger.tgenabled = 'D' read back",
        ),
        FaultWindow(
            "kill-worker",
            "kill-worker(role=orchestrator)",
            14.0,
            15.5,
            START + 12.0,
            START + 13.5,
            True,
            "pid 4242 seen dead",
        ),
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


LOST = Anomaly(
    "lost",
    PLANTED,
    ("e3",),
    ({"event_id": "9f1", "type": "job.protect.required", "at": "12:00:01.2"},),
)
DUPLICATED = Anomaly(
    "duplicated",
    "job 21 (protect, entity e7) exists twice: rows 21 and 22.",
    ("e7",),
    ({"job_id": 21}, {"job_id": 22}),
)


def summary(folder: Path) -> RunSummary:
    valid = CheckResult("no-lost-job", Verdict.VALID, counts={"required": 80, "materialized": 80})
    scenarios = (
        result(
            "core-trigger-disabled",
            Verdict.VALID,
            (valid, CheckResult("no-duplicate-job", Verdict.VALID)),
            folder,
        ),
        result(
            "dedupe-bug",
            Verdict.INVALID,
            (
                CheckResult("no-lost-job", Verdict.INVALID, (LOST, DUPLICATED), {"lost": 1}),
                CheckResult("no-duplicate-job", Verdict.VALID),
            ),
            folder,
        ),
        result(
            "alert-window",
            Verdict.UNKNOWN,
            (valid, CheckResult("alerts-fired", Verdict.UNKNOWN, error="Traceback ...\nKeyError: 'rule'")),
            folder,
            record=record("alert-window", samples=False),
        ),
        ScenarioResult(
            "postgres-crash",
            Verdict.UNKNOWN,
            (),
            42,
            T0,
            0.8,
            None,
            folder / "postgres-crash",
            error="Traceback (most recent call last):\nProvisionError: initdb failed",
        ),
    )
    return RunSummary(
        "20261122-120000-ab12",
        "harness run nightly --seed 42",
        "0123456789abcdef",
        True,
        {"harness": "0.1.0", "python": "3.11.9", "postgres": "16.4"},
        42,
        T0,
        120.0,
        scenarios,
    )


@pytest.fixture
def written(tmp_path: Path) -> tuple[RunSummary, dict[str, Path]]:
    run = summary(tmp_path)
    return run, write_reports(run, tmp_path)


def test_writes_three_files_in_the_run_folder(
    written: tuple[RunSummary, dict[str, Path]], tmp_path: Path
) -> None:
    _run, paths = written
    assert paths == {
        "json": tmp_path / "report.json",
        "junit": tmp_path / "junit.xml",
        "html": tmp_path / "report.html",
    }
    assert all(p.stat().st_size > 0 for p in paths.values())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left behind


def test_report_json_holds_verdicts_checks_and_anomalies(
    written: tuple[RunSummary, dict[str, Path]], tmp_path: Path
) -> None:
    document = load_report(tmp_path)
    assert document["verdict"] == "invalid"
    assert document["command"] == "harness run nightly --seed 42"
    assert (document["git_sha"], document["git_dirty"], document["seed"]) == ("0123456789abcdef", True, 42)
    assert document["versions"]["postgres"] == "16.4" and document["interrupted"] is False
    assert document["counts"] == {"scenarios": 4, "valid": 1, "invalid": 1, "unknown": 2}
    by_name = {s["name"]: s for s in document["scenarios"]}
    assert {n: s["verdict"] for n, s in by_name.items()} == {
        "core-trigger-disabled": "valid",
        "dedupe-bug": "invalid",
        "alert-window": "unknown",
        "postgres-crash": "unknown",
    }
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
        "witnesses": [{"event_id": "9f1", "type": "job.protect.required", "at": "12:00:01.2"}],
    }
    assert bug["failed"] == ["no-lost-job"] and bug["folder"] == "dedupe-bug"  # relative to the run folder
    assert bug["faults"][0] | {"start_wall": 0, "end_wall": 0} == {
        "fault": "disable-core-trigger",
        "label": "disable-core-trigger(method=alter)",
        "start": 7.0,
        "end": 13.0,
        "start_wall": 0,
        "end_wall": 0,
        "start_since_workload_s": 5.0,
        "end_since_workload_s": 11.0,
        "took_effect": True,
        "evidence": "pg_trigger.tgenabled = 'D' read back",
    }
    assert by_name["alert-window"]["undecided"] == ["alerts-fired"]
    crashed = by_name["postgres-crash"]
    assert crashed["checks"] == [] and "initdb failed" in crashed["error"] and crashed["faults"] == []
    assert (crashed["seed"], crashed["repeat"], crashed["duration_s"]) == (42, 0, 0.8)


def test_report_json_is_strict_json_for_odd_witness_values(tmp_path: Path) -> None:
    odd = Anomaly("gap", "nan gap", witnesses=({"gap": math.nan, "at": Path("x"), "ids": {3}},))
    run = summary(tmp_path)
    bad = ScenarioResult(
        "odd", Verdict.INVALID, (CheckResult("gap-slo", Verdict.INVALID, (odd,)),), 1, T0, 1.0, None
    )
    run = RunSummary(run.run_id, run.command, run.git_sha, False, {}, None, T0, 1.0, (bad,))
    write_reports(run, tmp_path)
    text = (tmp_path / "report.json").read_text()
    assert "NaN" not in text
    assert json.loads(text)["scenarios"][0]["checks"][0]["anomalies"][0]["witnesses"] == [
        {"gap": None, "at": "x", "ids": [3]}
    ]


def test_load_report_names_the_folder_when_there_is_no_report(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no report here"):
        load_report(tmp_path)
    (tmp_path / "report.json").write_text('{"verdict": "valid"')
    with pytest.raises(BadInput, match="cut off"):
        load_report(tmp_path)


def test_junit_has_one_case_per_scenario_check(
    written: tuple[RunSummary, dict[str, Path]], tmp_path: Path
) -> None:
    root = ET.parse(tmp_path / "junit.xml").getroot()
    assert root.tag == "testsuites"
    cases = root.findall("./testsuite/testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("core-trigger-disabled", "no-lost-job"),
        ("core-trigger-disabled", "no-duplicate-job"),
        ("dedupe-bug", "no-lost-job"),
        ("dedupe-bug", "no-duplicate-job"),
        ("alert-window", "no-lost-job"),
        ("alert-window", "alerts-fired"),
        ("postgres-crash", "run"),
    ]
    failure = cases[2].find("failure")
    assert failure is not None and failure.get("message") == PLANTED and failure.get("type") == "lost"
    assert PLANTED in (failure.text or "") and "job 21 (protect, entity e7)" in (failure.text or "")
    undecided = cases[5].find("error")
    assert undecided is not None and "KeyError" in (undecided.get("message") or "")
    crashed = cases[6].find("error")
    assert crashed is not None and "initdb failed" in (crashed.text or "")
    passed = [c for c in cases if not list(c)]
    assert len(passed) == 4
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == (
        "7",
        "1",
        "2",
        "0",
    )
    for suite in root.findall("testsuite"):
        inside = suite.findall("testcase")
        assert int(suite.get("tests", "")) == len(inside)
        assert int(suite.get("failures", "")) == sum(c.find("failure") is not None for c in inside)
        assert int(suite.get("errors", "")) == sum(c.find("error") is not None for c in inside)
    assert {p.get("name"): p.get("value") for p in root.findall("./testsuite[1]/properties/property")}[
        "seed"
    ] == "42"


def test_junit_marks_repeats_and_a_caught_bug_passes(tmp_path: Path) -> None:
    found = CheckResult("no-duplicate-job", Verdict.INVALID, (DUPLICATED,))
    missed = CheckResult("no-duplicate-job", Verdict.VALID)
    rec = record("dedupe-bug", catch=("no-duplicate-job",))
    runs = tuple(
        ScenarioResult("dedupe-bug", verdict, (check,), 7, T0, 2.0, rec, repeat=n)
        for n, (verdict, check) in enumerate([(Verdict.VALID, found), (Verdict.INVALID, missed)], 1)
    )
    write_reports(RunSummary("r", "harness run x", "abc", False, {}, 7, T0, 4.0, runs), tmp_path)
    cases = ET.parse(tmp_path / "junit.xml").getroot().findall("./testsuite/testcase")
    assert [c.get("classname") for c in cases] == ["dedupe-bug#1", "dedupe-bug#2"]
    assert cases[0].find("failure") is None and "job 21" in (cases[0].findtext("system-out") or "")
    assert "not caught" in (cases[1].find("failure").get("message") or "")  # type: ignore[union-attr]
    checks = load_report(tmp_path)["scenarios"][0]["checks"]
    assert (checks[0]["verdict"], checks[0]["expected"], checks[0]["outcome"]) == (
        "invalid",
        "invalid",
        "passed",
    )


def test_junit_is_not_green_when_the_scenario_is_worse_than_its_checks(tmp_path: Path) -> None:
    rec = record("no-bite", took_effect=False)
    run = ScenarioResult(
        "no-bite", Verdict.UNKNOWN, (CheckResult("no-lost-job", Verdict.VALID),), 1, T0, 1.0, rec
    )
    write_reports(RunSummary("r", "c", "s", False, {}, 1, T0, 1.0, (run,), interrupted=True), tmp_path)
    root = ET.parse(tmp_path / "junit.xml").getroot()
    errors = root.findall(".//error")
    assert "never took effect" in (errors[0].get("message") or "")
    assert errors[1].get("type") == "interrupted"
    assert (root.get("tests"), root.get("errors")) == ("3", "2")


def test_junit_survives_control_characters(tmp_path: Path) -> None:
    check = CheckResult("no-lost-job", Verdict.UNKNOWN, error="bad byte \x00\x1b[31m here")
    run = ScenarioResult("ctl", Verdict.UNKNOWN, (check,), 1, T0, 1.0, None)
    write_reports(RunSummary("r", "c", "s", False, {}, 1, T0, 1.0, (run,)), tmp_path)
    assert "bad byte" in (ET.parse(tmp_path / "junit.xml").getroot().find(".//error").text or "")  # type: ignore[union-attr]


def test_html_shows_every_scenario_and_escapes_anomalies(
    written: tuple[RunSummary, dict[str, Path]], tmp_path: Path
) -> None:
    page = (tmp_path / "report.html").read_text()
    for name in ("core-trigger-disabled", "dedupe-bug", "alert-window", "postgres-crash"):
        assert name in page
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; job 17 &amp; entity e3" in page
    assert "job 21 (protect, entity e7) exists twice" in page and "ProvisionError: initdb failed" in page
    assert "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )  # nothing fetched from outside
    assert "No recorded run" in page and "no observer samples recorded" in page


def test_html_timeline_shades_each_fault_window(
    written: tuple[RunSummary, dict[str, Path]], tmp_path: Path
) -> None:
    page = (tmp_path / "report.html").read_text()
    svgs = [part.split("</svg>")[0] for part in page.split("<svg")[1:]]
    assert len(svgs) == 3  # the scenario that could not run has no timeline
    for svg in svgs:
        ET.fromstring("<svg" + svg + "</svg>")  # well-formed, so browsers draw all of it
        assert svg.count('class="fault"') == 2 + 1  # two windows, one legend swatch
        assert "disable-core-trigger(method=alter)" in svg and "kill-worker(role=orchestrator)" in svg
        assert "event_to_job_gap_high: firing at +9.0s" in svg and "worker_down{role=orchestrator}" in svg
    assert "<polyline" in svgs[0] and "<polyline" not in svgs[2]


def test_summary_table_names_failed_and_undecided_checks(tmp_path: Path) -> None:
    text = summary_table(summary(tmp_path))
    lines = text.splitlines()
    assert lines[0].split() == ["scenario", "verdict", "duration", "failed", "unknown"]
    assert "dedupe-bug" in lines[3] and "invalid" in lines[3] and "no-lost-job" in lines[3]
    assert lines[4].endswith("alerts-fired") and lines[5].endswith("run")
    assert lines[-1] == f"verdict: INVALID (1 valid, 1 invalid, 2 unknown) - reports in {tmp_path}"
    assert "\033[31m" in summary_table(summary(tmp_path), colour=True)
