"""One mutant against the suite: deploy it on a copy, check it leaves the pipeline usable, run, classify.

Before the suite (cheap, on the session's own server): the mutant migration applied to a clone of the
migrated pipeline (an error: it **broke the schema**); the SUT contract held by that database and the workers
started on it, as `harness sut check` judges a pipeline; and one request through the entry point (an error
there: the pipeline is unusable at once). Any of these is counted apart, never as a kill: every test would
notice.

Then `harness run` in a subprocess, as a user would run it: the chosen scenario files in the chosen order,
`--fail-fast`, the report read back from `report.json`. Exit 1: **killed** (the first invalid scenario and its
failed checks are recorded). Exit 0: **survived**. Exit 2 or 4: **unknown**, with why. Exit 3: the run
refused the copy (counted with the schema-breakers).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from harness.errors import HarnessError, SutIncomplete
from harness.mutate.copies import mutant_migration, sut_copy
from harness.mutate.generator import Mutant
from harness.provision import Provider
from harness.provision.migrations import MigrationPlan
from harness.records import Scenario
from harness.sut.adapter import SutSql
from harness.sut.config import Sut
from harness.sut.system import RunningSystem

KILLED, SURVIVED, EQUIVALENT, BROKE, UNKNOWN, UNTRIED = (
    "killed",
    "survived",
    "equivalent",
    "broke",
    "unknown",
    "untried",
)


@dataclass
class Outcome:
    mutant: Mutant
    status: str
    reason: str = ""  # broke / unknown / untried / equivalent: why
    scenario: str | None = None  # killed: the scenario that caught it
    checks: tuple[str, ...] = ()  # killed: its failed checks
    evidence: str = ""  # killed: the first anomaly's explanation
    scenarios: tuple[str, ...] = ()  # the scenarios it was run against, in order
    lost: tuple[str, ...] = ()  # scenarios not applicable on the mutant, though they ran on the original
    seconds: float = 0.0
    folder: Path | None = None
    ran: bool = field(default=False)  # whether the suite ran at all (false: judged before or left out)


def _first_line(text: object) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


class MutantRunner:
    """Runs mutants of `sut` one at a time; `provider` is the session's own server (the cheap checks)."""

    def __init__(self, sut: Sut, provider: Provider, postgres: str, workdir: Path) -> None:
        self.sut = sut
        self.provider = provider
        self.postgres = postgres
        self.workdir = workdir
        self.plan = MigrationPlan(sut.migrations)
        self.entry_probe = True

    # -- before the suite -------------------------------------------------------------------------------
    def usable(self, sut: Sut, sql_text: str | None) -> str | None:
        """Why the pipeline (with `sql_text` applied last) is not usable at once; None when it is."""
        dsn = self.provider.new_database(self.plan)
        try:
            if sql_text is not None:
                try:
                    with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction():
                        conn.execute(sql_text.encode())
                except psycopg.Error as exc:
                    return f"the mutant migration fails to apply: {_first_line(exc)}"
            try:
                sql = SutSql.connect(sut, dsn)
            except SutIncomplete as exc:
                return "harness sut check: " + "; ".join(exc.missing)
            if sut.alerts.profile:  # the first statement a scenario with a timing profile runs
                try:
                    with psycopg.connect(dsn, autocommit=True) as conn:
                        conn.execute(sut.alerts.profile)
                except psycopg.Error as exc:
                    return f"the SUT file's alert profile statement fails: {_first_line(exc)}"
            if self.entry_probe and sut.entry.request:
                try:
                    with psycopg.connect(dsn, autocommit=True) as conn:
                        sql.request(
                            conn, str(uuid.uuid4()), "harness mutate", "harness-mutate", str(uuid.uuid4())
                        )
                except psycopg.Error as exc:
                    return f"the entry point raises at once: {_first_line(exc)}"
            try:
                with (
                    tempfile.TemporaryDirectory(prefix="harness-mutate-check-") as logs,
                    RunningSystem(sut, dsn, Path(logs), sql=sql),
                ):
                    pass
            except HarnessError as exc:
                return f"harness sut check: the system does not start: {_first_line(exc)}"
            return None
        finally:
            with contextlib.suppress(Exception):
                self.provider.drop_database(dsn)

    # -- the suite --------------------------------------------------------------------------------------
    def run(self, mutant: Mutant, scenarios: list[Scenario], deadline: float | None) -> Outcome:
        started = time.monotonic()
        folder = self.workdir / mutant.id
        migration = mutant_migration(mutant.id, mutant.operator, mutant.target, mutant.sql)
        copy, toml = sut_copy(self.sut, folder, "mutant", migration)
        broke = self.usable(copy, migration)
        if broke:
            return Outcome(mutant, BROKE, broke, seconds=time.monotonic() - started, folder=folder)
        report = folder / "report"
        command = [sys.executable, "-m", "harness.cli", "run", *(str(s.path) for s in scenarios)]
        command += [
            "--sut",
            str(toml),
            "--fail-fast",
            "--report-dir",
            str(report),
            "--postgres",
            self.postgres,
        ]
        timeout = None if deadline is None else max(deadline - time.monotonic(), 1.0)
        code = _run(command, folder / "run.log", timeout)
        names = tuple(s.name for s in scenarios)
        outcome = Outcome(mutant, UNKNOWN, scenarios=names, folder=folder, ran=True)
        if code is None:
            outcome.status, outcome.reason = UNTRIED, "the budget ran out while it ran"
        else:
            _classify(outcome, code, report / "report.json", folder / "run.log")
        outcome.seconds = time.monotonic() - started
        return outcome


def _run(command: list[str], log: Path, timeout: float | None) -> int | None:
    """Run `harness run`; its exit code, or None when `timeout` ran out (it was stopped with SIGTERM, which
    the harness unwinds like Ctrl-C: faults healed, processes and servers stopped)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_end_with_parent
        )
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _stop(proc)
            return None
        except BaseException:
            _stop(proc)
            raise


def _end_with_parent() -> None:
    """In the child, before exec: a SIGTERM from the kernel if this process dies without stopping it (killed
    with SIGKILL), so the harness run unwinds instead of running on alone."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(120)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _classify(outcome: Outcome, code: int, report_json: Path, log: Path) -> None:
    try:
        report: dict[str, Any] = json.loads(report_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        report = {}
    scenarios = report.get("scenarios", [])
    tail = (
        [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-1:]
        if log.exists()
        else []
    )
    if code == 1:
        outcome.status = KILLED
        caught: dict[str, Any] = next((s for s in scenarios if s.get("verdict") == "invalid"), {})
        outcome.scenario = caught.get("name")
        outcome.checks = tuple(caught.get("failed", ()))
        for check in caught.get("checks", ()):
            if check.get("outcome") == "failed" and check.get("anomalies"):
                outcome.evidence = _first_line(check["anomalies"][0].get("explanation", ""))[:300]
                break
    elif code == 0:
        outcome.status = SURVIVED
        outcome.lost = tuple(
            f"{s['name']}: {'; '.join(s.get('not_applicable', ())) or 'not applicable'}"
            for s in scenarios
            if s.get("verdict") == "not-applicable"
        )
    elif code == 3:
        outcome.status, outcome.reason = (
            BROKE,
            f"harness run refused the copy: {tail[0] if tail else 'exit 3'}",
        )
    else:
        undecided = [f"{s['name']}: {_undecided(s)}" for s in scenarios if s.get("verdict") == "unknown"]
        why = "; ".join(undecided) or (tail[0] if tail else "")
        outcome.reason = f"exit {code}: {why}" if why else f"exit {code}"


def _undecided(scenario: dict[str, Any]) -> str:
    """Why a scenario of a mutant's run was unknown: its error, the faults that did not take effect, or the
    checks that could not decide."""
    if scenario.get("error"):
        return "could not run: " + _first_line(scenario["error"])[:200]
    why = ", ".join(scenario.get("undecided", ())) or "unknown"
    not_taken = [
        f"{f.get('label')}: {_first_line(str(f.get('evidence') or ''))[:160]}"
        for f in scenario.get("faults", ())
        if f.get("took_effect") is False
    ]
    return why + (f" ({'; '.join(not_taken)})" if not_taken else "")
