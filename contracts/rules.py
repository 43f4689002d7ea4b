"""The catalogue of contracts: one rule per RFC rule, each with an id, a short name, what it protects and
how to fix a violation. Output formats (SARIF's `tool.driver.rules`, JUnit test cases) are built from it,
so a rule exists once. Live rules are PGC0xx (they need a DSN), static rules PGC1xx (a source tree).
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.finding import Level


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    scope: str  # live | static
    summary: str
    help: str
    level: Level = Level.ERROR


RULES: tuple[Rule, ...] = (
    Rule(
        "PGC001",
        "core-trigger-enabled",
        "live",
        "The core trigger on_document_entity_events_change exists on document_entities and is enabled.",
        "The core trigger is the only way events become jobs (RFC 2.3: core is always-on). Re-enable it with "
        "ALTER TABLE document_entities ENABLE TRIGGER on_document_entity_events_change, or restore it from "
        "its core migration.",
    ),
    Rule(
        "PGC002",
        "projection-trigger-separate",
        "live",
        "The user_documents projection runs in its own trigger, separate from the core trigger.",
        "Projections are best-effort and core is always-on (RFC 2.3); a projection folded into the core trigger "
        "can block progression, and a core trigger that writes the projection mixes the two. Give the "
        "projection its own trigger and function.",
    ),
    Rule(
        "PGC003",
        "claim-scope-behaviour",
        "live",
        "claim_initial_decision_jobs returns only decision jobs and claim_orchestrator_jobs only execution "
        "jobs, seen by seeding one job of each type and claiming, in a rolled-back transaction.",
        "Filter the claim by kind (job_types.kind) so each role claims only its own jobs (RFC phase 1 canary).",
    ),
    Rule(
        "PGC004",
        "claim-scope-definition",
        "live",
        "The definitions of the claim functions name only their own kind (pg_get_functiondef).",
        "A claim function must select its own kind only: 'decision' for claim_initial_decision_jobs, "
        "'execution' for claim_orchestrator_jobs.",
    ),
    Rule(
        "PGC005",
        "job-types-whitelist",
        "live",
        "The job_types whitelist equals the declared one (types and kinds).",
        "Change job_types only in a core migration, and declare the change in the contracts config "
        "([job_types]) in the same pull request.",
    ),
    Rule(
        "PGC006",
        "gateway-only-writer",
        "live",
        "The guard trigger is on executor_jobs and a direct insert is redirected (compat) or rejected (strict) "
        "according to the gateway mode (the reference's pipeline_settings.gateway_mode).",
        "Restore the guard (the config's guard_trigger, the reference's executor_jobs_gateway_guard: BEFORE "
        "INSERT on executor_jobs) from its core migration; every job must be materialized by the gateway "
        "(RFC 2.7).",
    ),
    Rule(
        "PGC007",
        "gateway-security-definer",
        "live",
        "The gateway function is SECURITY DEFINER with a pinned search_path.",
        "Declare the gateway `SECURITY DEFINER SET search_path = public, pg_temp`, so worker roles without "
        "INSERT on executor_jobs can still materialize jobs through it, and nobody can shadow its tables.",
    ),
    Rule(
        "PGC008",
        "worker-roles-no-insert",
        "live",
        "No worker role can INSERT into executor_jobs by any path: a table or column grant (to it or to "
        "PUBLIC), a role it inherits, or a role it may SET ROLE to (membership with or without INHERIT).",
        "REVOKE INSERT (and column-level INSERT) ON executor_jobs FROM the role, or REVOKE the membership that "
        "leads to a role holding it; workers materialize jobs by appending job.<type>.required events, never "
        "by INSERT.",
    ),
    Rule(
        "PGC009",
        "dedupe-fix-applied",
        "live",
        "The gateway runs without the ambiguous dedupe-key error (SQLSTATE 42702) and dedupes a repeated call.",
        "Apply the core migration that names the conflict target by its constraint and qualifies every column "
        "(reference: 0008_core_fix_ambiguous_dedupe_key.sql).",
    ),
    Rule(
        "PGC010",
        "no-replica-default",
        "live",
        "session_replication_role is not replica by default: not for the database, not for any role "
        "(pg_db_role_setting), not in the server's configuration.",
        "With session_replication_role = replica no ordinary trigger fires, so appended events materialize no "
        "job (RFC 2.3: core is always-on). ALTER DATABASE/ROLE ... RESET session_replication_role, or ALTER "
        "SYSTEM RESET it.",
    ),
    Rule(
        "PGC011",
        "core-trigger-behaviour",
        "live",
        "Every event type that requires a job, appended in a rolled-back transaction, materializes that job "
        "through the gateway (the core trigger is present, enabled and still does its work).",
        "Restore the core trigger's function from its core migration: each job.<type>.required event, each "
        "request and each execution outcome must become its job through the gateway. The expected pairs are "
        "[core_events] in the contracts config.",
    ),
    Rule(
        "PGC012",
        "live-functions-gateway-only",
        "live",
        "No function of the live database but the gateway writes executor_jobs, including SQL it builds at "
        "run time (EXECUTE of concatenated strings or format()); dynamic SQL that cannot be resolved in a "
        "function able to insert into executor_jobs is a warning.",
        "Drop or rewrite the function so it appends a job.<type>.required event instead (RFC 2.6, 2.7); build no "
        "SQL at run time in a function that can write the queue.",
    ),
    Rule(
        "PGC101",
        "no-direct-insert",
        "static",
        "No INSERT, COPY FROM or MERGE ... INSERT into executor_jobs outside the gateway's definition.",
        "Materialize jobs by appending a job.<type>.required event (append_event); only the gateway function "
        "inserts into executor_jobs (RFC 2.6 anti-drift rule). A justified exception goes in the allowlist "
        "with its reason.",
    ),
    Rule(
        "PGC102",
        "claim-called-by-its-role",
        "static",
        "claim_initial_decision_jobs is called only from the decision worker's code and "
        "claim_orchestrator_jobs only from the orchestrator's.",
        "Move the call into the role's own code, or map the file to the role in the contracts config "
        "([roles]) if it belongs to it.",
    ),
    Rule(
        "PGC103",
        "migration-classified",
        "static",
        "Every migration is classified core, legacy or infra, by its name or by a `-- class:` header.",
        "Name the file NNNN_<core|legacy|infra>_<name>.sql or add a first-lines header `-- class: core`; "
        "name and header must agree.",
    ),
    Rule(
        "PGC104",
        "decision-path-no-projection-read",
        "static",
        "The decision path (files of the decision role, and the SQL functions they call) never reads "
        "user_documents.",
        "Decide from document_entities.events only; user_documents is a best-effort projection, never "
        "authority (RFC 2.4).",
    ),
    Rule(
        "PGC105",
        "core-trigger-not-disabled",
        "static",
        "No code disables the core trigger or the gateway guard (ALTER TABLE ... DISABLE TRIGGER, "
        "session_replication_role = replica by SET, set_config, or as a database, role or system default).",
        "Never disable the core trigger or the guard in code; the core trigger is always-on (RFC 2.3).",
    ),
    Rule(
        "PGC106",
        "sql-parses",
        "static",
        "SQL files and plpgsql bodies parse, so the other static rules can see inside them.",
        "Fix the syntax error named, or, for a file that is not Postgres SQL, exclude it in the config.",
        Level.WARNING,
    ),
    Rule(
        "PGC107",
        "allowlist-entry-used",
        "static",
        "Every allowlist entry still matches a finding.",
        "Remove the stale entry from the allowlist: the exception it justified is gone.",
        Level.NOTE,
    ),
    Rule(
        "PGC108",
        "legacy-migration-no-core-change",
        "static",
        "A legacy or infra migration creates, replaces, alters or drops no core object (core function, "
        "trigger, table or view, or a trigger on a core table), unless a later core migration supersedes it.",
        "Make the change in a core migration (NNNN_core_<name>.sql): a migration is classified by what it "
        "does, and only core migrations may change the core.",
    ),
    Rule(
        "PGC109",
        "dynamic-sql-resolved",
        "static",
        "SQL built at run time whose target the checker cannot resolve (EXECUTE of an unknown string, an "
        "INSERT/COPY/MERGE into a table named by a variable).",
        "Name the table in the statement, or build it only from constants the checker can fold; the live "
        "checks (PGC006, PGC012) and the gate's compat-warning count watch what such code does at run time.",
        Level.WARNING,
    ),
)

BY_ID: dict[str, Rule] = {rule.id: rule for rule in RULES}


def rule(rule_id: str) -> Rule:
    return BY_ID[rule_id]
