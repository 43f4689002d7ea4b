"""The orchestrator's job handlers: protect, tsa, anchor.

Each is idempotent per job: protect is a pure function of the document, and the two external services
dedupe by the Idempotency-Key derived from the job id, so a job retried after a crash yields the same result
and never a second canonical one (the completion is fenced in SQL as well).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.services.client import ServiceClient

Handler = Callable[[int, Mapping[str, Any]], dict[str, Any]]

_DEFAULT_KEY = "reference-pipeline-signing-key"


class PoisonPayload(ValueError):
    """The job's payload cannot be processed, however often it is retried."""


@dataclass
class Handlers:
    tsa: ServiceClient
    ledger: ServiceClient
    signing_key: bytes = os.environ.get("PIPELINE_SIGNING_KEY", _DEFAULT_KEY).encode()

    def table(self) -> dict[str, Handler]:
        return {"protect": self.protect, "tsa": self.timestamp, "anchor": self.anchor}

    def protect(self, job_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
        document = payload.get("document")
        if not isinstance(document, str):
            raise PoisonPayload(
                f"protect job {job_id}: payload.document must be a string, got {type(document).__name__}"
            )
        digest = hashlib.sha256(document.encode()).hexdigest()
        signature = hmac.new(self.signing_key, digest.encode(), hashlib.sha256).hexdigest()
        return {"sha256": digest, "signature": signature, "algorithm": "HMAC-SHA256"}

    def timestamp(self, job_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
        body = {"digest": payload.get("digest"), "job_id": str(job_id)}
        answer = self.tsa.post_json("/timestamp", body, idempotency_key=f"job-{job_id}")
        return {"token": answer["token"], "signature": answer["signature"]}

    def anchor(self, job_id: int, payload: Mapping[str, Any]) -> dict[str, Any]:
        body = {
            "digest": payload.get("digest"),
            "tsa_signature": payload.get("tsa_signature"),
            "job_id": str(job_id),
        }
        answer = self.ledger.post_json("/anchor", body, idempotency_key=f"job-{job_id}")
        return {"receipt": answer}
