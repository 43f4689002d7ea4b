"""The reference pipeline's external services: a timestamp authority and an anchoring ledger.

Both are small HTTP/1.1 servers that the harness runs on 127.0.0.1 (``python -m pipeline.services tsa``),
so that they can be slowed, broken or cut off like real ones; ``ServiceClient`` is how the orchestrator
calls them. See README.md in this folder for the API.
"""

from __future__ import annotations

from pipeline.services.base import FailurePoint, Knobs, ServiceServer, serve
from pipeline.services.client import ServiceClient, ServiceError, ServiceRejected, ServiceUnavailable
from pipeline.services.ledger import Ledger, verify_chain, verify_receipt
from pipeline.services.tsa import TimestampAuthority, verify_token

__all__ = [
    "FailurePoint",
    "Knobs",
    "Ledger",
    "ServiceClient",
    "ServiceError",
    "ServiceRejected",
    "ServiceServer",
    "ServiceUnavailable",
    "TimestampAuthority",
    "serve",
    "verify_chain",
    "verify_receipt",
    "verify_token",
]
