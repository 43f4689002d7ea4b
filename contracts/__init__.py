"""Live-schema and static anti-drift contracts for Postgres event pipelines.

Usable alone in a PR gate: it needs only a DSN and/or a source tree (`harness contracts check`, or
`python -m contracts check`). The RFC's rules it enforces, each under a rule id, are listed in README.md.
"""

from __future__ import annotations

from contracts.errors import ContractError, ContractInputError
from contracts.finding import Finding, Level

__all__ = ["ContractError", "ContractInputError", "Finding", "Level"]
