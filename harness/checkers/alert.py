"""When each alert rule was firing, read from the alert history (and, failing that, the observer's samples).

The monitor's alert_history is the authority: one row per transition with its time. A pipeline without an
alert history but with an observer that samples the firing rules still tells firing and quiet apart, so the
samples are the fallback for a rule the history never mentions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.checkers.rows import epoch, observer_samples, plain
from harness.records import RunRecord


@dataclass(frozen=True)
class Transition:
    rule: str
    state: str  # pending | firing | resolved | inactive
    at: float
    source: str  # "alert_history" or "sample"
    value: Any = None
    for_s: float | None = None  # the rule's `for`, where the history says it
    active_since: float | None = None  # when the pipeline says the condition began (pending), where it says

    def row(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "state": self.state,
            "at": self.at,
            "source": self.source,
            "value": plain(self.value),
        }


def transitions(record: RunRecord) -> dict[str, list[Transition]]:
    """Rule -> its transitions in time order. Samples stand in only for rules the history never names."""
    found: dict[str, list[Transition]] = {}
    for row in record.final.alert_history:
        at = epoch(row.get("at"))
        if at is None or not row.get("rule"):
            continue
        for_s = row.get("for_s")
        found.setdefault(str(row["rule"]), []).append(
            Transition(
                str(row["rule"]),
                str(row.get("state")),
                at,
                "alert_history",
                row.get("value"),
                float(for_s) if isinstance(for_s, int | float) and not isinstance(for_s, bool) else None,
                epoch(row.get("active_since")),
            )
        )
    from_samples = _from_samples(observer_samples(record))
    for rule, rows in from_samples.items():
        found.setdefault(rule, rows)
    for rows in found.values():
        rows.sort(key=lambda t: t.at)  # stable: ties keep the order the history recorded them in
    return dict(sorted(found.items()))


def _from_samples(samples: Sequence[Mapping[str, Any]]) -> dict[str, list[Transition]]:
    """Edges of each rule's presence in alerts_firing across time-stamped samples."""
    timed = sorted(
        ((epoch(s.get("wall", s.get("at"))), s) for s in samples if "alerts_firing" in s),
        key=lambda pair: pair[0] if pair[0] is not None else 0.0,
    )
    firing_now: set[str] = set()
    found: dict[str, list[Transition]] = {}
    for at, sample in timed:
        if at is None:
            continue
        rules = {str(r) for r in sample.get("alerts_firing") or ()}
        for rule in sorted(rules - firing_now):
            found.setdefault(rule, []).append(Transition(rule, "firing", at, "sample"))
        for rule in sorted(firing_now - rules):
            found.setdefault(rule, []).append(Transition(rule, "resolved", at, "sample"))
        firing_now = rules
    return found


def firing_at(rows: Sequence[Transition], wall: float) -> bool:
    """Whether the rule was firing at `wall` (its last transition at or before then was `firing`)."""
    state = None
    for t in rows:
        if t.at > wall:
            break
        state = t.state
    return state == "firing"
