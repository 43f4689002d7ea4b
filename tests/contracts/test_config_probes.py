"""The probe statements of the contracts config (gateway_call, gateway_mode_read/_set, compat_warnings_read,
entity_insert, event_append, [claim_calls], strict_reject_sqlstate, redirect_via): without them the probes
run the reference's statements, so nothing changes for it; a config that gives them is checked when it is
read, so a statement that could never run (a parameter its probe does not give, "none" where the RFC requires
the thing) is bad input (exit 3) naming the key, not a crash or a false finding later."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.config import Config, load_config
from contracts.errors import ContractInputError


def config_of(tmp_path: Path, text: str) -> Config:
    (tmp_path / "contracts.toml").write_text(text, encoding="utf-8")
    return load_config(tmp_path / "contracts.toml", tmp_path)


def test_without_the_keys_the_probes_run_the_references_statements() -> None:
    config = Config()
    gateway = config.statement("gateway_call")
    assert not gateway.configured and gateway.text is not None
    assert gateway.text.startswith("SELECT * FROM materialize_job(%(job_type)s, %(entity_id)s,")
    assert "pipeline_settings" in (config.statement("gateway_mode_read").text or "")
    assert "UPDATE pipeline_settings" in (config.statement("gateway_mode_set").text or "")
    assert "FROM compat_warnings" in (config.statement("compat_warnings_read").text or "")
    claim = config.claim_statement("claim_orchestrator_jobs")
    assert claim.text == "SELECT * FROM claim_orchestrator_jobs(%(worker)s, %(limit)s)"
    assert (config.strict_reject_sqlstate, config.redirect_via) == (None, "compat_redirect")
    # the default call follows the gateway the config names, as it always did
    named = Config(gateway_functions=("enqueue_job",)).statement("gateway_call").text or ""
    assert named.startswith("SELECT * FROM enqueue_job(")


def test_the_keys_are_read_and_none_declares_a_part_absent(tmp_path: Path) -> None:
    config = config_of(
        tmp_path,
        """
gateway_call = "SELECT enqueue(%(entity_id)s, %(job_type)s, %(source_event_id)s) AS job_id"
gateway_mode_read = "none"
gateway_mode_set = "NONE"
compat_warnings_read = "SELECT * FROM redirects WHERE entity = %(entity_id)s"
strict_reject_sqlstate = "42501"
redirect_via = "legacy-redirect"
[claim_calls]
claim_orchestrator_jobs = "SELECT * FROM claim_orchestrator_jobs(%(worker)s, 'execution', %(limit)s)"
""",
    )
    gateway = config.statement("gateway_call")
    assert gateway.configured and gateway.text == (
        "SELECT enqueue(%(entity_id)s, %(job_type)s, %(source_event_id)s) AS job_id"
    )
    assert config.statement("gateway_mode_read").declared_none
    assert config.statement("gateway_mode_set").declared_none
    assert not config.statement("compat_warnings_read").declared_none
    assert config.claim_statement("claim_orchestrator_jobs").configured
    assert not config.claim_statement("claim_initial_decision_jobs").configured
    assert (config.strict_reject_sqlstate, config.redirect_via) == ("42501", "legacy-redirect")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('gateway_call = "none"', 'gateway_call: cannot be "none"'),
        (
            'gateway_call = "SELECT enqueue(%(entity_id)s, %(job_type)s)"',
            "gateway_call: must use %(source_event_id)s",
        ),
        (
            'gateway_mode_read = "SELECT mode FROM settings WHERE tenant = %(tenant)s"',
            "gateway_mode_read: uses %(tenant)s; its probe gives no parameter",
        ),
        ("gateway_mode_set = \"UPDATE settings SET mode = 'strict'\"", "gateway_mode_set: must use %(mode)s"),
        ('compat_warnings_read = "SELECT * FROM redirects"', "compat_warnings_read: must use %(entity_id)s"),
        ('strict_reject_sqlstate = "denied"', "strict_reject_sqlstate: expected a SQLSTATE"),
        (
            '[claim_calls]\nclaim_everything = "SELECT 1"',
            "claim_calls.claim_everything: not a claim function",
        ),
        ('gateway_calls = "SELECT 1"', "gateway_calls: unknown key"),
    ],
    ids=[
        "none-gateway",
        "missing-param",
        "unknown-param",
        "set-without-mode",
        "all-warnings",
        "sqlstate",
        "claim",
        "typo",
    ],
)
def test_a_statement_that_could_never_run_is_bad_input_naming_its_key(
    tmp_path: Path, text: str, says: str
) -> None:
    with pytest.raises(ContractInputError) as raised:
        config_of(tmp_path, text + "\n")
    assert says in str(raised.value)
