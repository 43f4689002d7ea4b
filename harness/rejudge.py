"""`harness check RUN_DIR` and `harness replay RUN_DIR/SCENARIO`: a stored run judged again, and run again.

`check` reads a run folder back (its report.json for what the run was: command, seed, timings; each
scenario's folder for its recorded run: history, fault windows, final read, scenario as run) and judges every
recorded run with the current checkers. When neither the files nor the checkers changed, the verdicts are the
same and the three reports come out byte for byte the same as the originals; a changed checker shows as a
changed report. `replay` runs one scenario again exactly as it was run: the same effective scenario (seed,
workload, fault timeline, settings, workers) against the same SUT file, into a new folder, and sets the two
verdicts side by side.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.checkers import judge
from harness.errors import BadInput
from harness.records import RunSummary, ScenarioResult, Verdict
from harness.reports.document import REPORT_JSON, dump, load_report, report_document
from harness.reports.junit import junit_xml
from harness.reports.page import report_html
from harness.store import RECORD, load_record, scenario_from_dict

JUNIT_XML = "junit.xml"
REPORT_HTML = "report.html"


def rejudge(run_dir: Path, only: str | None = None) -> RunSummary:
    """The run of `run_dir` with every recorded scenario judged again (`only`: that scenario's name)."""
    document = load_report(run_dir)
    results = []
    for entry in document["scenarios"]:
        if only is not None and entry["name"] != only:
            continue
        folder = run_dir / entry["folder"] if entry.get("folder") else None
        recorded = folder is not None and (folder / RECORD).is_file()
        if recorded and not entry.get("error"):
            assert folder is not None
            record = load_record(folder)
            verdict, checks = judge(record)
            results.append(_result(entry, folder, Verdict(verdict), tuple(checks), record))
        else:  # not run (not applicable, or the harness failed): nothing to judge, kept as it was
            results.append(_result(entry, folder, Verdict(entry["verdict"]), (), None))
    if only is not None and not results:
        names = ", ".join(e["name"] for e in document["scenarios"])
        raise BadInput(f"no scenario {only!r} in {run_dir}; the run holds: {names}")
    return RunSummary(
        run_id=document["run_id"],
        command=document["command"],
        git_sha=document["git_sha"],
        git_dirty=document["git_dirty"],
        versions=document["versions"],
        seed=document["seed"],
        started_wall=document["started_wall"],
        duration_s=document["duration_s"],
        scenarios=tuple(results),
        interrupted=document["interrupted"],
        not_run=tuple(document.get("not_run", ())),
    )


def _result(
    entry: dict[str, Any], folder: Path | None, verdict: Verdict, checks: tuple[Any, ...], record: Any
) -> ScenarioResult:
    return ScenarioResult(
        entry["name"],
        verdict,
        checks,
        entry["seed"],
        entry["started_wall"],
        entry["duration_s"],
        record,
        folder,
        error=entry.get("error"),
        repeat=entry.get("repeat", 0),
        not_applicable=tuple(entry.get("not_applicable", ())),
    )


@dataclass(frozen=True)
class Comparison:
    """Which report files a re-judgement reproduced byte for byte."""

    same: tuple[str, ...]
    differing: tuple[str, ...]
    written: Path


def write_and_compare(summary: RunSummary, run_dir: Path, out: Path) -> Comparison:
    """Write the re-judged reports into `out` (paths inside them relative to `run_dir`, as the originals'
    are), and compare each with the original of `run_dir`."""
    out.mkdir(parents=True, exist_ok=True)
    files = {
        REPORT_JSON: dump(report_document(summary, run_dir)).encode("utf-8"),
        JUNIT_XML: junit_xml(summary),
        REPORT_HTML: report_html(summary, run_dir).encode("utf-8"),
    }
    same: list[str] = []
    differing: list[str] = []
    for name, data in files.items():
        (out / name).write_bytes(data)
        original = run_dir / name
        (same if original.is_file() and original.read_bytes() == data else differing).append(name)
    return Comparison(tuple(same), tuple(differing), out)


def replay_scenario(folder: Path) -> tuple[Any, Path | None, str]:
    """What `harness replay` needs of a scenario folder: the effective scenario as it ran, the SUT file it
    ran against, and its original verdict."""
    meta_path = folder / RECORD
    if not meta_path.is_file():
        raise BadInput(
            f"{folder}: no {RECORD}; give a scenario folder of a run folder (reports/<run-id>/<scenario>), "
            "written by harness run"
        )
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    verdict = "unknown"
    report = folder.parent / REPORT_JSON
    if report.is_file():
        for entry in json.loads(report.read_text(encoding="utf-8")).get("scenarios", []):
            if entry.get("folder") and (folder.parent / entry["folder"]).resolve() == folder.resolve():
                verdict = entry["verdict"]
    sut = Path(meta["sut_file"]) if meta.get("sut_file") else None
    return scenario_from_dict(meta["scenario"]), sut, verdict
