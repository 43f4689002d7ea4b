"""A run folder on disk: each scenario's recorded run written as files, and read back as the same record.

Layout of `reports/<run-id>/<scenario>/`: `record.json` (the effective scenario, as run: seed, workers and
settings after any command-line override; how the drain ended; the workload's window; the SUT file),
`history.jsonl` (every op, written as it happened), `faults.json`, `final.json`, `sut.json`, and the checks
it was judged on (`checks.json`). A run is judged on the record read back from these files, never on the one
in memory, so `harness check RUN_DIR` judging the same files gives the same verdict, byte for byte.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import BadInput
from harness.history import read_history
from harness.records import (
    AlertExpectation,
    Expectations,
    FaultEffects,
    FaultSpec,
    FaultWindow,
    FinalState,
    RunRecord,
    Scenario,
    SutInfo,
    Workload,
)

RECORD = "record.json"
FORMAT = 1


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, default=_json_default), encoding="utf-8")


def _read(folder: Path, name: str) -> Any:
    path = folder / name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{path}: missing; {folder} is not a scenario folder written by harness run") from None
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path}: not JSON ({exc}); the run may have been cut off while writing it") from None


def write_record(folder: Path, record: RunRecord, sut_file: Path | None) -> None:
    """Everything of `record` that history.jsonl does not already hold (it was written as the run went)."""
    write_json(folder / "faults.json", [dataclasses.asdict(w) for w in record.faults])
    write_json(folder / "final.json", dataclasses.asdict(record.final))
    write_json(folder / "sut.json", dataclasses.asdict(record.sut))
    scenario = dataclasses.asdict(record.scenario)
    scenario["path"] = str(record.scenario.path) if record.scenario.path else None
    write_json(
        folder / RECORD,
        {
            "format": FORMAT,
            "scenario": scenario,
            "drained": record.drained,
            "drain_ended": record.drain_ended,
            "workload_start_wall": record.workload_start_wall,
            "workload_end_wall": record.workload_end_wall,
            "sut_file": str(sut_file) if sut_file else None,
        },
    )


def load_record(folder: Path) -> RunRecord:
    """The recorded run of one scenario folder, as the checkers judge it."""
    meta = _read(folder, RECORD)
    if meta.get("format", FORMAT) > FORMAT:
        raise BadInput(
            f"{folder / RECORD}: format {meta['format']} is newer than this harness reads ({FORMAT})"
        )
    ops = tuple(read_history(folder / "history.jsonl"))
    final = _read(folder, "final.json")
    return RunRecord(
        scenario=scenario_from_dict(meta["scenario"]),
        ops=ops,
        faults=tuple(
            FaultWindow(**{**w, "effects": FaultEffects.from_dict(w.get("effects", {}))})
            for w in _read(folder, "faults.json")
        ),
        samples=tuple(
            {"wall": op.wall, **op.value} for op in ops if op.f == "sample" and isinstance(op.value, dict)
        ),
        final=_final(final),
        drained=bool(meta["drained"]),
        workload_start_wall=float(meta["workload_start_wall"]),
        workload_end_wall=float(meta["workload_end_wall"]),
        sut=_sut(_read(folder, "sut.json")),
        drain_ended=str(meta.get("drain_ended", "quiet")),
    )


def sut_file(folder: Path) -> Path | None:
    """The SUT file the scenario of `folder` ran against (None: the run did not record one)."""
    found = _read(folder, RECORD).get("sut_file")
    return Path(found) if found else None


def _final(data: Mapping[str, Any]) -> FinalState:
    effects = data.get("side_effects")
    return FinalState(
        entities=tuple(data.get("entities", ())),
        jobs=tuple(data.get("jobs", ())),
        runs=tuple(data.get("runs", ())),
        compat_warnings=tuple(data.get("compat_warnings", ())),
        alert_history=tuple(data.get("alert_history", ())),
        job_types=dict(data.get("job_types", {})),
        settings=dict(data.get("settings", {})),
        read_at=data.get("read_at"),
        kpi=tuple(data["kpi"]) if data.get("kpi") is not None else None,
        side_effects={k: tuple(v) for k, v in effects.items()} if effects is not None else None,
    )


def _sut(data: Mapping[str, Any]) -> SutInfo:
    return SutInfo(
        name=str(data.get("name", "unknown")),
        capabilities=tuple(data.get("capabilities", ())),
        absent=dict(data.get("absent", {})),
        conventions=dict(data.get("conventions", {})),
    )


def scenario_from_dict(data: Mapping[str, Any]) -> Scenario:
    """A Scenario from its `dataclasses.asdict` form (as record.json keeps the effective one)."""
    expect = dict(data["expect"])
    expect["alerts_fire"] = tuple(AlertExpectation(**a) for a in expect.get("alerts_fire", ()))
    for key in ("checks", "catch", "outcomes"):
        expect[key] = tuple(expect.get(key, ()))
    values = dict(data)
    values.update(
        suites=tuple(data["suites"]),
        workload=Workload(**data["workload"]),
        faults=tuple(
            FaultSpec(f["fault"], float(f["at"]), f.get("duration"), dict(f.get("params", {})))
            for f in data["faults"]
        ),
        expect=Expectations(**expect),
        settings=dict(data.get("settings", {})),
        workers=dict(data.get("workers", {})),
        migrations_skip=tuple(data.get("migrations_skip", ())),
        path=Path(data["path"]) if data.get("path") else None,
    )
    return Scenario(**values)
