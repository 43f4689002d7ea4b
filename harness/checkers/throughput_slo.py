"""throughput_slo: the pipeline closed flows about as fast as the workload asked for them.

Offered rate: the distinct flows the workload requested over the workload window. Achieved rate: the flows
closed (document.anchored or document.failed) over the time from the workload's start to the last close,
never shorter than the workload window. Their ratio is the share of flows closed times how much longer
than the workload closing them took: 1.0 is keeping pace; a pipeline that falls behind, stalls or loses
flows scores lower. Measured rates (not the scenario's nominal rate) keep duplicate requests and an
open-loop generator that lagged from skewing the figure.
"""

from __future__ import annotations

from harness.checkers.rows import CLOSING, clock, entity_events, epoch, requests, short
from harness.records import Anomaly, CheckResult, RunRecord, Verdict

NAME = "throughput_slo"
SLOWEST = 5


def check(record: RunRecord) -> CheckResult:
    """slo-breach when closed-flow rate / requested-flow rate < expect.throughput_min_ratio."""
    minimum = record.scenario.expect.throughput_min_ratio
    events = entity_events(record.final)
    flows: dict[str, float] = {}
    for req in requests(record):
        flows.setdefault(req.entity_id, req.wall)
    start, end = record.workload_start_wall, record.workload_end_wall
    window = max(end - start, 0.0)
    closes: dict[str, float] = {}
    for entity_id in flows:
        stamps = [epoch(e.get("at")) for e in events.get(entity_id, ()) if e.get("type") in CLOSING]
        times = [t for t in stamps if t is not None]
        if times:
            closes[entity_id] = min(times)
    span = max([window, *(t - start for t in closes.values())])
    offered = len(flows) / window if window > 0 else record.scenario.workload.rate
    achieved = len(closes) / span if span > 0 else 0.0
    ratio = achieved / offered if offered > 0 else 0.0
    counts = {
        "flows": len(flows),
        "closed": len(closes),
        "workload_window_s": round(window, 3),
        "closing_span_s": round(span, 3),
        "offered_flows_per_s": round(offered, 3),
        "closed_flows_per_s": round(achieved, 3),
        "nominal_rate": record.scenario.workload.rate,
        "ratio": round(ratio, 4),
        "min_ratio": minimum,
    }
    if minimum is None:
        return CheckResult(
            NAME, Verdict.VALID, (), {**counts, "skipped": "no throughput_min_ratio expectation"}
        )
    if not flows:
        return CheckResult(
            NAME,
            Verdict.UNKNOWN,
            (),
            counts,
            error="the workload requested no flow: no throughput to measure",
        )
    if ratio >= minimum:
        return CheckResult(NAME, Verdict.VALID, (), counts)
    unclosed = sorted(e for e in flows if e not in closes)
    slowest = sorted(closes, key=lambda e: (-(closes[e] - flows[e]), e))[:SLOWEST]
    witnesses = (
        *({"entity_id": e, "requested_wall": flows[e], "closed": False} for e in unclosed[:SLOWEST]),
        *(
            {
                "entity_id": e,
                "requested_wall": flows[e],
                "closed_wall": closes[e],
                "took_s": round(closes[e] - flows[e], 3),
            }
            for e in slowest
        ),
    )
    detail = (
        f"{len(unclosed)} never closed (e.g. {', '.join(short(e) for e in unclosed[:3])}); "
        if unclosed
        else ""
    )
    slow = ", ".join(f"{short(e)} took {closes[e] - flows[e]:.1f} s" for e in slowest[:3])
    anomaly = Anomaly(
        "slo-breach",
        f"closed {len(closes)} of {len(flows)} flows at {achieved:.2f}/s against {offered:.2f}/s offered "
        f"({clock(start)}-{clock(end)}, last close {clock(start + span)}): ratio {ratio:.2f} < {minimum:g}; "
        f"{detail}slowest: {slow or 'none closed'}",
        tuple(dict.fromkeys([*unclosed[:SLOWEST], *slowest])),
        witnesses,
    )
    return CheckResult(NAME, Verdict.INVALID, (anomaly,), counts)
