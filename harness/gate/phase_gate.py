"""`harness gate --phase N`: the RFC's exit criteria of phase N, checked, with the evidence written to
`reports/phase-gates/phase-N-<date>.md` and `.json` (Go/No-Go line first; JSON with `phase`, `go` and
`criteria`, each with `name`, `ok` and `evidence`). Exit 0 only if every criterion holds.

Against the reference system by default: a private embedded Postgres, the reference migrations, and the
reference workers and services running, so the canary flows are real. Given a DSN, the gate checks that
database and submits its canary flows to it; the pipeline's own workers must be running there.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

from contracts.check import run_checks
from contracts.config import Config, load_config
from contracts.errors import ContractInputError
from harness.errors import HarnessError
from harness.gate.canary import CanaryResult, run_canary
from harness.gate.phases import PHASES, Criterion, GateFacts
from harness.sut.config import Sut, load_sut, reference_sut


@contextlib.contextmanager
def _owned_system(spec: str, sut: Sut) -> Iterator[str]:
    """The pipeline running on a fresh embedded database; its DSN."""
    from harness.errors import HarnessError
    from harness.provision import open_provider
    from harness.provision.migrations import MigrationPlan
    from harness.sut.system import RunningSystem

    try:
        with (
            open_provider(spec, ready_clones=0) as provider,
            tempfile.TemporaryDirectory(prefix="gate-") as logs,
        ):
            dsn = provider.new_database(MigrationPlan(sut.migrations))
            with RunningSystem(sut, dsn, Path(logs)):
                yield dsn
    except HarnessError as exc:
        raise ContractInputError(f"could not start the pipeline {sut.name!r} ({spec}): {exc}") from exc


def evaluate(
    phase: int,
    dsn: str,
    source: Path,
    config: Config,
    runs: int,
    flow_timeout: float,
    window_s: float,
    owned: bool,
    sut: Sut | None = None,
) -> tuple[list[Criterion], GateFacts]:
    """Gather the facts once (contracts, canary) and judge every criterion of the phase."""
    contracts = run_checks(config, source, dsn)
    needs_canary = phase in (1, 3, 4) or owned  # phase 2 on a fresh database needs traffic to judge
    canary = run_canary(dsn, runs, flow_timeout, sut) if needs_canary else CanaryResult(0)
    facts = GateFacts(dsn, source, config, contracts, canary, window_s, owned, sut=sut)
    criteria = []
    for judge in PHASES[phase]:
        try:
            criteria.append(judge(facts))
        except (ContractInputError, HarnessError, psycopg.Error) as exc:
            # a criterion that cannot read what it needs is not met, with the reason, never a crashed gate
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            criteria.append(
                Criterion(judge.__name__.replace("_", " "), False, (f"could not check: {first}",))
            )
    return criteria, facts


def gate_command(args: argparse.Namespace) -> int:
    if args.runs < 1:
        raise ContractInputError(f"--runs must be at least 1, got {args.runs}")
    if not args.source.is_dir():
        raise ContractInputError(
            f"source path {args.source} is not a folder; pass --source with the repository"
        )
    config = load_config(args.config, args.source)
    # SIGTERM unwinds like Ctrl-C, so the embedded server, workers and services are always stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    started = dt.datetime.now(dt.UTC)
    clock = time.monotonic()
    owned = args.postgres in ("embedded", "docker")
    sut = load_sut(args.sut) if getattr(args, "sut", None) else reference_sut()
    with _owned_system(args.postgres, sut) if owned else contextlib.nullcontext(args.postgres) as dsn:
        criteria, facts = evaluate(
            args.phase,
            dsn,
            args.source,
            config,
            args.runs,
            args.flow_timeout,
            args.window_days * 86400,
            owned,
            sut,
        )
    report = {
        "phase": args.phase,
        "go": all(c.ok for c in criteria),
        "criteria": [c.as_dict() for c in criteria],
        "started_at": started.isoformat(timespec="seconds"),
        "took_s": round(time.monotonic() - clock, 1),
        "target": f"pipeline {sut.name!r} on {args.postgres} Postgres" if owned else "the given DSN",
        "database": facts.contracts.server,
        "source": str(args.source),
        "runs": args.runs,
        "command": "harness " + " ".join(sys.argv[1:])
        if sys.argv[1:2] == ["gate"]
        else f"harness gate --phase {args.phase}",
    }
    md_path, json_path = write_evidence(report, args.out_dir, started.date())
    print(_markdown(report).split("\n\n", 1)[0])
    for criterion in criteria:
        print(f"  [{'x' if criterion.ok else ' '}] {criterion.name}")
    print(f"evidence: {md_path} and {json_path}")
    return 0 if report["go"] else 1


def write_evidence(report: dict[str, object], out_dir: Path, day: dt.date) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"phase-{report['phase']}-{day.isoformat()}"
    md_path, json_path = stem.with_suffix(".md"), stem.with_suffix(".json")
    json_path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    md_path.write_text(_markdown(report), encoding="utf-8")
    return md_path, json_path


def _markdown(report: dict[str, object]) -> str:
    criteria = report["criteria"]
    database = report["database"]
    assert isinstance(criteria, list) and isinstance(database, dict)
    met = sum(1 for c in criteria if c["ok"])
    verdict = "GO" if report["go"] else "NO-GO"
    lines = [
        f"**{verdict}** — phase {report['phase']}: {met} of {len(criteria)} exit criteria met",
        "",
        f"# Phase {report['phase']} gate, {report['started_at']}",
        "",
        f"- target: {report['target']} (database {database.get('database')}, Postgres "
        f"{database.get('version')})",
        f"- source: `{report['source']}`; canary runs: {report['runs']}; took {report['took_s']} s",
        f"- re-run: `{report['command']}`",
        "",
        "| criterion | verdict |",
        "| --- | --- |",
    ]
    lines += [f"| {c['name']} | {'met' if c['ok'] else '**not met**'} |" for c in criteria]
    for c in criteria:
        lines += ["", f"## {'✅' if c['ok'] else '❌'} {c['name']}", ""]
        lines += [f"- {line}" for line in c["evidence"]]
    return "\n".join(lines) + "\n"


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt
