"""Disposable Postgres: `open_provider("embedded" | "docker" | DSN)` gives a started-on-enter provider."""

from __future__ import annotations

from harness.provision.base import Provider, ServerInfo
from harness.provision.dsn import DsnPostgres
from harness.provision.embedded import EmbeddedPostgres

__all__ = ["DsnPostgres", "EmbeddedPostgres", "Provider", "ServerInfo", "open_provider"]


def open_provider(spec: str = "embedded", **kwargs: object) -> Provider:
    """The provider named by a `--postgres` value: `embedded` (default), `docker`, or a DSN."""
    if spec == "embedded":
        return EmbeddedPostgres(**kwargs)  # type: ignore[arg-type]
    if spec == "docker":
        from harness.provision.docker import DockerPostgres

        return DockerPostgres(**kwargs)  # type: ignore[arg-type]
    return DsnPostgres(spec, **kwargs)  # type: ignore[arg-type]
