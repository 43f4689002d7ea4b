"""Network faults on the links between parts (workers -> Postgres, orchestrator -> services), through the
Toxiproxy API (Toxiproxy 2.12's semantics): a partition (the link disabled: connections cut, new ones
refused), added latency, a stall (a timeout toxic of 0: data stops flowing; healing drops what it held and
closes the connection, so clients must reconnect), or a reset (connections opened meanwhile are reset; open
ones are closed)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.errors import HarnessError
from harness.faults.base import Fault, FaultContext, Param, param, register

TOXICS = {"latency": "latency", "stall": "timeout", "reset": "reset_peer"}


@register
class Network(Fault):
    name = "network"
    description = (
        "a fault on a network link: `db` (every worker to Postgres), `tsa` or `ledger` (the "
        "orchestrator to a service): partition, latency, stall or reset"
    )
    params = {
        "link": Param(str, "db", ("db", "tsa", "ledger")),
        "kind": Param(str, "partition", ("partition", "latency", "stall", "reset")),
        "latency_ms": Param(int, 300),
    }
    needs_network = True

    @classmethod
    def requires(cls, params: Mapping[str, Any]) -> tuple[str, ...]:
        link = params.get("link", "db")
        return () if link == "db" else (f"service:{link}",)

    def _proxy(self, ctx: FaultContext) -> Any:
        return _network(ctx).get(param(ctx, "link", Network))

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        proxy, kind = self._proxy(ctx), param(ctx, "kind", Network)
        if kind == "partition":
            proxy.disable()
            return {"link": proxy.name, "kind": kind}
        attributes = {
            "latency": {"latency": param(ctx, "latency_ms", Network), "jitter": 0},
            "stall": {"timeout": 0},
            "reset": {"timeout": 0},
        }[kind]
        for stream in ("upstream", "downstream"):
            proxy.add_toxic(
                type=TOXICS[kind], name=f"harness_{kind}_{stream}", stream=stream, attributes=attributes
            )
        return {"link": proxy.name, "kind": kind, **attributes}

    def took_effect(self, ctx: FaultContext) -> tuple[bool | None, str]:
        proxy, kind = self._proxy(ctx), param(ctx, "kind", Network)
        current = _network(ctx).client.get_proxy(proxy.name)
        if kind == "partition":
            return (
                current is not None and not current.enabled,
                f"link {proxy.name} enabled={current.enabled if current else '?'}",
            )
        toxics = sorted(current.toxics()) if current else []
        return len(toxics) == 2, f"link {proxy.name} toxics: {', '.join(toxics) or 'none'}"

    def heal(self, ctx: FaultContext) -> dict[str, Any]:
        proxy, kind = self._proxy(ctx), param(ctx, "kind", Network)
        if kind == "partition":
            proxy.enable()
        else:
            for stream in ("upstream", "downstream"):
                proxy.destroy_toxic(f"harness_{kind}_{stream}")
        return {"link": proxy.name}


def _network(ctx: FaultContext) -> Any:
    """The system's proxied links; needs_network makes the runner build them before this fault starts."""
    if ctx.system.network is None:
        raise HarnessError(
            "the system runs without proxied links; a network fault needs them (needs_network)"
        )
    return ctx.system.network
