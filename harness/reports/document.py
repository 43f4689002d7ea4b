"""`report.json`: the machine-readable report of a run, and reading it back.

The document carries everything needed to judge the run again or re-run it: the command, the seed, the git SHA
(and whether the tree was dirty), the versions, the timings, and per scenario its checks with their anomalies
and its fault windows. Paths are written relative to the run folder, so a report folder can be moved or
attached to a CI job and still points at its own artefacts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import BadInput
from harness.records import FaultWindow, RunSummary, ScenarioResult
from harness.reports.outcome import cases, caught, failed_and_unknown

FORMAT = 1  # bump when a field changes meaning; readers check it
REPORT_JSON = "report.json"


def jsonable(value: Any) -> Any:
    """Plain JSON for anything a checker may put in a witness row (datetimes, UUIDs, Decimals, NaN)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    return str(value)


def iso(wall: float | None) -> str | None:
    """An epoch second as ISO 8601 UTC, for people reading the JSON."""
    if wall is None:
        return None
    return dt.datetime.fromtimestamp(wall, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def relative(path: Path | None, folder: Path | None) -> str | None:
    """`path` relative to the run folder when it lies inside it, so the report does not pin this machine."""
    if path is None:
        return None
    if folder is not None:
        try:
            return Path(path).resolve().relative_to(Path(folder).resolve()).as_posix()
        except ValueError:
            pass
    return Path(path).as_posix()


def fault_dict(window: FaultWindow, workload_start_wall: float | None) -> dict[str, Any]:
    """A fault window, with its times also given from the workload start (the timeline's zero)."""

    def since(wall: float | None) -> float | None:
        if wall is None or workload_start_wall is None:
            return None
        return round(wall - workload_start_wall, 3)

    return {
        "fault": window.fault,
        "label": window.label,
        "start": window.start,
        "end": window.end,
        "start_wall": window.start_wall,
        "end_wall": window.end_wall,
        "start_since_workload_s": since(window.start_wall),
        "end_since_workload_s": since(window.end_wall),
        "took_effect": window.took_effect,
        "evidence": window.evidence,
    }


def scenario_dict(result: ScenarioResult, folder: Path | None) -> dict[str, Any]:
    """One scenario: its verdict, every check with its anomalies, its faults and where its artefacts are."""
    record = result.record
    expected = caught(result)
    checks = []
    for check, case in zip(result.checks, cases(result), strict=False):  # cases start with one per check
        entry = check.as_dict()
        entry["expected"] = "invalid" if check.name in expected else "valid"
        entry["outcome"] = str(case.outcome)
        checks.append(entry)
    failed, unknown = failed_and_unknown(result)
    return {
        "name": result.name,
        "verdict": str(result.verdict),
        "description": record.scenario.description if record else None,
        "scenario_file": relative(record.scenario.path, folder) if record else None,
        "seed": result.seed,
        "repeat": result.repeat,
        "started_wall": result.started_wall,
        "started": iso(result.started_wall),
        "duration_s": round(result.duration_s, 3),
        "error": result.error,
        "not_applicable": list(result.not_applicable),
        "folder": relative(result.folder, folder),
        "drained": record.drained if record else None,
        "workload": {"start_wall": record.workload_start_wall, "end_wall": record.workload_end_wall}
        if record
        else None,
        "failed": failed,
        "undecided": unknown,
        "faults": [fault_dict(w, record.workload_start_wall) for w in record.faults] if record else [],
        "checks": checks,
    }


def report_document(summary: RunSummary, folder: Path | None = None) -> dict[str, Any]:
    """The whole of `report.json`, as a plain dict (what `load_report` gives back)."""
    scenarios = [scenario_dict(result, folder) for result in summary.scenarios]
    tally = {"valid": 0, "invalid": 0, "unknown": 0, "not-applicable": 0}
    for result in summary.scenarios:
        tally[str(result.verdict)] += 1
    return jsonable(
        {
            "format": FORMAT,
            "verdict": str(summary.verdict),
            "run_id": summary.run_id,
            "command": summary.command,
            "git_sha": summary.git_sha,
            "git_dirty": summary.git_dirty,
            "versions": dict(summary.versions),
            "seed": summary.seed,
            "started_wall": summary.started_wall,
            "started": iso(summary.started_wall),
            "duration_s": round(summary.duration_s, 3),
            "interrupted": summary.interrupted,
            "not_run": list(summary.not_run),
            "counts": {"scenarios": len(scenarios), **tally},
            "scenarios": scenarios,
        }
    )


def dump(document: Mapping[str, Any]) -> str:
    """Stable, strict JSON (no NaN), indented so a diff of two runs reads well."""
    return json.dumps(document, indent=2, sort_keys=False, allow_nan=False, ensure_ascii=False) + "\n"


def load_report(folder: Path | str) -> dict[str, Any]:
    """Read `report.json` back from a run folder (or the file itself), to show it again or compare runs."""
    path = Path(folder)
    if path.is_dir():
        path = path / REPORT_JSON
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{path}: no report here; give a run folder written by `harness run`") from None
    except json.JSONDecodeError as error:
        raise BadInput(
            f"{path}: not a report ({error}); the run may have been cut off while writing"
        ) from None
    if not isinstance(document, dict) or "verdict" not in document or "scenarios" not in document:
        raise BadInput(f"{path}: not a harness report: expected an object with 'verdict' and 'scenarios'")
    if document.get("format", FORMAT) > FORMAT:
        raise BadInput(
            f"{path}: report format {document['format']} is newer than this harness reads ({FORMAT})"
        )
    return document
