"""External service faults: the timestamp authority or the ledger slow, failing, or down."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from harness.faults.base import Fault, FaultContext, Param, param, register

SERVICES = ("tsa", "ledger")


def _admin(ctx: FaultContext, service: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
    url = ctx.system.urls[service] + "/_admin/config"
    data = json.dumps(config).encode() if config is not None else None
    request = urllib.request.Request(
        url, data=data, method="POST" if data else "GET", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.loads(answer.read())


class _Knob(Fault):
    """A fault set through the service's admin API (`/_admin/config`, which the harness's own fake services
    serve; a team's service that has it gets these faults too)."""

    knob: dict[str, Any] = {}
    normal: dict[str, Any] = {}

    @classmethod
    def requires(cls, params: Mapping[str, Any]) -> tuple[str, ...]:
        return (f"service-admin:{params.get('service', 'tsa')}",)

    def settings(self, ctx: FaultContext) -> dict[str, Any]:
        raise NotImplementedError

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        service = ctx.params.get("service", "tsa")
        _admin(ctx, service, self.settings(ctx))
        return {"service": service, **self.settings(ctx)}

    def took_effect(self, ctx: FaultContext) -> tuple[bool | None, str]:
        service = ctx.params.get("service", "tsa")
        current = _admin(ctx, service)
        wanted = self.settings(ctx)
        ok = all(current.get(k) == v for k, v in wanted.items())
        return ok, f"{service} config read back: {json.dumps({k: current.get(k) for k in wanted})}"

    def heal(self, ctx: FaultContext) -> dict[str, Any]:
        service = ctx.params.get("service", "tsa")
        _admin(ctx, service, self.normal)
        return {"service": service, **self.normal}


@register
class ServiceSlow(_Knob):
    name = "service-slow"
    description = "an external service answers slowly (added latency per request)"
    params = {"service": Param(str, "tsa", SERVICES), "latency_ms": Param(int, 500)}
    normal = {"latency_ms": 0}

    def settings(self, ctx: FaultContext) -> dict[str, Any]:
        return {"latency_ms": param(ctx, "latency_ms", ServiceSlow)}


@register
class ServiceFailing(_Knob):
    name = "service-failing"
    description = "an external service fails a share of requests with 503"
    params = {"service": Param(str, "tsa", SERVICES), "failure_rate": Param(float, 0.5)}
    normal = {"failure_rate": 0.0}

    def settings(self, ctx: FaultContext) -> dict[str, Any]:
        return {"failure_rate": float(param(ctx, "failure_rate", ServiceFailing))}


@register
class ServiceDown(Fault):
    name = "service-down"
    description = "an external service is gone: its process SIGKILLed (kill) or answering 503 to all (admin); heal brings it back on the same port"
    params = {"service": Param(str, "tsa", SERVICES), "method": Param(str, "kill", ("kill", "admin"))}

    @classmethod
    def requires(cls, params: Mapping[str, Any]) -> tuple[str, ...]:
        service = params.get("service", "tsa")
        if params.get("method", "kill") == "admin":
            return (f"service-admin:{service}",)
        return (f"service:{service}",)

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        service, method = param(ctx, "service", ServiceDown), param(ctx, "method", ServiceDown)
        if method == "admin":
            _admin(ctx, service, {"down": True})
        else:
            ctx.system.supervisor.kill(service)
        return {"service": service, "method": method}

    def took_effect(self, ctx: FaultContext) -> tuple[bool | None, str]:
        service = param(ctx, "service", ServiceDown)
        try:
            with urllib.request.urlopen(ctx.system.urls[service] + "/health", timeout=2):
                return False, f"{service} still answers /health"
        except (urllib.error.URLError, OSError) as exc:
            return True, f"{service} /health: {exc}"

    def heal(self, ctx: FaultContext) -> dict[str, Any]:
        service, method = param(ctx, "service", ServiceDown), param(ctx, "method", ServiceDown)
        if method == "admin":
            _admin(ctx, service, {"down": False})
        else:
            ctx.system.restart_service(service)
        return {"service": service}
