"""The system under test, as the harness sees it: a migrations folder, worker and service command lines, and
settings. The harness drives a pipeline only through these and its SQL contract; it imports nothing of the
reference pipeline, so a team points it at its own pipeline with a small TOML file:

    name = "our-pipeline"
    migrations = "db/migrations"              # relative to this file
    [workers]                                 # role -> command; {python}, {dsn}, {tsa_url}, {ledger_url},
                                              # {batch} and {poll_interval} are filled in
    fase1-executor = ["{python}", "-m", "ourapp.decider", "--dsn", "{dsn}"]
    orchestrator = ["python", "-m", "ourapp.executor", "--dsn", "{dsn}", "--tsa", "{tsa_url}"]
    scheduler = ["python", "-m", "ourapp.scheduler", "--dsn", "{dsn}"]
    [services]                                # name -> command that prints "listening on http://host:port"
    tsa = ["python", "-m", "ourapp.fake_tsa", "--port", "0"]
    [settings]                                # rows written into pipeline_settings before workers start
    lease_seconds = "5"
"""

from __future__ import annotations

import importlib.util
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.errors import BadInput

ROLES = ("fase1-executor", "orchestrator", "scheduler", "monitor")


@dataclass(frozen=True)
class Sut:
    name: str
    migrations: Path
    workers: dict[str, tuple[str, ...]]
    services: dict[str, tuple[str, ...]] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    def worker_command(self, role: str, **values: str) -> list[str]:
        if role not in self.workers:
            raise BadInput(
                f"SUT {self.name!r} has no worker role {role!r}; it has: {', '.join(self.workers)}"
            )
        return [part.format(**values) for part in self.workers[role]]

    def with_settings(self, **settings: str) -> Sut:
        return replace(self, settings={**self.settings, **settings})


def reference_sut() -> Sut:
    """The reference pipeline of this repository, found as files (its package is not imported)."""
    spec = importlib.util.find_spec("pipeline")
    if spec is None or not spec.submodule_search_locations:
        raise BadInput(
            "the reference pipeline package is not installed; run `pip install -e .` in the project"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    py = "{python}"  # filled with the harness's own interpreter, so the same config works in any venv
    worker = (py, "-m", "pipeline", "worker")
    common = ("--dsn", "{dsn}", "--poll-interval", "{poll_interval}")
    return Sut(
        name="reference",
        migrations=root / "sql" / "migrations",
        workers={
            "fase1-executor": (*worker, "fase1-executor", *common, "--batch", "{batch}"),
            "orchestrator": (
                *worker,
                "orchestrator",
                *common,
                "--batch",
                "{batch}",
                "--tsa-url",
                "{tsa_url}",
                "--ledger-url",
                "{ledger_url}",
            ),
            "scheduler": (*worker, "scheduler", *common),
            "monitor": (*worker, "monitor", "--dsn", "{dsn}", "--metrics-port", "0"),
        },
        services={
            "tsa": (py, "-m", "pipeline.services", "tsa", "--port", "0"),
            "ledger": (py, "-m", "pipeline.services", "ledger", "--port", "0"),
        },
    )


def to_toml(sut: Sut, migrations: Path | None = None) -> str:
    """A SUT config file for `sut` (optionally with another migrations folder): the starting point of a
    team's own config, and how the quality tests point the harness at a copy of the reference pipeline."""

    def items(table: dict[str, tuple[str, ...]]) -> str:
        return "\n".join(
            f"{key} = [{', '.join(_quote(p) for p in command)}]" for key, command in table.items()
        )

    lines = [
        f"name = {_quote(sut.name)}",
        f"migrations = {_quote(str(migrations or sut.migrations))}",
        "",
        "[workers]",
        items(sut.workers),
        "",
        "[services]",
        items(sut.services),
    ]
    if sut.settings:
        lines += ["", "[settings]", *(f"{_quote(k)} = {_quote(v)}" for k, v in sut.settings.items())]
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def load_sut(path: Path) -> Sut:
    """Read a SUT config file; every problem is reported at once, naming the file and the key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInput(f"cannot read SUT config {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path}: not valid TOML: {exc}") from exc
    problems = []
    if not isinstance(data.get("name", ""), str):
        problems.append("name: expected a string")
    migrations = data.get("migrations")
    if not isinstance(migrations, str):
        problems.append("migrations: expected the path of a folder of .sql files")
    workers = data.get("workers", {})
    for role, command in workers.items():
        if role not in ROLES:
            problems.append(f"workers.{role}: unknown role; expected one of {', '.join(ROLES)}")
        if not (isinstance(command, list) and command and all(isinstance(p, str) for p in command)):
            problems.append(f"workers.{role}: expected a list of strings (the command line)")
    for name, command in data.get("services", {}).items():
        if not (isinstance(command, list) and command and all(isinstance(p, str) for p in command)):
            problems.append(f"services.{name}: expected a list of strings (the command line)")
    if problems:
        raise BadInput(f"{path}: " + "; ".join(problems))
    folder = (path.parent / migrations).resolve()
    return Sut(
        name=data.get("name", path.stem),
        migrations=folder,
        workers={k: tuple(v) for k, v in workers.items()},
        services={k: tuple(v) for k, v in data.get("services", {}).items()},
        settings={k: str(v) for k, v in data.get("settings", {}).items()},
        env={k: str(v) for k, v in data.get("env", {}).items()},
    )
