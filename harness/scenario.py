"""Scenario files: YAML, validated whole before anything runs.

Every problem is reported at once, each as `file: path.in.file: what was found; what is allowed`, e.g.
`harness/scenarios/worker-crash.yaml: faults[1].role: 'some' is not allowed; expected one of: fase1-executor, ...`.
`harness/scenarios/README.md` documents the format field by field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from harness.errors import BadInput
from harness.faults import REGISTRY
from harness.records import SUITES, AlertExpectation, Expectations, FaultSpec, Scenario, Workload
from harness.sut.config import ALERTS, ROLES

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"  # the built-in scenarios ship in the wheel
DEFAULT_CHECKS = (
    "no_lost_job",
    "no_duplicate_job",
    "one_result_per_job",
    "flows_complete",
    "traces_complete",
    "strict_gateway",
    "compat_warnings",
    "faults_took_effect",
    "drained",
    "requests_accepted",
    "exclusive_runs",
    "no_stuck_job",
    "kpi_agrees",
    "one_side_effect_per_job",
)
TOP = {
    "name",
    "description",
    "suites",
    "seed",
    "workload",
    "faults",
    "expect",
    "settings",
    "profile",
    "workers",
    "migrations",
    "drain_timeout_s",
    "stall_s",
}


_SUITE_NAME = re.compile(r"^[a-z][a-z0-9-]*$")


class ScenarioError(BadInput):
    """The scenario files have problems; each line names the file, the place and what is allowed."""


def known_checks() -> tuple[str, ...]:
    try:
        from harness.checkers import CHECKERS
    except ImportError:  # the checkers package is not there yet: accept the default names
        return (*DEFAULT_CHECKS, "alerts_expected", "alerts_quiet", "gap_slo", "throughput_slo")
    return tuple(CHECKERS)


class _Problems:
    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: list[str] = []

    def add(self, path: str, found: Any, allowed: str) -> None:
        self.lines.append(f"{self.file}: {path}: {found!r} is not allowed; expected {allowed}")

    def missing(self, path: str, allowed: str) -> None:
        self.lines.append(f"{self.file}: {path}: missing; expected {allowed}")

    def unknown_keys(self, path: str, data: Mapping[str, Any], allowed: Iterable[str]) -> None:
        allowed = sorted(allowed)
        for key in data:
            if key not in allowed:
                self.lines.append(
                    f"{self.file}: {path + '.' if path else ''}{key}: unknown field; "
                    f"expected one of: {', '.join(allowed)}"
                )


def _number(
    problems: _Problems,
    path: str,
    value: Any,
    minimum: float,
    integer: bool = False,
    maximum: float | None = None,
) -> float | None:
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or value < minimum or (maximum is not None and value > maximum):
        kind = "a whole number" if integer else "a number"
        upper = f" and at most {maximum:g}" if maximum is not None else ""
        problems.add(path, value, f"{kind} at least {minimum:g}{upper}")
        return None
    return value


def _workload(data: Any, problems: _Problems) -> Workload:
    if not isinstance(data, Mapping):
        problems.add(
            "workload", data, "a mapping with flows, rate, duplicate_same_id, duplicate_same_intent, clients"
        )
        return Workload()
    problems.unknown_keys(
        "workload", data, {"flows", "rate", "duplicate_same_id", "duplicate_same_intent", "clients"}
    )
    values: dict[str, Any] = {}
    for key, minimum, integer, maximum in (
        ("flows", 1, True, 100000),
        ("rate", 0.1, False, 5000),
        ("duplicate_same_id", 0, False, 1),
        ("duplicate_same_intent", 0, False, 1),
        ("clients", 1, True, 32),
    ):
        if (
            key in data
            and _number(problems, f"workload.{key}", data[key], minimum, integer, maximum) is not None
        ):
            values[key] = data[key]
    return Workload(**values)


def _faults(data: Any, problems: _Problems) -> tuple[FaultSpec, ...]:
    if data is None:
        return ()
    if not isinstance(data, list):
        problems.add("faults", data, "a list of faults")
        return ()
    found = []
    for index, item in enumerate(data):
        path = f"faults[{index}]"
        if not isinstance(item, Mapping):
            problems.add(path, item, "a mapping with fault, at, duration and the fault's parameters")
            continue
        name = item.get("fault")
        if name not in REGISTRY:
            problems.add(f"{path}.fault", name, "one of: " + ", ".join(sorted(REGISTRY)))
            continue
        cls = REGISTRY[name]
        problems.unknown_keys(path, item, {"fault", "at", "duration", *cls.params})
        at = item.get("at", 0)
        _number(problems, f"{path}.at", at, 0)
        duration = item.get("duration")
        if duration is not None:
            _number(problems, f"{path}.duration", duration, 0)
        params = {}
        for key, spec in cls.params.items():
            if key not in item:
                if spec.required:
                    problems.missing(f"{path}.{key}", spec.describe())
                continue
            value = item[key]
            bad_type = not isinstance(value, spec.kind) or (spec.kind is int and isinstance(value, bool))
            if spec.kind is float and isinstance(value, int) and not isinstance(value, bool):
                bad_type = False
            if bad_type or (spec.choices and value not in spec.choices):
                problems.add(f"{path}.{key}", value, spec.describe())
                continue
            params[key] = value
        found.append(
            FaultSpec(
                name,
                float(at) if isinstance(at, (int, float)) else 0.0,
                float(duration) if isinstance(duration, (int, float)) else None,
                params,
            )
        )
    return tuple(found)


def _expect(data: Any, problems: _Problems) -> Expectations:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        problems.add("expect", data, "a mapping")
        data = {}
    problems.unknown_keys(
        "expect",
        data,
        {"checks", "catch", "alerts", "quiet", "gap_p99_s", "throughput_min_ratio", "outcomes"},
    )
    outcomes = data.get("outcomes", ["anchored", "failed"])
    if (
        not isinstance(outcomes, list)
        or not outcomes
        or not all(o in ("anchored", "failed") for o in outcomes)
    ):
        problems.add("expect.outcomes", outcomes, "a non-empty list of: anchored, failed")
        outcomes = ["anchored", "failed"]
    names = known_checks()
    lists: dict[str, tuple[str, ...]] = {}
    for key, default in (("checks", DEFAULT_CHECKS), ("catch", ())):
        value = data.get(key, list(default))
        if not isinstance(value, list):
            problems.add(f"expect.{key}", value, "a list of checker names")
            value = []
        for index, name in enumerate(value):
            if name not in names:
                problems.add(f"expect.{key}[{index}]", name, "one of: " + ", ".join(names))
        lists[key] = tuple(v for v in value if v in names)
    caught_and_checked = set(lists["checks"]) & set(lists["catch"])
    if caught_and_checked:
        problems.add(
            "expect.catch", sorted(caught_and_checked), "checkers not also listed under expect.checks"
        )
    alerts = []
    for index, item in enumerate(data.get("alerts") or []):
        path = f"expect.alerts[{index}]"
        if not isinstance(item, Mapping) or "alert" not in item:
            problems.add(path, item, "a mapping with alert, within (seconds), resolve (true/false), window_s")
            continue
        problems.unknown_keys(path, item, {"alert", "within", "resolve", "window_s"})
        if item["alert"] not in ALERTS:
            problems.add(f"{path}.alert", item["alert"], "one of: " + ", ".join(ALERTS))
        within = _number(problems, f"{path}.within", item.get("within", 30), 0.1)
        window = item.get("window_s")
        if window is not None:
            window = _number(problems, f"{path}.window_s", window, 0.1)
        if not isinstance(item.get("resolve", True), bool):
            problems.add(f"{path}.resolve", item.get("resolve"), "true or false")
        alerts.append(
            AlertExpectation(
                str(item["alert"]),
                float(within or 30),
                bool(item.get("resolve", True)),
                float(window) if isinstance(window, (int, float)) else None,
            )
        )
    quiet = data.get("quiet", True)
    if not isinstance(quiet, bool):
        problems.add("expect.quiet", quiet, "true or false")
    gap = data.get("gap_p99_s")
    if gap is not None:
        _number(problems, "expect.gap_p99_s", gap, 0)
    ratio = data.get("throughput_min_ratio")
    if ratio is not None:
        _number(problems, "expect.throughput_min_ratio", ratio, 0, maximum=1)
    checks = lists["checks"]
    if alerts and "alerts_expected" not in checks:
        checks = (*checks, "alerts_expected")
    if quiet is True and "alerts_quiet" not in checks and "alerts_quiet" in names:
        checks = (*checks, "alerts_quiet")
    if gap is not None and "gap_slo" not in checks:
        checks = (*checks, "gap_slo")
    if ratio is not None and "throughput_slo" not in checks:
        checks = (*checks, "throughput_slo")
    return Expectations(
        checks=checks,
        catch=lists["catch"],
        alerts_fire=tuple(alerts),
        alerts_quiet=quiet is True,
        gap_p99_s=gap,
        throughput_min_ratio=ratio,
        outcomes=tuple(outcomes),
    )


def parse_scenario(data: Any, file: str, path: Path | None = None) -> tuple[Scenario | None, list[str]]:
    problems = _Problems(file)
    if not isinstance(data, Mapping):
        problems.add("(top)", type(data).__name__, "a mapping of scenario fields")
        return None, problems.lines
    problems.unknown_keys("", data, TOP)
    name = data.get("name")
    if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
        problems.add("name", name, "a name of letters, digits, - and _")
    if not isinstance(data.get("description", ""), str) or not data.get("description"):
        problems.missing("description", "a sentence saying what the scenario proves")
    suites = data.get("suites", [])
    if not isinstance(suites, list) or not suites:
        problems.add("suites", suites, "a non-empty list of suites, e.g. " + ", ".join(SUITES))
        suites = []
    for index, suite in enumerate(suites):
        if not isinstance(suite, str) or not _SUITE_NAME.match(suite):
            problems.add(
                f"suites[{index}]",
                suite,
                f"a suite name ({', '.join(SUITES)}, or a team's own: lower-case, digits, -)",
            )
    seed = data.get("seed", 1)
    _number(problems, "seed", seed, 0, integer=True)
    settings = data.get("settings") or {}
    if not isinstance(settings, Mapping):
        problems.add("settings", settings, "a mapping of pipeline setting -> value")
        settings = {}
    workers = data.get("workers") or {}
    if not isinstance(workers, Mapping):
        problems.add("workers", workers, "a mapping of role -> process count")
        workers = {}
    for role, count in workers.items():
        if role not in ROLES:
            problems.add(f"workers.{role}", role, "a role: " + ", ".join(ROLES))
        _number(problems, f"workers.{role}", count, 0, integer=True, maximum=8)
    migrations = data.get("migrations") or {}
    if not isinstance(migrations, Mapping):
        problems.add("migrations", migrations, "a mapping with until and/or skip")
        migrations = {}
    problems.unknown_keys("migrations", migrations, {"until", "skip", "set"})
    until = migrations.get("until")
    if until is not None and not isinstance(until, str):
        problems.add("migrations.until", until, 'a migration version as a string, e.g. "0007"')
    migration_set = migrations.get("set")
    if migration_set is not None and not isinstance(migration_set, str):
        problems.add("migrations.set", migration_set, "the name of a set in the SUT file's [migration_sets]")
    if migration_set is not None and (until is not None or migrations.get("skip")):
        problems.add("migrations", dict(migrations), "either set, or until and/or skip")
    skip = migrations.get("skip", [])
    if not isinstance(skip, list) or not all(isinstance(v, str) for v in skip):
        problems.add("migrations.skip", skip, "a list of migration versions as strings")
        skip = []
    profile = data.get("profile")
    if profile is not None and not isinstance(profile, str):
        problems.add("profile", profile, "the name of an alert profile, e.g. fast")
    drain = data.get("drain_timeout_s", 30)
    _number(problems, "drain_timeout_s", drain, 1)
    stall = data.get("stall_s", 6)
    _number(problems, "stall_s", stall, 1)
    faults = _faults(data.get("faults"), problems)
    scenario = Scenario(
        name=str(name),
        description=str(data.get("description", "")),
        suites=tuple(suites),
        seed=int(seed) if isinstance(seed, int) else 1,
        workload=_workload(data.get("workload", {}), problems),
        faults=faults,
        expect=_expect(data.get("expect"), problems),
        settings={str(k): str(v) for k, v in settings.items()},
        profile=profile,
        workers={str(k): int(v) for k, v in workers.items() if isinstance(v, int)},
        migrations_until=until if isinstance(until, str) else None,
        migrations_skip=tuple(skip),
        migrations_set=migration_set if isinstance(migration_set, str) else None,
        drain_timeout_s=float(drain) if isinstance(drain, (int, float)) else 30.0,
        stall_s=float(stall) if isinstance(stall, (int, float)) and not isinstance(stall, bool) else 6.0,
        own_server=any(REGISTRY[f.fault].needs_own_server for f in faults),
        path=path,
    )
    return (scenario if not problems.lines else None), problems.lines


def load_scenario_file(path: Path) -> tuple[Scenario | None, list[str]]:
    shown = _shown(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        return None, [f"{shown}: cannot read: {exc.strerror}"]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        return None, [f"{shown}: {where}not valid YAML: {getattr(exc, 'problem', exc)}"]
    return parse_scenario(data, shown, path)


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def all_scenario_files(folders: Sequence[Path] = (SCENARIO_DIR,)) -> list[Path]:
    """Every scenario file of the folders, each folder's files in name order."""
    found: list[Path] = []
    for folder in folders:
        if not folder.is_dir():
            raise ScenarioError(f"scenario folder {folder} does not exist; check --scenarios or the SUT file")
        found += sorted(p for p in folder.glob("*.y*ml") if p.suffix in (".yaml", ".yml"))
    return found


def load_scenarios(paths: Iterable[Path]) -> list[Scenario]:
    """Load and validate; raise ScenarioError listing every problem of every file."""
    scenarios, problems = [], []
    for path in paths:
        scenario, found = load_scenario_file(path)
        problems.extend(found)
        if scenario is not None:
            scenarios.append(scenario)
    names = [s.name for s in scenarios]
    for name in {n for n in names if names.count(n) > 1}:
        problems.append(f"scenario name {name!r} is used by more than one file")
    if problems:
        raise ScenarioError("\n".join(problems))
    return scenarios


def select(targets: list[str], folders: Sequence[Path] = (SCENARIO_DIR,)) -> list[Scenario]:
    """Scenarios named by suite names and/or file paths. A suite is every scenario of the folders (the
    built-in ones, then a team's own) that names it: the built-in suites, or a team's own."""
    paths: list[Path] = []
    suites: list[str] = []
    everything: list[Scenario] | None = None
    for target in targets:
        if Path(target).suffix in (".yaml", ".yml") or Path(target).exists():
            paths.append(Path(target))
            continue
        if everything is None:
            everything = load_scenarios(all_scenario_files(folders))
        known = {suite for s in everything for suite in s.suites} | set(SUITES)
        if target not in known:
            raise ScenarioError(
                f"{target!r} is neither a suite ({', '.join(sorted(known))}) nor a scenario file"
            )
        suites.append(target)
    chosen = load_scenarios(paths)
    if suites and everything is not None:
        chosen += [
            s for s in everything if set(s.suites) & set(suites) and s.name not in {c.name for c in chosen}
        ]
    if not chosen:
        raise ScenarioError(f"no scenario found for {' '.join(targets)}")
    return chosen
