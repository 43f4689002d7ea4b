"""The contracts config: what the checked pipeline declares, and how its files map to worker roles.

The defaults describe the reference pipeline of this repository, so `harness contracts check` needs no
config there. A team describes its own pipeline in a small TOML file (`--config FILE`, else
`contracts.toml` at the source root when present); every key is optional:

    allowlist = "contracts/allowlist.toml"     # relative to the config file
    migrations = ["db/migrations/*.sql"]        # globs, relative to the source root
    exclude = ["vendor/**"]                     # globs never scanned
    gateway_functions = ["materialize_job"]     # the only functions allowed to INSERT INTO executor_jobs
    decision_role = "fase1-executor"
    worker_roles = ["pipeline_decider", "pipeline_executor", "pipeline_scheduler", "pipeline_writer"]
    core_tables = ["document_entities", "executor_jobs", "executor_job_runs", "job_types"]
    [job_types]                                 # the declared whitelist: type = kind
    decide_request = "decision"
    protect = "execution"
    [roles]                                     # role = globs of the files that are that role's code
    fase1-executor = ["app/decider/**", "db/queries/decision.sql"]
    [claims]                                    # claim function = the only role that may call it
    claim_initial_decision_jobs = "fase1-executor"
    [handlers]                                  # where the orchestrator's handler table is read statically
    file = "pipeline/handlers.py"
    function = "table"
    [core_events]                               # event type -> the job the core trigger must materialize
    "document.protect.requested" = "decide_request"
    "job.{execution}.completed" = "decide_outcome"   # {execution}: every execution type; {decision}, {type}
    "job.{type}.required" = "{type}"

`core_events` is what the behaviour probe (PGC011) appends, one event at a time in a rolled-back transaction.

How the live probes talk to the pipeline (statements run as given, with named parameters, always inside a
rolled-back transaction; the defaults are the reference's, in contracts/sql/live.sql):

    gateway_call = "SELECT enqueue_from_event(%(entity_id)s::uuid, %(job_type)s, ...) AS job_id"
    gateway_mode_read = "SELECT gateway_mode FROM config"         # or "none": no gateway modes
    gateway_mode_set = "UPDATE config SET gateway_mode = %(mode)s" # or "none"
    compat_warnings_read = "SELECT * FROM legacy_redirects WHERE entity_id = %(entity_id)s"  # or "none"
    strict_reject_sqlstate = "42501"                              # default: any error outside 23xxx/42xxx
    redirect_via = "legacy-redirect"                              # materialized_via of a redirected job
    entity_insert = "INSERT INTO document_entities (id) VALUES (%(entity_id)s)"
    event_append = "UPDATE document_entities SET events = events || ... WHERE id = %(entity_id)s"
    [claim_calls]                                                 # claim function = how to call it once
    claim_orchestrator_jobs = "SELECT * FROM claim_orchestrator_jobs(%(worker)s, %(limit)s)"

Each statement may use only the parameters its probe gives (PARAMETERS) and must use the REQUIRED ones; a
statement that does not fit the database (it names a relation, column or function that does not exist) is a
warning naming its key, never a violation: the check could not run as configured.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.errors import ContractInputError
from contracts.sqlfile import named_queries

KINDS = ("decision", "execution")

DEFAULT_JOB_TYPES = {
    "decide_request": "decision",
    "decide_outcome": "decision",
    "protect": "execution",
    "tsa": "execution",
    "anchor": "execution",
}
DEFAULT_ROLES = {
    "fase1-executor": (
        "pipeline/worker/decision.py",
        "pipeline/sql/queries/decision.sql",
        "pipeline/flow.py",
    ),
    "orchestrator": (
        "pipeline/worker/orchestrator.py",
        "pipeline/sql/queries/orchestrator.sql",
        "pipeline/handlers.py",
    ),
    "scheduler": ("pipeline/worker/scheduler.py", "pipeline/sql/queries/scheduler.sql"),
}
DEFAULT_CLAIMS = {"claim_initial_decision_jobs": "fase1-executor", "claim_orchestrator_jobs": "orchestrator"}
DEFAULT_EXCLUDE = (
    "**/node_modules/**",
    "**/__pycache__/**",
    "**/site-packages/**",
    "build/**",
    "dist/**",
    "reports/**",
)
CLAIM_KIND = {"fase1-executor": "decision", "orchestrator": "execution"}
DEFAULT_CORE_TABLES = ("document_entities", "executor_jobs", "executor_job_runs", "job_types")
# Event type -> job type the core trigger must materialize for it (RFC: job.<type>.required -> that job;
# DESIGN: requests and execution outcomes -> a decision job). {type}, {execution}, {decision} range over the
# whitelist (all types, or those of one kind); in the job type, the same word stands for the matched type.
DEFAULT_CORE_EVENTS = {
    "document.protect.requested": "decide_request",
    "job.{execution}.completed": "decide_outcome",
    "job.{execution}.failed": "decide_outcome",
    "job.{type}.required": "{type}",
}
_EVENT_WORDS = {"{type}": None, "{execution}": "execution", "{decision}": "decision"}

# The statements through which the live probes talk to the pipeline: key -> the named query of
# contracts/sql/live.sql that is its default (the reference's), the parameters the probe gives it and those
# it must use. "none" declares that the pipeline has no such thing (only where NONE_ALLOWED says it may).
NONE = "none"
STATEMENTS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "gateway_call": (
        "materialize",
        ("entity_id", "job_type", "source_event_id", "correlation_id", "trace_id", "via"),
        ("entity_id", "job_type", "source_event_id"),
    ),
    "gateway_mode_read": ("gateway_mode", (), ()),
    "gateway_mode_set": ("set_gateway_mode_local", ("mode",), ("mode",)),
    "compat_warnings_read": ("compat_warnings_of_entity", ("entity_id",), ("entity_id",)),
    "entity_insert": ("seed_entity", ("entity_id",), ("entity_id",)),
    "event_append": (
        "append_probe_event",
        ("entity_id", "event_id", "type", "correlation_id", "trace_id"),
        ("entity_id", "event_id", "type"),
    ),
}
NONE_ALLOWED = ("gateway_mode_read", "gateway_mode_set", "compat_warnings_read")
CLAIM_CALL = ("claim", ("worker", "limit"), ())  # [claim_calls]: default, parameters given, required
_PARAM = re.compile(r"%\((\w+)\)s")


@dataclass(frozen=True)
class Statement:
    """One probe statement as the checks run it: `text` None when the config declares it "none"."""

    key: str
    text: str | None
    configured: bool  # False: the reference's default

    @property
    def origin(self) -> str:
        return "from the contracts config" if self.configured else "the reference's default"

    @property
    def declared_none(self) -> bool:
        return self.text is None


@dataclass(frozen=True)
class Config:
    job_types: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_JOB_TYPES))
    roles: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_ROLES))
    claims: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_CLAIMS))
    decision_role: str = "fase1-executor"
    gateway_functions: tuple[str, ...] = ("materialize_job",)
    guard_trigger: str = "executor_jobs_gateway_guard"
    core_trigger: str = "on_document_entity_events_change"
    projection_table: str = "user_documents"
    worker_roles: tuple[str, ...] = (
        "pipeline_decider",
        "pipeline_executor",
        "pipeline_scheduler",
        "pipeline_writer",
    )
    migrations: tuple[str, ...] = ("**/migrations/*.sql",)
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    allowlist: Path | None = None
    handlers_file: str = "pipeline/handlers.py"
    handlers_function: str = "table"
    core_tables: tuple[str, ...] = DEFAULT_CORE_TABLES
    core_events: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_CORE_EVENTS))
    # The live probes' statements (STATEMENTS): None takes the reference's default, "none" declares absence.
    gateway_call: str | None = None
    gateway_mode_read: str | None = None
    gateway_mode_set: str | None = None
    compat_warnings_read: str | None = None
    entity_insert: str | None = None
    event_append: str | None = None
    claim_calls: dict[str, str] = field(default_factory=dict)
    strict_reject_sqlstate: str | None = None  # None: any SQLSTATE outside classes 23 and 42
    redirect_via: str = "compat_redirect"  # materialized_via of a job the guard redirected
    origin: str = "built-in defaults (the reference pipeline)"

    def statement(self, key: str) -> Statement:
        """The statement the probes run for `key` (STATEMENTS): the config's, else the reference's."""
        value = getattr(self, key)
        if value is None:
            default = named_queries("live")[STATEMENTS[key][0]]
            if key == "gateway_call":
                default = default.replace("{gateway}", _quote_ident(self.gateway_functions[0]))
            return Statement(key, default, False)
        return Statement(key, None if value == NONE else value, True)

    def claim_statement(self, function: str) -> Statement:
        """How the PGC003 probe calls one claim function: `[claim_calls]`, else `SELECT * FROM f(worker,
        limit)`."""
        key = f"claim_calls.{function}"
        if function in self.claim_calls:
            return Statement(key, self.claim_calls[function], True)
        return Statement(
            key, named_queries("live")[CLAIM_CALL[0]].replace("{claim}", _quote_ident(function)), False
        )

    def claim_kind(self, function: str) -> str:
        """The kind of jobs a claim function may return: the kind of its role's jobs."""
        return CLAIM_KIND.get(self.claims[function], "execution")

    def expected_jobs(self, job_types: dict[str, str] | None = None) -> dict[str, str]:
        """`event type -> job type` for every event the core trigger must turn into a job, the templates of
        `core_events` expanded over `job_types` (the live whitelist when given, else the declared one)."""
        types = job_types if job_types is not None else self.job_types
        out: dict[str, str] = {}
        for event, job in self.core_events.items():
            word = next((w for w in _EVENT_WORDS if w in event), None)
            if word is None:
                out[event] = job
                continue
            for name, kind in sorted(types.items()):
                if _EVENT_WORDS[word] in (None, kind):
                    out[event.replace(word, name)] = job.replace(word, name)
        return out


def load_config(path: Path | None, source: Path | None) -> Config:
    """The config from `path`, else `<source>/contracts.toml`, else the defaults; the allowlist defaults to
    `<source>/contracts/allowlist.toml` when that file exists."""
    if path is None and source is not None and (source / "contracts.toml").is_file():
        path = source / "contracts.toml"
    if path is None:
        default_allowlist = source / "contracts" / "allowlist.toml" if source else None
        return Config(
            allowlist=default_allowlist if default_allowlist and default_allowlist.is_file() else None
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ContractInputError(f"cannot read contracts config {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ContractInputError(f"{path}: not valid TOML: {exc}") from exc
    return _from_dict(data, path)


def _from_dict(data: dict[str, Any], path: Path) -> Config:
    problems: list[str] = []
    defaults = Config()
    values: dict[str, Any] = {"origin": str(path)}
    job_types = data.get("job_types", defaults.job_types)
    if not isinstance(job_types, dict) or any(kind not in KINDS for kind in job_types.values()):
        problems.append(f"job_types: expected a table of type = kind, kind one of {', '.join(KINDS)}")
    else:
        values["job_types"] = dict(job_types)
    roles = data.get("roles")
    if roles is not None:
        if not isinstance(roles, dict) or not all(_strings(v) for v in roles.values()):
            problems.append("roles: expected a table of role = [glob, ...]")
        else:
            values["roles"] = {role: tuple(globs) for role, globs in roles.items()}
    claims = data.get("claims")
    if claims is not None:
        if not isinstance(claims, dict) or not all(isinstance(v, str) for v in claims.values()):
            problems.append("claims: expected a table of claim_function = role")
        else:
            values["claims"] = dict(claims)
    for key in ("decision_role", "guard_trigger", "core_trigger", "projection_table"):
        if key in data:
            if not isinstance(data[key], str):
                problems.append(f"{key}: expected a string")
            else:
                values[key] = data[key]
    core_events = data.get("core_events")
    if core_events is not None:
        if not isinstance(core_events, dict) or not all(isinstance(v, str) for v in core_events.values()):
            problems.append("core_events: expected a table of event type = job type")
        else:
            values["core_events"] = dict(core_events)
    for key in ("gateway_functions", "worker_roles", "migrations", "exclude", "core_tables"):
        if key in data:
            if not _strings(data[key]):
                problems.append(f"{key}: expected a list of strings")
            else:
                values[key] = tuple(data[key])
    if "allowlist" in data:
        if not isinstance(data["allowlist"], str):
            problems.append("allowlist: expected the path of the allowlist file")
        else:
            values["allowlist"] = (path.parent / data["allowlist"]).resolve()
    elif (path.parent / "contracts" / "allowlist.toml").is_file():
        # The same default as without a config file: a config that only narrows the migrations must not
        # silently drop the repository's allowlist (every justified exception would turn into a violation).
        values["allowlist"] = (path.parent / "contracts" / "allowlist.toml").resolve()
    problems.extend(_statements(data, values))
    handlers = data.get("handlers", {})
    if not isinstance(handlers, dict):
        problems.append("handlers: expected a table with file and function")
    else:
        for key in ("file", "function"):
            if key in handlers:
                values[f"handlers_{key}"] = str(handlers[key])
    known = {
        "job_types",
        "roles",
        "claims",
        "decision_role",
        "guard_trigger",
        "core_trigger",
        "projection_table",
        "gateway_functions",
        "worker_roles",
        "migrations",
        "exclude",
        "allowlist",
        "handlers",
        "core_tables",
        "core_events",
        "claim_calls",
        "strict_reject_sqlstate",
        "redirect_via",
        *STATEMENTS,
    }
    problems.extend(
        f"{key}: unknown key; expected one of {', '.join(sorted(known))}" for key in data if key not in known
    )
    for function in values.get("claim_calls", {}):
        if function not in values.get("claims", defaults.claims):
            problems.append(f"claim_calls.{function}: not a claim function of [claims]")
    roles_known = values.get("roles", defaults.roles)
    for function, role in values.get("claims", defaults.claims).items():
        if role not in roles_known:
            problems.append(f"claims.{function}: role {role!r} has no [roles] entry")
    if problems:
        raise ContractInputError(f"{path}: " + "; ".join(problems))
    return Config(**values)


def _statements(data: dict[str, Any], values: dict[str, Any]) -> list[str]:
    """Read the probe statements (STATEMENTS, [claim_calls], strict_reject_sqlstate, redirect_via) into
    `values`; the problems found."""
    problems = []
    for key, (_, given, required) in STATEMENTS.items():
        if key not in data:
            continue
        value = data[key]
        if not isinstance(value, str) or not value.strip():
            problems.append(
                f"{key}: expected a SQL statement" + (' or "none"' if key in NONE_ALLOWED else "")
            )
        elif value.strip().lower() == NONE:
            if key in NONE_ALLOWED:
                values[key] = NONE
            else:
                problems.append(f'{key}: cannot be "none": every pipeline of the RFC has one')
        else:
            problems.extend(_parameters(key, value, given, required))
            values[key] = value.strip()
    calls = data.get("claim_calls")
    if calls is not None:
        if not isinstance(calls, dict) or not all(isinstance(v, str) and v.strip() for v in calls.values()):
            problems.append("claim_calls: expected a table of claim_function = SQL statement")
        else:
            for function, value in calls.items():
                problems.extend(_parameters(f"claim_calls.{function}", value, *CLAIM_CALL[1:]))
            values["claim_calls"] = {k: v.strip() for k, v in calls.items()}
    if "strict_reject_sqlstate" in data:
        code = data["strict_reject_sqlstate"]
        if not isinstance(code, str) or not re.fullmatch(r"[0-9A-Z]{5}", code):
            problems.append(
                'strict_reject_sqlstate: expected a SQLSTATE of five digits or capitals, e.g. "42501"'
            )
        else:
            values["strict_reject_sqlstate"] = code
    if "redirect_via" in data:
        if not isinstance(data["redirect_via"], str):
            problems.append("redirect_via: expected a string (the materialized_via of a redirected job)")
        else:
            values["redirect_via"] = data["redirect_via"]
    return problems


def _parameters(key: str, statement: str, given: tuple[str, ...], required: tuple[str, ...]) -> list[str]:
    used = set(_PARAM.findall(statement))
    problems = []
    if unknown := sorted(used - set(given)):
        problems.append(
            f"{key}: uses {', '.join(f'%({p})s' for p in unknown)}; its probe gives "
            + (", ".join(f"%({p})s" for p in given) or "no parameter")
        )
    if missing := [p for p in required if p not in used]:
        problems.append(f"{key}: must use {', '.join(f'%({p})s' for p in missing)}")
    return problems


def _quote_ident(name: str) -> str:
    return name if re.fullmatch(r"[a-z_][a-z0-9_]*", name) else '"' + name.replace('"', '""') + '"'


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)
