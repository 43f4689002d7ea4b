"""`--postgres embedded`: the reference pipeline's schema on a private Postgres, for checking the project's
own contracts in CI without a server. The only place contracts/ touches the harness's provisioning, and
only when asked."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from contracts.errors import ContractInputError


@contextlib.contextmanager
def reference_database(spec: str = "embedded") -> Iterator[str]:
    """A fresh database migrated with the reference pipeline's migrations; its DSN for the block."""
    try:
        from harness.errors import HarnessError
        from harness.migration import MigrationPlan
        from harness.provision import open_provider
        from harness.sut import reference_sut
    except ImportError as exc:
        raise ContractInputError("--postgres embedded needs the harness package; pass a DSN instead") from exc
    try:
        with (
            open_provider(spec, ready_clones=0) as provider,
            provider.database(MigrationPlan(reference_sut().migrations)) as dsn,
        ):
            yield dsn
    except HarnessError as exc:
        raise ContractInputError(f"could not provision Postgres ({spec}): {exc}") from exc
