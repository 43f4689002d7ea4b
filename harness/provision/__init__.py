"""Disposable Postgres: `open_provider("embedded" | "docker" | DSN)` gives a started-on-enter provider."""

from __future__ import annotations

from typing import Any

from harness.provision.base import Provider, ServerInfo
from harness.provision.dsn import DsnPostgres
from harness.provision.embedded import EmbeddedPostgres

__all__ = ["DsnPostgres", "EmbeddedPostgres", "Provider", "ServerInfo", "open_provider"]


def open_provider(spec: str = "embedded", **kwargs: Any) -> Provider:
    """The provider named by a `--postgres` value: `embedded` (default), `docker`, or a DSN.

    `kwargs` go to that provider's constructor (`ready_clones` for all; `settings` and the like for embedded).
    """
    if spec == "embedded":
        return EmbeddedPostgres(**kwargs)
    if spec == "docker":
        from harness.provision.docker import DockerPostgres

        return DockerPostgres(**kwargs)
    return DsnPostgres(spec, **kwargs)
