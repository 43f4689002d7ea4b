"""Records that cross module boundaries in the chaos harness: the scenario, the recorded run, the verdicts.

A checker sees only a `RunRecord` (the history, the fault windows, the observer samples and the final read of
the database) and returns a `CheckResult`. Both are plain frozen data, stored in a run folder, so a stored run
can be re-checked later with the same verdict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from harness.history import Op

SUITES = ("smoke", "nightly", "gate", "drill")


# -- the scenario --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Workload:
    flows: int = 20  # documents whose protection is requested
    rate: float = 10.0  # requests per second, open loop
    duplicate_same_id: float = 0.0  # share of requests whose event is appended again with the same id
    duplicate_same_intent: float = 0.0  # share of documents requested a second time (new event id)
    clients: int = 2


@dataclass(frozen=True)
class FaultSpec:
    fault: str  # a name from the nemesis catalogue
    at: float = 0.0  # seconds after the workload starts
    duration: float | None = None  # heal after this long; None: heal when the workload ends
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.fault}({extra})" if extra else self.fault


@dataclass(frozen=True)
class AlertExpectation:
    rule: str  # one of the harness's alert names (harness/sut/config.py ALERTS); the SUT maps its own rules
    within_s: float  # must be firing within this long after the fault starts
    resolve: bool = True  # and resolved after healing, before the drain ends
    window_s: float | None = None  # the rule's look-back window for this run (so it can resolve in the drain)


@dataclass(frozen=True)
class Expectations:
    checks: tuple[str, ...]  # checkers that must hold (valid)
    catch: tuple[str, ...] = ()  # checkers that must find the planted bug (invalid): the scenario's point
    alerts_fire: tuple[AlertExpectation, ...] = ()
    alerts_quiet: bool = True  # no other alert may fire
    gap_p99_s: float | None = None  # event_to_job_gap p99 outside fault windows
    throughput_min_ratio: float | None = None  # completed flows/s over requested flows/s
    outcomes: tuple[str, ...] = ("anchored", "failed")  # how this scenario's faults may close a flow


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    suites: tuple[str, ...]
    seed: int
    workload: Workload
    faults: tuple[FaultSpec, ...]
    expect: Expectations
    settings: Mapping[str, str] = field(default_factory=dict)  # pipeline_settings rows (the timing profile)
    profile: str | None = None  # an alert profile the SUT knows (the reference has "fast" and "production")
    workers: Mapping[str, int] = field(default_factory=dict)
    migrations_until: str | None = None
    migrations_skip: tuple[str, ...] = ()
    migrations_set: str | None = None  # a named set of the SUT file's [migration_sets]
    drain_timeout_s: float = 30.0
    stall_s: float = 6.0  # the drain gives up once nothing has moved this long (work left, nothing scheduled)
    own_server: bool = False  # server faults (restart, crash, pause) get a private Postgres
    path: Path | None = None


# -- the recorded run ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Refusal:
    """A write of a fault that the pipeline answered with an error: which entity, the SQLSTATE, the message."""

    entity_id: str
    sqlstate: str
    error: str


@dataclass(frozen=True)
class FaultEffects:
    """What a fault did that a checker must account for, as typed fields the fault fills in itself (never
    evidence text or history values parsed back): the pipeline settings it held while it was on, and the
    writes it made around the pipeline's own path that the pipeline must answer for."""

    settings: Mapping[str, str] = field(default_factory=dict)  # e.g. {"gateway_mode": "strict"}
    legacy_inserts: int = 0  # direct inserts into the queue that a compat guard must redirect and warn of
    refused_duplicates: tuple[Refusal, ...] = ()  # duplicates of events the pipeline answered with an error

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> FaultEffects:
        return FaultEffects(
            settings=dict(data.get("settings") or {}),
            legacy_inserts=int(data.get("legacy_inserts") or 0),
            refused_duplicates=tuple(Refusal(**r) for r in data.get("refused_duplicates") or ()),
        )


@dataclass(frozen=True)
class FaultWindow:
    fault: str
    label: str
    start: float  # seconds since the run started
    end: float | None  # when it was healed
    start_wall: float
    end_wall: float | None
    took_effect: bool | None  # None: could not be told
    evidence: str = ""
    effects: FaultEffects = field(default_factory=FaultEffects)

    def covers(self, wall: float, grace_s: float = 0.0) -> bool:
        end = self.end_wall if self.end_wall is not None else float("inf")
        return self.start_wall <= wall <= end + grace_s


@dataclass(frozen=True)
class FinalState:
    """The database as read after the drain."""

    entities: tuple[Mapping[str, Any], ...] = ()  # {"id", "events": [...]}
    jobs: tuple[Mapping[str, Any], ...] = ()
    runs: tuple[Mapping[str, Any], ...] = ()
    compat_warnings: tuple[Mapping[str, Any], ...] = ()
    alert_history: tuple[Mapping[str, Any], ...] = ()  # {"rule", "state", "at" (epoch s), "value"}
    job_types: Mapping[str, str] = field(default_factory=dict)  # name -> kind
    settings: Mapping[str, str] = field(default_factory=dict)
    read_at: float | None = None  # the database clock when the final read began (epoch s)
    kpi: tuple[Mapping[str, Any], ...] | None = (
        None  # the pipeline's own event_to_job_gap rows, if it has one
    )
    side_effects: Mapping[str, tuple[Mapping[str, Any], ...]] | None = None  # service -> what it issued


@dataclass(frozen=True)
class SutInfo:
    """What the checkers may know of the pipeline: its name, the capabilities discovery found (and why the
    others are absent), and the conventions its SUT file declares (markers, materialized_via values)."""

    name: str = "unknown"
    capabilities: tuple[str, ...] = ()
    absent: Mapping[str, str] = field(default_factory=dict)
    conventions: Mapping[str, Any] = field(default_factory=dict)

    def has(self, capability: str) -> bool:
        return capability in self.capabilities

    def why_not(self, capability: str) -> str:
        return self.absent.get(capability, f"the pipeline has no {capability}")


@dataclass(frozen=True)
class RunRecord:
    scenario: Scenario
    ops: tuple[Op, ...]
    faults: tuple[FaultWindow, ...]
    samples: tuple[Mapping[str, Any], ...]
    final: FinalState
    drained: bool
    workload_start_wall: float
    workload_end_wall: float
    sut: SutInfo = field(default_factory=SutInfo)
    drain_ended: str = "quiet"  # quiet | stalled (nothing moved for stall_s) | timeout


# -- verdicts ------------------------------------------------------------------------------------------------
class Verdict(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    UNKNOWN = "unknown"
    NOT_APPLICABLE = "not-applicable"  # the pipeline lacks a capability the check or scenario needs (named)


@dataclass(frozen=True)
class Anomaly:
    kind: str  # lost, duplicated, unexpected, missing-result, ...
    explanation: str  # one sentence with the rows that prove it
    entities: tuple[str, ...] = ()
    witnesses: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class CheckResult:
    name: str
    verdict: Verdict
    anomalies: tuple[Anomaly, ...] = ()
    counts: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None  # the traceback when the checker itself crashed (verdict unknown)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": str(self.verdict),
            "counts": dict(self.counts),
            "error": self.error,
            "anomalies": [
                {
                    "kind": a.kind,
                    "explanation": a.explanation,
                    "entities": list(a.entities),
                    "witnesses": [dict(w) for w in a.witnesses],
                }
                for a in self.anomalies
            ],
        }


def combine(verdicts: Iterable[Verdict]) -> Verdict:
    """invalid beats unknown beats valid beats not-applicable; nothing at all is valid. A not-applicable part
    never makes a whole fail, and never makes it valid on its own either."""
    found = set(verdicts)
    if Verdict.INVALID in found:
        return Verdict.INVALID
    if Verdict.UNKNOWN in found:
        return Verdict.UNKNOWN
    if found and found == {Verdict.NOT_APPLICABLE}:
        return Verdict.NOT_APPLICABLE
    return Verdict.VALID


@dataclass(frozen=True)
class ScenarioResult:
    """One scenario's outcome in a run: its verdict, its checks, and the record they judged."""

    name: str
    verdict: Verdict
    checks: tuple[CheckResult, ...]
    seed: int
    started_wall: float
    duration_s: float
    record: RunRecord | None  # None when the scenario could not run (see error)
    folder: Path | None = None  # where its artefacts are
    error: str | None = None  # the harness failed to run it (verdict unknown)
    repeat: int = 0
    not_applicable: tuple[str, ...] = ()  # capabilities the pipeline lacks, each with why (verdict n/a)


@dataclass(frozen=True)
class RunSummary:
    """A whole `harness run`: what ran, where, and how it ended."""

    run_id: str
    command: str  # the exact command line to re-run it
    git_sha: str
    git_dirty: bool
    versions: Mapping[str, str]  # harness, python, postgres, platform
    seed: int | None
    started_wall: float
    duration_s: float
    scenarios: tuple[ScenarioResult, ...]
    interrupted: bool = False
    not_run: tuple[str, ...] = ()  # left out by --fail-fast / --maxfail once the verdict was invalid

    @property
    def verdict(self) -> Verdict:
        """An interrupted run is never valid: what did not run proved nothing. Scenarios not applicable to
        the pipeline are counted and named, never failed; a run where nothing applied is not applicable."""
        found = combine(s.verdict for s in self.scenarios)
        if self.interrupted and found not in (Verdict.INVALID,):
            return Verdict.UNKNOWN
        return found
