"""The contracts package's exceptions: one root, and the bad-input kind the command line answers with 3.

A violated contract is never an exception: it is a `Finding`. Exceptions are for input that cannot be
checked (a DSN that does not connect, a missing source tree, a malformed config or allowlist) and for the
checker itself failing.
"""

from __future__ import annotations


class ContractError(Exception):
    """The contract checker itself failed; this is a bug in contracts/, please report it with the traceback."""

    exit_code = 4

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ContractInputError(ContractError):
    """Bad input: the DSN, source path, config or allowlist named in the message cannot be used; fix it and
    run again."""

    exit_code = 3
