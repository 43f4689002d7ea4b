"""Postgres in a container through testcontainers, only when asked for (`--postgres docker`)."""

from __future__ import annotations

import contextlib
from typing import Any

from harness.errors import BadInput, NoDockerEngine
from harness.provision.base import Provider, ServerInfo


class DockerPostgres(Provider):
    name = "docker"

    def __init__(self, image: str = "postgres:16-alpine", ready_clones: int = 2) -> None:
        super().__init__(ready_clones=ready_clones)
        self.image = image
        self._container: Any = None  # a testcontainers PostgresContainer (untyped)
        self._version = ""

    def start(self) -> None:
        try:
            try:
                from testcontainers.community.postgres import PostgresContainer
            except ImportError:  # testcontainers before the community split
                from testcontainers.postgres import PostgresContainer
        except ImportError as exc:
            raise BadInput(
                "--postgres docker needs testcontainers: pip install 'pg-pipeline-harness[docker]'"
            ) from exc
        try:
            import docker

            with contextlib.closing(docker.from_env()) as engine:  # its socket is closed, not left to GC
                engine.ping()
        except Exception as exc:
            raise NoDockerEngine() from exc
        self._container = PostgresContainer(self.image, driver=None).start()
        host = self._container.get_container_host_ip()
        port = int(self._container.get_exposed_port(5432))
        self._admin = (
            f"host={host} port={port} user={self._container.username} "
            f"password={self._container.password} dbname={self._container.dbname}"
        )
        self._attach_databases(self._admin)

    def close(self) -> None:
        self._close_databases()
        if self._container is not None:
            self._container.stop()
            self._container = None

    def admin_dsn(self, dbname: str = "postgres") -> str:
        from psycopg.conninfo import make_conninfo

        return make_conninfo(self._admin, dbname=dbname)

    def info(self) -> ServerInfo:
        return ServerInfo(provider=self.name, version=self._version, host="", port=0, detail=self.image)
