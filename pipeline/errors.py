"""The pipeline's exceptions, and the one place where psycopg errors are translated into them.

Each exception's docstring is its default message. `translate` keeps the driver error as the cause and reads
its diagnostics (SQLSTATE, message, hint), so a caller sees "unknown job type 'x' ... use a listed type" and
not a bare RaiseException.
"""

from __future__ import annotations

import psycopg


class PipelineError(Exception):
    """The pipeline failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class UnknownJobType(PipelineError):
    """Unknown job type: not in the job_types whitelist."""


class MalformedEvent(PipelineError):
    """Malformed event: every event needs a dotted type and an object payload."""


class DirectInsertRejected(PipelineError):
    """Direct insert into executor_jobs rejected (gateway_mode=strict): append a job.<type>.required event."""


class UnknownEntity(PipelineError):
    """Unknown entity: no document_entities row with that id."""


class AppendOnlyViolation(PipelineError):
    """document_entities.events is append-only."""


class GatewayWithoutIdentity(PipelineError):
    """The gateway was called without an entity id or a source event id: every job is born from a canonical
    event; append job.<type>.required to the entity instead."""


class DatabaseUnavailable(PipelineError):
    """The database cannot be reached; the worker reconnects with backoff."""


class UnknownRole(PipelineError):
    """Unknown worker role: expected fase1-executor, orchestrator, scheduler or monitor."""


class FailpointError(PipelineError):
    """An armed failpoint raised."""


_BY_SQLSTATE: dict[str, type[PipelineError]] = {
    "PJ001": UnknownJobType,
    "PJ002": MalformedEvent,
    "PJ003": DirectInsertRejected,
    "PJ004": UnknownEntity,
    "PJ005": AppendOnlyViolation,
    "PJ006": GatewayWithoutIdentity,
}


def translate(exc: psycopg.Error) -> PipelineError | psycopg.Error:
    """The domain error for a driver error (cause kept), or the driver error itself when it has none."""
    if isinstance(exc, psycopg.OperationalError):
        error: PipelineError = DatabaseUnavailable(f"database unavailable: {_first_line(exc)}")
        error.__cause__ = exc
        return error
    cls = _BY_SQLSTATE.get(exc.sqlstate or "")
    if cls is None:
        return exc
    message = exc.diag.message_primary or str(exc)
    if exc.diag.message_hint:
        message += f" (hint: {exc.diag.message_hint})"
    error = cls(message)
    error.__cause__ = exc
    return error


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
