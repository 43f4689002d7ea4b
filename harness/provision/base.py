"""What every Postgres provider offers: a cluster, and fresh migrated databases on it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType

from harness.provision.cluster import ClusterDatabases
from harness.provision.migrations import MigrationPlan


@dataclass(frozen=True)
class ServerInfo:
    provider: str  # embedded | dsn | docker
    version: str
    host: str
    port: int
    detail: str = ""


class Provider:
    """A context manager owning a Postgres server (or a slice of one) for the harness.

    Subclasses implement `start`, `close`, `admin_dsn` and `info`; databases come from `ClusterDatabases`.
    Server-level faults (`stop`, `start_again`, `restart`, `crash`, `pause`, `resume`) exist only where the
    harness owns the server process; elsewhere they raise NotImplementedError saying so.
    """

    name = "provider"

    def __init__(self, ready_clones: int = 2) -> None:
        self.ready_clones = ready_clones
        self.databases: ClusterDatabases | None = None

    def __enter__(self) -> Provider:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def admin_dsn(self, dbname: str = "postgres") -> str:
        raise NotImplementedError

    def info(self) -> ServerInfo:
        raise NotImplementedError

    def _attach_databases(self, admin_dsn: str) -> None:
        self.databases = ClusterDatabases(admin_dsn, ready=self.ready_clones)

    def _close_databases(self) -> None:
        if self.databases is not None:
            self.databases.close()
            self.databases = None

    # -- databases -----------------------------------------------------------------------------------------
    def new_database(self, plan: MigrationPlan) -> str:
        """A fresh database migrated by `plan`; returns its DSN. The caller drops it with `drop_database`."""
        assert self.databases is not None, "provider not started"
        from harness.provision.cluster import dsn_for

        return dsn_for(self.databases.admin_dsn, self.databases.new_database(plan))

    @contextlib.contextmanager
    def database(self, plan: MigrationPlan) -> Iterator[str]:
        assert self.databases is not None, "provider not started"
        with self.databases.database(plan) as dsn:
            yield dsn

    def drop_database(self, dsn: str) -> None:
        from psycopg.conninfo import conninfo_to_dict

        assert self.databases is not None
        self.databases.drop(str(conninfo_to_dict(dsn)["dbname"]))

    def keep_ready(self, plan: MigrationPlan) -> None:
        """Keep clones of this plan ready in the background, so each `new_database` is a queue pop."""
        assert self.databases is not None
        self.databases.keep_ready(plan)

    # -- server faults (only where the harness owns the server) --------------------------------------------
    def _not_owned(self, what: str) -> NotImplementedError:
        return NotImplementedError(f"{what} needs a server the harness owns; use --postgres embedded")

    def stop(self, mode: str = "fast") -> None:
        raise self._not_owned("stopping the server")

    def start_again(self) -> None:
        raise self._not_owned("starting the server")

    def restart(self, mode: str = "fast") -> None:
        raise self._not_owned("restarting the server")

    def crash(self) -> None:
        raise self._not_owned("crashing the server")

    def pause(self) -> None:
        raise self._not_owned("pausing the server")

    def resume(self) -> None:
        raise self._not_owned("resuming the server")

    def postmaster_pid(self) -> int:
        """The server's postmaster pid (the server faults read it back to see that they took effect)."""
        raise self._not_owned("reading the postmaster pid")
