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
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.errors import ContractInputError

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
    origin: str = "built-in defaults (the reference pipeline)"

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
    }
    problems.extend(
        f"{key}: unknown key; expected one of {', '.join(sorted(known))}" for key in data if key not in known
    )
    roles_known = values.get("roles", defaults.roles)
    for function, role in values.get("claims", defaults.claims).items():
        if role not in roles_known:
            problems.append(f"claims.{function}: role {role!r} has no [roles] entry")
    if problems:
        raise ContractInputError(f"{path}: " + "; ".join(problems))
    return Config(**values)


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)
