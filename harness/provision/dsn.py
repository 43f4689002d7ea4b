"""An existing server named by a DSN: the harness creates scratch databases on it and drops them after."""

from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from harness.errors import BadDsn
from harness.provision.base import Provider, ServerInfo


class DsnPostgres(Provider):
    name = "dsn"

    def __init__(self, dsn: str, ready_clones: int = 0) -> None:
        super().__init__(ready_clones=ready_clones)
        self.dsn = dsn
        self._version = ""

    def start(self) -> None:
        try:
            params = conninfo_to_dict(self.dsn)
        except psycopg.ProgrammingError as exc:
            raise BadDsn(
                f"cannot parse DSN {self.dsn!r}: {exc}; use 'postgresql://user@host:port/db' "
                "or 'host=... port=... user=... dbname=...'"
            ) from exc
        params.setdefault("connect_timeout", 5)
        try:
            with psycopg.connect(make_conninfo("", **params), autocommit=True) as conn:
                version = conn.execute("SHOW server_version").fetchone()
                role = conn.execute(
                    "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user"
                ).fetchone()
                assert version is not None and role is not None  # one row each, always
                self._version, can_create = str(version[0]), role[0]
        except psycopg.OperationalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BadDsn(
                f"cannot connect to {_redact(self.dsn)}: {first}; check host, port, user and password, "
                "or use --postgres embedded"
            ) from exc
        if not can_create:
            raise BadDsn(
                f"the user of {_redact(self.dsn)} may not create databases; the harness needs CREATEDB "
                "to make a scratch database per run"
            )
        self._attach_databases(make_conninfo("", **params))

    def close(self) -> None:
        self._close_databases()

    def admin_dsn(self, dbname: str = "postgres") -> str:
        return make_conninfo(self.dsn, dbname=dbname)

    def info(self) -> ServerInfo:
        params = conninfo_to_dict(self.dsn)
        return ServerInfo(
            provider=self.name,
            version=self._version,
            host=str(params.get("host", "")),
            port=int(params.get("port", 5432) or 5432),
        )


def _redact(dsn: str) -> str:
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "the given DSN"
    if "password" in params:
        params["password"] = "***"
    return make_conninfo("", **params)
