"""The timestamp authority (TSA): signs "this digest existed at this time" tokens.

A stand-in for an RFC 3161 TSA, reduced to what the pipeline's ``tsa`` job needs: a token (serial, digest,
generation time, authority name, policy) and an HMAC-SHA256 signature over its canonical JSON. The signing
and verification functions are plain functions so a checker can verify stored tokens offline, without the
service running.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
from typing import Any

from pipeline.services.base import (
    IdempotencyStore,
    Journal,
    Reject,
    Request,
    Response,
    Service,
    canonical_json,
    check_fields,
    hex64_of,
    job_id_of,
    utc_now,
)

DEFAULT_KEY = hashlib.sha256(b"pipeline reference tsa: development key, not a secret").digest()
POLICY = "pipeline-reference-tsa/v1"


def sign_token(token: dict[str, Any], key: bytes = DEFAULT_KEY) -> str:
    """HMAC-SHA256 of the token's canonical JSON, as hex."""
    return hmac.new(key, canonical_json(token), hashlib.sha256).hexdigest()


def verify_token(token: dict[str, Any], signature: str, key: bytes = DEFAULT_KEY) -> bool:
    """Whether ``signature`` is this authority's signature of ``token`` (constant-time comparison)."""
    return isinstance(signature, str) and hmac.compare_digest(sign_token(token, key), signature)


class TimestampAuthority(Service):
    """``POST /timestamp`` signs a token once per ``Idempotency-Key``; ``POST /verify`` checks one."""

    def __init__(
        self, key: bytes = DEFAULT_KEY, authority: str = "reference-tsa", journal: Journal | None = None
    ) -> None:
        self.name = "tsa"
        self.key = key
        self.authority = authority
        self.store = IdempotencyStore(journal)
        self.issued = len(self.store.issued())  # a restarted authority goes on from its last serial
        self._serials = itertools.count(self.issued + 1)

    def handle(self, request: Request) -> Response:
        route = (request.method, request.path)
        if route == ("POST", "/timestamp"):
            return self.timestamp(request)
        if route == ("POST", "/verify"):
            return self.verify(request)
        raise Reject(
            404,
            f"{request.method} {request.path}: no such endpoint on the tsa; expected "
            "POST /timestamp, POST /verify, GET /health or /_admin/...",
        )

    def timestamp(self, request: Request) -> Response:
        body = request.json_object()
        problems: list[str] = []
        check_fields(body, ("digest", "job_id"), problems)
        digest = hex64_of(body, "digest", problems)
        job_id = job_id_of(body, problems)
        key = request.idempotency_key(problems)
        if problems:
            raise Reject(400, "; ".join(problems))
        return self.store.answer(key, f"digest {digest}", lambda: self._issue(digest, job_id), job_id)

    def _issue(self, digest: str, job_id: str | int | None) -> bytes:
        """Called under the store's lock, so serials are issued once per key and in order."""
        token = {
            "serial": next(self._serials),
            "digest": digest,
            "gen_time": utc_now(),
            "tsa": self.authority,
            "policy": POLICY,
            "job_id": job_id,
        }
        self.issued += 1
        return canonical_json({"token": token, "signature": sign_token(token, self.key)})

    def verify(self, request: Request) -> Response:
        body = request.json_object()
        token, signature = body.get("token"), body.get("signature")
        problems: list[str] = []
        check_fields(body, ("token", "signature"), problems)
        if not isinstance(token, dict):
            problems.append(f"token: {token!r}; expected the JSON object returned by POST /timestamp")
        if not isinstance(signature, str):
            problems.append(f"signature: {signature!r}; expected the hex string returned by POST /timestamp")
        if problems or not isinstance(token, dict) or not isinstance(signature, str):  # problems says why
            raise Reject(400, "; ".join(problems))
        return Response(200, canonical_json({"valid": verify_token(token, signature, self.key)}))

    def stats(self) -> dict[str, int]:
        return {"tokens_issued": self.issued}
