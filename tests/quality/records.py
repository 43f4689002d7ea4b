"""Tiny literal runs for the checker quality tests: a hand-written pipeline in a few lines per flow.

`World` appends events, materializes jobs and runs them the way the reference pipeline does (the core
trigger's mapping, complete_job's result event with payload.job_id, mark_job_dead's failed event), so a
healthy world is a run every checker must find valid, and each planted bug is one edit away from it. Times
are seconds after T0 (a fixed epoch), ids are counters: two worlds built the same way are equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from harness.history import Op, OpType
from harness.records import (
    AlertExpectation,
    Expectations,
    FaultEffects,
    FaultWindow,
    FinalState,
    RunRecord,
    Scenario,
    SutInfo,
    Workload,
)
from harness.sut.config import ALERTS

T0 = 1_795_000_000.0  # 2026-11-18T11:06:40Z
STEPS = ("protect", "tsa", "anchor")
JOB_TYPES = {
    "decide_request": "decision",
    "decide_outcome": "decision",
    "protect": "execution",
    "tsa": "execution",
    "anchor": "execution",
}


# What a run of the reference pipeline records of it: every capability the checkers ask about, and the
# conventions its SUT file declares (pipeline/sut.toml).
REFERENCE = SutInfo(
    name="reference",
    capabilities=(
        "compat-warnings",
        "materialized-via",
        "alerts",
        *(f"alert:{a}" for a in ALERTS),
        "kpi",
        "side-effects",
    ),
    conventions={
        "side_effects": {"tsa": "tsa", "ledger": "anchor"},  # service -> the job type that calls it
        "strict_reject_sqlstate": "PJ003",
        "compat_marker": "_compat",
        "via_gateway": ["trigger", "direct_call", "replay"],
        "via_redirect": "compat_redirect",
        "via_direct_call": "direct_call",
    },
)


def iso(s: float) -> str:
    """The event `at` the pipeline stores for T0 + s."""
    return datetime.fromtimestamp(T0 + s, UTC).isoformat(timespec="microseconds")


def expectations(**kw: Any) -> Expectations:
    return Expectations(checks=tuple(kw.pop("checks", ())), **kw)


def alert(rule: str, within_s: float = 3.0, resolve: bool = True) -> AlertExpectation:
    return AlertExpectation(rule, within_s, resolve)


class World:
    """The rows of a run, built step by step; `record()` freezes them into a RunRecord."""

    def __init__(self) -> None:
        self.entities: dict[str, list[dict[str, Any]]] = {}
        self.jobs: list[dict[str, Any]] = []
        self.runs: list[dict[str, Any]] = []
        self.ops: list[Op] = []
        self.faults: list[FaultWindow] = []
        self.compat_warnings: list[dict[str, Any]] = []
        self.alert_history: list[dict[str, Any]] = []
        self.settings: dict[str, str] = {"gateway_mode": "compat"}
        self.trigger_on = True
        # What the services issued (service -> one item per side effect), as their read-back reports it.
        self.issued: dict[str, list[dict[str, Any]]] = {"tsa": [], "ledger": []}
        # The pipeline's own event_to_job_gap rows; None: computed at record() as a correct KPI would.
        self.kpi: list[dict[str, Any]] | None = None
        self.read_at = T0 + 60.0  # the database clock of the final read
        self.sut = REFERENCE  # what the run knew of the pipeline (tests of not-applicable replace it)
        self._n = 0

    # -- ids and rows --------------------------------------------------------------------------------------
    def uid(self) -> str:
        self._n += 1
        return f"00000000-0000-4000-8000-{self._n:012x}"

    def entity(self) -> str:
        entity_id = self.uid()
        self.entities[entity_id] = []
        return entity_id

    def append(
        self,
        entity: str,
        type_: str,
        s: float,
        payload: Mapping[str, Any] | None = None,
        *,
        event_id: str | None = None,
        causation: str | None = None,
        trace_id: str | None = None,
    ) -> dict[str, Any]:
        """Append an event; with the trigger on, materialize its job as the core trigger would."""
        events = self.entities.setdefault(entity, [])
        head = events[0] if events else None
        event = {
            "id": event_id or self.uid(),
            "type": type_,
            "at": iso(s),
            "correlation_id": head["correlation_id"] if head else self.uid(),
            "trace_id": trace_id or (head["trace_id"] if head else f"{self._n:032x}"),
            "causation_id": causation,
            "payload": dict(payload or {}),
        }
        events.append(event)
        job_type = self.job_type_for(type_)
        if self.trigger_on and job_type:
            via = "compat_redirect" if "_compat" in event["payload"] else "trigger"
            self.materialize(entity, event, job_type, s + 0.002, via=via)
        return event

    @staticmethod
    def job_type_for(type_: str) -> str | None:
        parts = type_.split(".")
        if type_.startswith("job.") and len(parts) == 3:
            if parts[2] == "required":
                return parts[1]
            return "decide_outcome" if JOB_TYPES.get(parts[1]) == "execution" else None
        if type_.startswith("document.") and type_.endswith(".requested"):
            return "decide_request"
        return None

    def materialize(
        self, entity: str, event: Mapping[str, Any], job_type: str, s: float, via: str = "trigger"
    ) -> dict[str, Any]:
        job = {
            "id": len(self.jobs) + 1,
            "job_type": job_type,
            "kind": JOB_TYPES[job_type],
            "entity_id": entity,
            "dedupe_key": f"{entity}:{job_type}:{event['id']}",
            "status": "queued",
            "attempts": 0,
            "max_attempts": 5,
            "source_event_id": event["id"],
            "correlation_id": event["correlation_id"],
            "trace_id": event["trace_id"],
            "materialized_via": via,
            "last_error": None,
            "created_at": T0 + s,
            "finished_at": None,
        }
        self.jobs.append(job)
        return job

    def correct_kpi(self) -> list[dict[str, Any]]:
        """What a correct event_to_job_gap lists: every job.<type>.required event, pending when it has no job."""
        sources = {(j["entity_id"], j["source_event_id"]) for j in self.jobs}
        return [
            {
                "entity_id": entity,
                "event_id": event["id"],
                "status": "materialized" if (entity, event["id"]) in sources else "pending",
            }
            for entity, events in self.entities.items()
            for event in events
            if event["type"].startswith("job.") and event["type"].endswith(".required")
        ]

    def job_for(self, event: Mapping[str, Any]) -> dict[str, Any]:
        return next(j for j in self.jobs if j["source_event_id"] == event["id"])

    def run(self, job: dict[str, Any], s: float, outcome: str, result_event_id: str | None = None) -> None:
        job["attempts"] += 1
        self.runs.append(
            {
                "id": len(self.runs) + 1,
                "job_id": job["id"],
                "attempt": job["attempts"],
                "worker": "orchestrator-1" if job["kind"] == "execution" else "fase1-executor-1",
                "started_at": T0 + s,
                "finished_at": T0 + s + 0.004,
                "outcome": outcome,
                "error": None if outcome == "succeeded" else "boom",
                "result_event_id": result_event_id,
                "correlation_id": job["correlation_id"],
                "trace_id": job["trace_id"],
            }
        )
        if outcome == "succeeded":
            job.update(status="succeeded", finished_at=T0 + s + 0.004)

    def decide(self, job: dict[str, Any], s: float) -> None:
        self.run(job, s, "succeeded")

    def execute(self, job: dict[str, Any], s: float) -> dict[str, Any]:
        """complete_job: the canonical result event, then the run and the job succeed."""
        service = {"tsa": "tsa", "anchor": "ledger"}.get(job["job_type"])
        if service:  # one side effect per job, under the job's own idempotency key
            self.issued[service].append({"job_id": str(job["id"]), "key": f"job-{job['id']}"})
        result = self.append(
            job["entity_id"],
            f"job.{job['job_type']}.completed",
            s + 0.003,
            {"job_id": job["id"], "ok": True},
            causation=job["source_event_id"],
        )
        self.run(job, s, "succeeded", result["id"])
        return result

    def kill(self, job: dict[str, Any], s: float) -> dict[str, Any]:
        """Every attempt fails; mark_job_dead appends job.<type>.failed."""
        while job["attempts"] < job["max_attempts"]:
            self.run(job, s, "failed")
        job.update(status="dead", finished_at=T0 + s + 0.005, last_error="boom")
        return self.append(
            job["entity_id"],
            f"job.{job['job_type']}.failed",
            s + 0.005,
            {"job_id": job["id"], "reason": "boom"},
            causation=job["source_event_id"],
        )

    # -- whole flows ---------------------------------------------------------------------------------------
    def flow(self, s: float = 1.0, *, lose: str | None = None, fail: str | None = None) -> str:
        """One protect -> tsa -> anchor flow requested at s. `lose`: the trigger skips that step's required
        event (the flow stops there). `fail`: that step's job dies and the flow ends document.failed."""
        entity = self.entity()
        request = self.request(entity, s)
        self.decide(self.job_for(request), s + 0.01)
        previous, t = request, s + 0.02
        for step in STEPS:
            self.trigger_on = step != lose
            required = self.append(
                entity, f"job.{step}.required", t, {"step": step}, causation=previous["id"]
            )
            self.trigger_on = True
            if step == lose:
                return entity
            job = self.job_for(required)
            if step == fail:
                failed = self.kill(job, t + 0.01)
                self.decide(self.job_for(failed), t + 0.02)
                self.append(entity, "document.failed", t + 0.03, {"step": step, "reason": "boom"})
                return entity
            result = self.execute(job, t + 0.01)
            self.decide(self.job_for(result), t + 0.02)
            previous, t = result, t + 0.03
        self.append(entity, "document.anchored", t, {}, causation=previous["id"])
        return entity

    def request(
        self,
        entity: str,
        s: float,
        outcome: OpType = OpType.OK,
        kind: str = "new",
        error: str | None = None,
        land: bool = True,
    ) -> dict[str, Any]:
        """The workload's request op pair and (when it lands) its document.protect.requested event."""
        event_id = self.uid()
        value = {"entity_id": entity, "event_id": event_id, "kind": kind}
        self.op("client-0", OpType.INVOKE, "request", s, value)
        self.op("client-0", outcome, "request", s + 0.005, value, error)
        if not land:
            return {"id": event_id}
        return self.append(entity, "document.protect.requested", s, {"document": "d"}, event_id=event_id)

    # -- history, faults, alerts ---------------------------------------------------------------------------
    def op(
        self, process: str, type_: OpType, f: str, s: float, value: Any = None, error: str | None = None
    ) -> Op:
        op = Op(len(self.ops), round(s, 6), T0 + s, process, type_, f, value, error)
        self.ops.append(op)
        return op

    def fault(
        self,
        fault: str,
        start_s: float,
        end_s: float | None,
        took_effect: bool | None = True,
        evidence: str = "",
        effects: FaultEffects | None = None,
    ) -> FaultWindow:
        window = FaultWindow(
            fault,
            fault,
            start_s,
            end_s,
            T0 + start_s,
            None if end_s is None else T0 + end_s,
            took_effect,
            evidence,
            effects or FaultEffects(),
        )
        self.faults.append(window)
        self.op("nemesis", OpType.INFO, f"start:{fault}", start_s, {"label": fault})
        if end_s is not None:
            self.op("nemesis", OpType.INFO, f"heal:{fault}", end_s, {"label": fault})
        return window

    def alert(self, rule: str, state: str, s: float, value: float = 1.0) -> None:
        self.alert_history.append({"rule": rule, "state": state, "at": T0 + s, "value": value})

    def sample(self, s: float, alerts_firing: Iterable[str] = ()) -> None:
        self.op(
            "observer",
            OpType.OK,
            "sample",
            s,
            {
                "backlog": 0,
                "oldest_age_s": 0.0,
                "running": 0,
                "retrying": 0,
                "dead": 0,
                "flows_closed": 0,
                "alerts_firing": list(alerts_firing),
            },
        )

    def record(
        self,
        expect: Expectations | None = None,
        *,
        drained: bool = True,
        workload_s: tuple[float, float] = (0.0, 5.0),
    ) -> RunRecord:
        scenario = Scenario(
            name="quality",
            description="a literal run",
            suites=("smoke",),
            seed=1,
            workload=Workload(flows=len(self.entities), rate=1.0),
            faults=(),
            expect=expect or expectations(),
        )
        final = FinalState(
            entities=tuple({"id": k, "events": [dict(e) for e in v]} for k, v in self.entities.items()),
            jobs=tuple(dict(j) for j in self.jobs),
            runs=tuple(dict(r) for r in self.runs),
            compat_warnings=tuple(dict(w) for w in self.compat_warnings),
            alert_history=tuple(dict(a) for a in self.alert_history),
            job_types=dict(JOB_TYPES),
            settings=dict(self.settings),
            read_at=self.read_at,
            kpi=tuple(dict(r) for r in (self.kpi if self.kpi is not None else self.correct_kpi())),
            side_effects={service: tuple(dict(i) for i in items) for service, items in self.issued.items()},
        )
        return RunRecord(
            scenario,
            tuple(self.ops),
            tuple(self.faults),
            (),
            final,
            drained,
            T0 + workload_s[0],
            T0 + workload_s[1],
            self.sut,
        )


def healthy(flows: int = 3) -> World:
    """A world every checker must find valid: flows requested a second apart, an alert-quiet observer."""
    world = World()
    for i in range(flows):
        world.flow(1.0 + i)
    world.sample(0.5)
    world.sample(4.5)
    return world


def with_expect(record: RunRecord, **kw: Any) -> RunRecord:
    """The same run judged against other expectations."""
    return replace(record, scenario=replace(record.scenario, expect=replace(record.scenario.expect, **kw)))
