"""The SUT file: what the harness is told about a pipeline, beside what it discovers in the pipeline's schema.

A team points the harness at its own pipeline with a small TOML file (`harness init` writes a commented one;
`harness/sut/CONTRACT.md` is the contract it fills in). Only `migrations`, `[entry]` and `[workers]` are
needed when the pipeline keeps the RFC's names; every other section says where the pipeline differs or
what it has that discovery cannot see:

    name = "our-pipeline"
    migrations = "db/migrations"              # relative to this file
    scenarios = ["chaos"]                     # the team's own scenario folders, beside the built-in ones

    [entry]                                   # REQUIRED: how a client asks for a new flow
    request = "SELECT our_request(%(entity_id)s, %(document)s)"   # named parameters: entity_id, document,
                                              # event_id (the request event's id), owner
    [workers]                                 # role -> command; {python}, {dsn}, {tsa_url}, {ledger_url},
    fase1-executor = ["{python}", "-m", "ourapp.decider", "--dsn", "{dsn}"]   # {batch}, {poll_interval}
    orchestrator = ["{python}", "-m", "ourapp.executor", "--dsn", "{dsn}", "--tsa", "{tsa_url}"]
    [services]                                # name -> command that prints "listening on http://host:port"
    tsa = ["{python}", "-m", "ourapp.fake_tsa", "--port", "0"]

The optional sections (`[settings]`, `[setting_statements]`, `[fixed_settings]`, `[reads]`, `[failpoints]`,
`[alerts]`, `[conventions]`, `[migration_sets]`, `[capabilities]`, `[env]`) are described field by field in
CONTRACT.md. Every problem in a file is reported at once, naming the key.
"""

from __future__ import annotations

import importlib.util
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.errors import BadInput

ROLES = ("fase1-executor", "orchestrator", "scheduler", "monitor")
REQUIRED_ROLES = ("fase1-executor", "orchestrator")
# The canonical relations the harness reads (CONTRACT.md gives their columns); `[reads]` may replace any.
READS = (
    "entities",
    "jobs",
    "runs",
    "job_types",
    "compat_warnings",
    "settings",
    "alert_state",
    "alert_history",
    "kpi",
)
# Failpoint places the harness's scenarios name, by what happens there, not by any pipeline's names.
FAILPOINT_POINTS = (
    "decision.after-claim",
    "decision.before-commit",
    "execution.after-claim",
    "execution.after-side-effect",
    "execution.before-result-event",
    "execution.before-commit",
)
FAILPOINT_ACTIONS = ("crash", "crash-once", "hang", "error")
# Alerts the RFC asks for (phase 3), by what they are about; a pipeline's rules are mapped onto these names.
ALERTS = (
    "core-trigger-disabled",
    "event-to-job-gap",
    "backlog-ready",
    "backlog-age",
    "retry-storm",
    "dead-jobs",
    "compat-warnings",
    "worker-absent",
)
ALERT_SOURCES = ("auto", "sut", "harness")
TOP = {
    "name",
    "migrations",
    "scenarios",
    "entry",
    "workers",
    "services",
    "settings",
    "setting_statements",
    "fixed_settings",
    "reads",
    "failpoints",
    "alerts",
    "conventions",
    "migration_sets",
    "capabilities",
    "env",
    "side_effects",
}


@dataclass(frozen=True)
class Entry:
    """How a client asks for a new flow: a SQL statement with named parameters, or a command line."""

    request: str | None = None
    request_command: tuple[str, ...] = ()

    @property
    def given(self) -> bool:
        return bool(self.request or self.request_command)

    def takes(self, parameter: str) -> bool:
        """Whether the entry point receives `parameter` (e.g. event_id: duplicates of the same event)."""
        needle = f"%({parameter})s" if self.request else "{" + parameter + "}"
        return needle in (self.request or " ".join(self.request_command))


@dataclass(frozen=True)
class Failpoints:
    """Statements that arm, disarm and count a failpoint, and the pipeline's name for each harness point."""

    arm: str | None = None  # %(name)s, %(action)s
    disarm: str | None = None  # %(name)s
    hits: str | None = None  # %(name)s -> one integer
    scoped: str | None = None  # a failpoint's name scoped to one job type, with {name} and {job_type}
    points: Mapping[str, str] = field(default_factory=dict)
    actions: Mapping[str, str] = field(
        default_factory=lambda: {"crash": "crash", "crash-once": "1*crash", "hang": "hang", "error": "raise"}
    )


@dataclass(frozen=True)
class Alerts:
    """Where alert state comes from. `sut`: the pipeline's own evaluation (its rules mapped onto the RFC's
    alerts); `harness`: the harness's observability pack over the RFC's tables; `auto`: the pipeline's own
    when it has alert history and a rule mapping, else the pack."""

    source: str = "auto"
    profile: str | None = None  # a statement making the pipeline's alerts fast for a chaos run
    rules: Mapping[str, str] = field(default_factory=dict)  # harness alert -> the pipeline's rule name
    window_setting: str | None = (
        None  # setting key of a rule's window, with {rule}, e.g. alert.{rule}.window_s
    )


@dataclass(frozen=True)
class Conventions:
    """Facts about a pipeline that its schema cannot tell. Every default is the answer that assumes least."""

    strict_reject_sqlstate: str | None = None  # the SQLSTATE a strict gateway raises; None: any error
    compat_marker: str | None = None  # payload key on events a compat guard wrote for a legacy insert
    via_gateway: tuple[str, ...] = ()  # materialized_via values of jobs made through the gateway
    via_redirect: str | None = None  # materialized_via of a job the compat guard redirected
    via_direct_call: str | None = None  # materialized_via of a job asked for by name (not from an event)
    projection_trigger: str | None = None  # trigger name of the user_documents projection (else discovered)
    replay: str | None = None  # statement replaying events that got no job, %(window_s)s
    poison_event_type: str = "job.protect.required"
    poison_payload: str = '{"document": {"not": "a string"}}'  # JSON no handler of that type can process


@dataclass(frozen=True)
class MigrationSet:
    until: str | None = None
    skip: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sut:
    name: str
    migrations: Path
    workers: Mapping[str, tuple[str, ...]]
    services: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    settings: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    entry: Entry = field(default_factory=Entry)
    scenarios: tuple[Path, ...] = ()
    setting_statements: Mapping[str, str] = field(default_factory=dict)
    fixed_settings: Mapping[str, str] = field(default_factory=dict)
    reads: Mapping[str, str] = field(default_factory=dict)
    failpoints: Failpoints = field(default_factory=Failpoints)
    alerts: Alerts = field(default_factory=Alerts)
    conventions: Conventions = field(default_factory=Conventions)
    migration_sets: Mapping[str, MigrationSet] = field(default_factory=dict)
    capabilities: Mapping[str, bool] = field(default_factory=dict)  # declared present or absent
    side_effects: Mapping[str, str] = field(default_factory=dict)  # service -> the job type that calls it
    path: Path | None = None

    def worker_command(self, role: str, **values: str) -> list[str]:
        if role not in self.workers:
            raise BadInput(
                f"SUT {self.name!r} has no worker role {role!r}; it has: {', '.join(self.workers)}"
            )
        return [part.format(**values) for part in self.workers[role]]

    def with_settings(self, **settings: str) -> Sut:
        return replace(self, settings={**self.settings, **settings})


def reference_sut() -> Sut:
    """The reference pipeline of this repository, read from its own SUT file (`pipeline/sut.toml`) like any
    team's: the harness finds the package's folder but never imports it."""
    spec = importlib.util.find_spec("pipeline")
    if spec is None or not spec.submodule_search_locations:
        raise BadInput(
            "the reference pipeline is not installed; install the harness with its reference pipeline "
            "(pip install pg-pipeline-harness) or pass --sut FILE"
        )
    return load_sut(Path(next(iter(spec.submodule_search_locations))) / "sut.toml")


def load_sut(path: Path) -> Sut:
    """Read a SUT file; every problem is reported at once, naming the file and the key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInput(
            f"cannot read SUT file {path}: {exc.strerror}; pass an existing file to --sut"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"{path}: not valid TOML: {exc}") from exc
    reader = _Reader(path)
    sut = reader.sut(data)
    if reader.problems:
        raise BadInput(f"{path}: " + "; ".join(reader.problems))
    assert sut is not None
    return sut


class _Reader:
    """Reads each section, noting every problem instead of stopping at the first."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[str] = []

    def note(self, key: str, expected: str) -> None:
        self.problems.append(f"{key}: expected {expected}")

    def table(self, data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, Mapping):
            self.note(key, "a table")
            return {}
        return value

    def text(self, data: Mapping[str, Any], key: str, where: str) -> str | None:
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            self.note(f"{where}{key}", "a string")
            return None
        return value

    def strings(self, table: Mapping[str, Any], where: str) -> dict[str, str]:
        found = {}
        for key, value in table.items():
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                found[str(key)] = str(value)
            else:
                self.note(f"{where}.{key}", "a string or a number")
        return found

    def commands(self, table: Mapping[str, Any], where: str) -> dict[str, tuple[str, ...]]:
        found = {}
        for name, command in table.items():
            if isinstance(command, list) and command and all(isinstance(p, str) for p in command):
                found[str(name)] = tuple(command)
            else:
                self.note(f"{where}.{name}", "a list of strings (the command line)")
        return found

    def unknown(self, data: Mapping[str, Any], allowed: set[str] | tuple[str, ...], where: str) -> None:
        for key in data:
            if key not in allowed:
                self.problems.append(
                    f"{where}{key}: unknown key; expected one of: {', '.join(sorted(allowed))}"
                )

    def sut(self, data: Mapping[str, Any]) -> Sut | None:
        self.unknown(data, TOP, "")
        name = self.text(data, "name", "") or self.path.stem
        migrations = data.get("migrations")
        if not isinstance(migrations, str):
            self.note("migrations", "the path of a folder of .sql files, relative to this file")
            migrations = "."
        workers = self.commands(self.table(data, "workers"), "workers")
        for role in workers:
            if role not in ROLES:
                self.problems.append(f"workers.{role}: unknown role; expected one of {', '.join(ROLES)}")
        entry = self.entry(self.table(data, "entry"))
        here = self.path.parent
        scenarios = data.get("scenarios", [])
        if isinstance(scenarios, str):
            scenarios = [scenarios]
        if not isinstance(scenarios, list) or not all(isinstance(s, str) for s in scenarios):
            self.note("scenarios", "a folder (or a list of folders) of scenario files, relative to this file")
            scenarios = []
        sets = {}
        for set_name, spec in self.table(data, "migration_sets").items():
            if not isinstance(spec, Mapping):
                self.note(
                    f"migration_sets.{set_name}", 'a table with until and/or skip, e.g. {skip = ["0008"]}'
                )
                continue
            self.unknown(spec, {"until", "skip"}, f"migration_sets.{set_name}.")
            skip = spec.get("skip", [])
            if not isinstance(skip, list) or not all(isinstance(v, str) for v in skip):
                self.note(f"migration_sets.{set_name}.skip", "a list of migration versions as strings")
                skip = []
            sets[str(set_name)] = MigrationSet(
                self.text(spec, "until", f"migration_sets.{set_name}."), tuple(skip)
            )
        capabilities = {}
        for key, value in self.table(data, "capabilities").items():
            if isinstance(value, bool):
                capabilities[str(key)] = value
            else:
                self.note(f"capabilities.{key}", "true or false")
        reads = self.strings(self.table(data, "reads"), "reads")
        self.unknown(reads, READS, "reads.")
        return Sut(
            name=name,
            migrations=(here / migrations).resolve(),
            workers=workers,
            services=self.commands(self.table(data, "services"), "services"),
            settings=self.strings(self.table(data, "settings"), "settings"),
            env=self.strings(self.table(data, "env"), "env"),
            entry=entry,
            scenarios=tuple((here / s).resolve() for s in scenarios),
            setting_statements=self.strings(self.table(data, "setting_statements"), "setting_statements"),
            fixed_settings=self.strings(self.table(data, "fixed_settings"), "fixed_settings"),
            reads=reads,
            failpoints=self.failpoints(self.table(data, "failpoints")),
            alerts=self.alerts(self.table(data, "alerts")),
            conventions=self.conventions(self.table(data, "conventions")),
            migration_sets=sets,
            capabilities=capabilities,
            side_effects=self.strings(self.table(data, "side_effects"), "side_effects"),
            path=self.path.resolve(),
        )

    def entry(self, table: Mapping[str, Any]) -> Entry:
        self.unknown(table, {"request", "request_command"}, "entry.")
        request = self.text(table, "request", "entry.")
        command = table.get("request_command", [])
        if not (isinstance(command, list) and all(isinstance(p, str) for p in command)):
            self.note(
                "entry.request_command", "a list of strings (a command line with {entity_id}, {document})"
            )
            command = []
        if request and command:
            self.problems.append("entry: give request or request_command, not both")
        if request and "%(entity_id)s" not in request:
            self.note("entry.request", "a statement with the named parameter %(entity_id)s")
        return Entry(request, tuple(command))

    def failpoints(self, table: Mapping[str, Any]) -> Failpoints:
        self.unknown(table, {"arm", "disarm", "hits", "scoped", "points", "actions"}, "failpoints.")
        scoped = self.text(table, "scoped", "failpoints.")
        if scoped is not None and not ("{name}" in scoped and "{job_type}" in scoped):
            self.note("failpoints.scoped", "a name with {name} and {job_type}, e.g. {name}@{job_type}")
            scoped = None
        points = self.strings(self.table(table, "points"), "failpoints.points")
        self.unknown(points, FAILPOINT_POINTS, "failpoints.points.")
        actions = self.strings(self.table(table, "actions"), "failpoints.actions")
        self.unknown(actions, FAILPOINT_ACTIONS, "failpoints.actions.")
        return Failpoints(
            arm=self.text(table, "arm", "failpoints."),
            disarm=self.text(table, "disarm", "failpoints."),
            hits=self.text(table, "hits", "failpoints."),
            scoped=scoped,
            points=points,
            actions={**Failpoints().actions, **actions},
        )

    def alerts(self, table: Mapping[str, Any]) -> Alerts:
        self.unknown(table, {"source", "profile", "rules", "window_setting"}, "alerts.")
        source = self.text(table, "source", "alerts.") or "auto"
        if source not in ALERT_SOURCES:
            self.note("alerts.source", "one of " + ", ".join(ALERT_SOURCES))
            source = "auto"
        rules = self.strings(self.table(table, "rules"), "alerts.rules")
        self.unknown(rules, ALERTS, "alerts.rules.")
        window = self.text(table, "window_setting", "alerts.")
        if window is not None and "{rule}" not in window:
            self.note("alerts.window_setting", "a setting key with {rule}, e.g. alert.{rule}.window_s")
        return Alerts(source, self.text(table, "profile", "alerts."), rules, window)

    def conventions(self, table: Mapping[str, Any]) -> Conventions:
        defaults = Conventions()
        allowed = set(Conventions.__dataclass_fields__)
        self.unknown(table, allowed, "conventions.")
        values: dict[str, Any] = {}
        for key in allowed & set(table):
            value = table[key]
            if key == "via_gateway":
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    self.note("conventions.via_gateway", "a list of materialized_via values")
                    continue
                values[key] = tuple(value)
            elif not isinstance(value, str):
                self.note(f"conventions.{key}", "a string")
            else:
                values[key] = value
        return replace(defaults, **values)


def to_toml(sut: Sut, migrations: Path | None = None) -> str:
    """A SUT file for `sut` with another migrations folder (how the tests point the harness at a copy of a
    pipeline with a planted bug): the file `sut` was read from, with its `migrations` line replaced and its
    relative paths made absolute."""
    if sut.path is None:
        raise BadInput(f"SUT {sut.name!r} was not read from a file; write its SUT file by hand")
    data = tomllib.loads(sut.path.read_text(encoding="utf-8"))
    data["migrations"] = str(migrations or sut.migrations)
    data["scenarios"] = [str(p) for p in sut.scenarios]
    return dumps(data)


def dumps(data: Mapping[str, Any]) -> str:
    """TOML for the plain tables a SUT file holds (strings, numbers, booleans, lists, nested tables)."""
    lines: list[str] = []
    tables: list[tuple[str, Mapping[str, Any]]] = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            tables.append((key, value))
        else:
            lines.append(f"{_key(key)} = {_value(value)}")
    for name, table in tables:
        lines += _table(name, table)
    return "\n".join(lines) + "\n"


def _table(name: str, table: Mapping[str, Any]) -> list[str]:
    lines = ["", f"[{name}]"]
    nested = []
    for key, value in table.items():
        if isinstance(value, Mapping) and not all(not isinstance(v, Mapping) for v in value.values()):
            nested.append((key, value))
        elif isinstance(value, Mapping):
            inline = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items())
            lines.append(f"{_key(key)} = {{{inline}}}")
        else:
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in nested:
        lines += _table(f"{name}.{_key(key)}", value)
    return lines


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else _quote(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return _quote(str(value))


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
