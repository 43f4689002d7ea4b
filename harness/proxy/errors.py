"""The proxy's exceptions, each carrying the HTTP status real Toxiproxy answers with.

One root, `ProxyError`; the docstring of each class is its default message, and the default messages are
Toxiproxy's own (`proxy not found`, `toxic already exists`...) so a client that matches on them keeps working.
A caller adds the culprit and the fix as detail: `MissingField("upstream")` reads
`missing required field: upstream`, exactly as Toxiproxy words it. Not-found and already-exists errors
carry no detail, because clients of Toxiproxy compare those messages whole (the URL names the culprit).
"""

from __future__ import annotations


class ProxyError(Exception):
    """proxy server error"""

    status: int = 500

    def __init__(self, detail: str | None = None) -> None:
        base = (type(self).__doc__ or "").strip()
        self.detail = detail
        super().__init__(f"{base}: {detail}" if detail else base)

    @property
    def message(self) -> str:
        return str(self)

    def to_json(self) -> dict[str, object]:
        """The body Toxiproxy sends with an error: `{"error": message, "status": code}`."""
        return {"error": self.message, "status": self.status}


class BadRequestBody(ProxyError):
    """bad request body"""

    status = 400


class MissingField(ProxyError):
    """missing required field"""

    status = 400


class InvalidStream(ProxyError):
    """stream was invalid, can be either upstream or downstream"""

    status = 400


class InvalidToxicType(ProxyError):
    """invalid toxic type"""

    status = 400


class ProxyNotFound(ProxyError):
    """proxy not found"""

    status = 404


class ToxicNotFound(ProxyError):
    """toxic not found"""

    status = 404


class RouteNotFound(ProxyError):
    """no such endpoint in the Toxiproxy API"""

    status = 404


class MethodNotAllowed(ProxyError):
    """method not allowed"""

    status = 405


class ProxyExists(ProxyError):
    """proxy already exists"""

    status = 409


class ToxicExists(ProxyError):
    """toxic already exists"""

    status = 409


class BodyTooLarge(ProxyError):
    """request body too large"""

    status = 413


class ListenFailed(ProxyError):
    """could not listen on the requested address"""

    status = 500


class ServerStartFailed(ProxyError):
    """the proxy server could not start"""
