"""Faults made of writes: duplicate events, legacy direct inserts, poison jobs."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

import psycopg

from harness.faults.base import Fault, FaultContext, Param, param, register
from harness.records import FaultEffects, Refusal


@register
class DuplicateEvents(Fault):
    name = "duplicate-events"
    description = (
        "append duplicates to existing entities: the same event again with the same id (same_id), or "
        "the same intent under a new id (same_intent: a second protection request)"
    )
    params = {"kind": Param(str, "same_id", ("same_id", "same_intent")), "count": Param(int, 5)}
    instantaneous = True

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        kind, count = param(ctx, "kind", DuplicateEvents), param(ctx, "count", DuplicateEvents)
        entities = [str(r[0]) for r in ctx.sql("sample_entities", {"count": count})]
        refused: list[Refusal] = []
        ctx.state["refused"] = refused
        with psycopg.connect(ctx.dsn, autocommit=True) as conn:
            for entity in entities:
                try:
                    if kind == "same_id":
                        conn.execute(
                            ctx.sut_sql.authority_write("reappend_same_event"), {"entity_id": entity}
                        )
                    else:
                        ctx.sut_sql.request(conn, entity, "the same document, asked again", "nemesis")
                except psycopg.OperationalError:
                    raise  # the database out of reach: the fault could not be injected (unknown), not a refusal
                except (
                    psycopg.Error
                ) as exc:  # the pipeline answered the duplicate with an error: no_duplicate_job judges it
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    refused.append(Refusal(entity, exc.sqlstate or type(exc).__name__, first))
        ctx.state["done"] = len(entities)
        return {
            "kind": kind,
            "duplicated": len(entities) - len(refused),
            "refused": [f"{r.entity_id}: {r.sqlstate}" for r in refused],
            "entities": entities,
        }

    def took_effect(self, ctx: FaultContext) -> tuple[bool | None, str]:
        done, refused = ctx.state.get("done", 0), len(ctx.state.get("refused", ()))
        note = f"; {refused} answered with an error" if refused else ""
        return done > 0, f"{done} duplicate(s) written to the pipeline{note}"

    def effects(self, ctx: FaultContext) -> FaultEffects:
        """The duplicates the pipeline refused with an error, for no_duplicate_job to judge."""
        return FaultEffects(refused_duplicates=tuple(ctx.state.get("refused", ())))


@register
class LegacyInsert(Fault):
    name = "legacy-insert"
    description = (
        "the legacy path inserts jobs straight into executor_jobs, with no canonical event: under "
        "compat the guard redirects them through the gateway with a warning; under strict it rejects them"
    )
    params = {"mode": Param(str, "compat", ("compat", "strict")), "count": Param(int, 3)}
    instantaneous = True

    @classmethod
    def requires(cls, params: Mapping[str, Any]) -> tuple[str, ...]:
        return ("setting:gateway_mode",)

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        mode, count = param(ctx, "mode", LegacyInsert), param(ctx, "count", LegacyInsert)
        with psycopg.connect(ctx.dsn, autocommit=True) as conn:
            ctx.state["previous_mode"] = ctx.sut_sql.read_setting(conn, "gateway_mode") or "compat"
        ctx.sut_sql.write_settings(ctx.dsn, {"gateway_mode": mode})
        ctx.state["set_mode"] = mode
        entities = [str(r[0]) for r in ctx.sql("sample_entities", {"count": count})]
        accepted = rejected = 0
        errors = set()
        insert = ctx.sut_sql.legacy_insert()
        for entity in entities:
            try:
                ctx.execute(insert, {"entity_id": entity}, fetch=False)
                accepted += 1
            except psycopg.Error as exc:
                rejected += 1
                errors.add(exc.sqlstate or type(exc).__name__)
        ctx.state.update(
            accepted=accepted, rejected=rejected, tried=len(entities), sqlstates=sorted(errors), mode=mode
        )
        return {
            "mode": mode,
            "legacy_inserts": accepted if mode == "compat" else 0,
            "attempted": len(entities),
            "rejected": rejected,
            "sqlstates": sorted(errors),
        }

    def took_effect(self, ctx: FaultContext) -> tuple[bool | None, str]:
        """Compat: every insert went in (redirected). Strict: every one was refused by the guard, with the
        SQLSTATE a strict gateway raises where the SUT file names it. Any other outcome means the fault did
        not exercise what it claims to."""
        tried, accepted, rejected = (ctx.state.get(k, 0) for k in ("tried", "accepted", "rejected"))
        states = ctx.state.get("sqlstates", [])
        expected = ctx.sut_sql.sut.conventions.strict_reject_sqlstate
        if ctx.state.get("mode") == "compat":
            took = tried > 0 and accepted == tried
        else:
            took = tried > 0 and rejected == tried and (expected is None or states == [expected])
        return (
            took,
            f"{tried} legacy insert(s): {accepted} accepted, {rejected} rejected (SQLSTATEs: {states or 'none'})",
        )

    def heal(self, ctx: FaultContext) -> dict[str, Any]:
        if "previous_mode" in ctx.state:
            ctx.sut_sql.write_settings(ctx.dsn, {"gateway_mode": ctx.state["previous_mode"]})
        return {"gateway_mode": ctx.state.get("previous_mode")}

    def effects(self, ctx: FaultContext) -> FaultEffects:
        """The mode it held (strict_gateway judges inside that window) and, under compat, the inserts the
        guard must have redirected with a warning each (compat_warnings counts them)."""
        mode = ctx.state.get("set_mode")
        if mode is None:
            return FaultEffects()
        redirected = int(ctx.state.get("accepted", 0)) if mode == "compat" else 0
        return FaultEffects(settings={"gateway_mode": str(mode)}, legacy_inserts=redirected)


@register
class PoisonJob(Fault):
    name = "poison-job"
    description = (
        "jobs whose payload no handler can process: retried with backoff, then dead with job.<type>.failed"
    )
    params = {"count": Param(int, 1)}
    instantaneous = True

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        ids = [str(uuid.uuid4()) for _ in range(param(ctx, "count", PoisonJob))]
        conventions = ctx.sut_sql.sut.conventions
        for entity in ids:
            ctx.sql("new_entity", {"entity_id": entity}, fetch=False)
            event = {
                "entity_id": entity,
                "event_id": str(uuid.uuid4()),
                "type": conventions.poison_event_type,
                "correlation_id": str(uuid.uuid4()),
                "trace_id": uuid.uuid4().hex,
                "payload": json.dumps(json.loads(conventions.poison_payload)),
            }
            ctx.execute(ctx.sut_sql.authority_write("append_event"), event, fetch=False)
        ctx.state["entities"] = ids
        return {"poisoned": ids}

    def took_effect(self, ctx: FaultContext) -> tuple[bool | None, str]:
        return bool(ctx.state.get("entities")), f"{len(ctx.state.get('entities', []))} poison job(s) appended"


@register
class UnmaterializedEvents(Fault):
    name = "unmaterialized-events"
    description = (
        "a writer appends job.<type>.required events with the core trigger skipped (session_replication_role "
        "= replica), so they get no job and nothing replays them: the loss the event_to_job_gap KPI exists to "
        "show, planted for the pipeline's own KPI to be judged on"
    )
    params = {"count": Param(int, 3), "job_type": Param(str, "protect")}
    instantaneous = True

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        count, job_type = (
            param(ctx, "count", UnmaterializedEvents),
            param(ctx, "job_type", UnmaterializedEvents),
        )
        entities = [str(r[0]) for r in ctx.sql("sample_entities", {"count": count})]
        appended = []
        with psycopg.connect(ctx.dsn, autocommit=True) as conn:
            conn.execute(ctx.sut_sql.queries("run")["replica_on"])
            for entity in entities:
                event = {
                    "entity_id": entity,
                    "event_id": str(uuid.uuid4()),
                    "type": f"job.{job_type}.required",
                    "correlation_id": str(uuid.uuid4()),
                    "trace_id": uuid.uuid4().hex,
                    "payload": "{}",
                }
                conn.execute(ctx.sut_sql.authority_write("append_event"), event)
                appended.append(event["event_id"])
            conn.execute(ctx.sut_sql.queries("run")["replica_off"])
        ctx.state["events"] = appended
        return {"appended": appended, "entities": entities, "job_type": job_type}

    def took_effect(self, ctx: FaultContext) -> tuple[bool | None, str]:
        events = ctx.state.get("events", [])
        if not events:
            return False, "no entity to append to"
        made = int(ctx.sql("jobs_for_sources", {"ids": events})[0][0])
        return (
            made == 0,
            f"{len(events)} required event(s) appended past the trigger; jobs made for them: {made}",
        )
