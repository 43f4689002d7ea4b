"""The anchoring ledger: an append-only hash chain of timestamped digests.

A stand-in for anchoring on a public ledger, reduced to what the pipeline's ``anchor`` job needs: each
anchored digest becomes an entry linked to the previous one by hash, and the caller gets a receipt naming
the entry. A replayed ``Idempotency-Key`` returns the same receipt and never adds a second entry, which is
what a checker looks for when a job was retried. ``verify_chain`` is a plain function so a checker can
verify entries it fetched, without the service.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Sequence
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

GENESIS_HASH = "0" * 64
DEFAULT_KEY = hashlib.sha256(b"pipeline reference ledger: development key, not a secret").digest()
SIGNATURE_RULE = "expected 64 lowercase hex characters (the signature returned by the tsa)"


def entry_hash(prev_hash: str, digest: str, tsa_signature: str) -> str:
    """sha256 over ``prev_hash + digest + tsa_signature`` (hex strings concatenated), as hex."""
    return hashlib.sha256((prev_hash + digest + tsa_signature).encode()).hexdigest()


def sign_receipt(receipt: dict[str, Any], key: bytes = DEFAULT_KEY) -> str:
    """HMAC-SHA256 over the canonical JSON of the receipt without its ``signature`` field, as hex."""
    unsigned = {name: value for name, value in receipt.items() if name != "signature"}
    return hmac.new(key, canonical_json(unsigned), hashlib.sha256).hexdigest()


def verify_receipt(receipt: dict[str, Any], key: bytes = DEFAULT_KEY) -> bool:
    """Whether the receipt's ``signature`` is this ledger's (constant-time comparison)."""
    signature = receipt.get("signature")
    return isinstance(signature, str) and hmac.compare_digest(sign_receipt(receipt, key), signature)


def verify_chain(entries: Sequence[dict[str, Any]]) -> list[str]:
    """Every broken link in ``entries`` (as returned by ``GET /entries``), one sentence each; [] if sound."""
    problems: list[str] = []
    prev = GENESIS_HASH
    for expected_height, entry in enumerate(entries, start=1):
        height = entry.get("height")
        if height != expected_height:
            problems.append(f"entry at position {expected_height} has height {height}")
        if entry.get("prev_hash") != prev:
            problems.append(f"entry {height}: prev_hash {entry.get('prev_hash')} is not {prev}")
        recomputed = entry_hash(
            str(entry.get("prev_hash")), str(entry.get("digest")), str(entry.get("tsa_signature"))
        )
        if entry.get("entry_hash") != recomputed:
            problems.append(f"entry {height}: entry_hash {entry.get('entry_hash')} is not {recomputed}")
        prev = str(entry.get("entry_hash"))
    return problems


class Ledger(Service):
    """``POST /anchor`` appends once per ``Idempotency-Key``; ``GET /entries...`` reads the chain."""

    def __init__(
        self, key: bytes = DEFAULT_KEY, ledger: str = "reference-ledger", journal: Journal | None = None
    ) -> None:
        self.name = "ledger"
        self.key = key
        self.ledger = ledger
        self.store = IdempotencyStore(journal)
        self._chain_lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []
        self._heights_by_digest: dict[str, list[int]] = {}
        for line in self.store.journal.lines():  # a restarted ledger keeps its chain
            if line.get("kind") == "entry":
                entry = {k: v for k, v in line.items() if k != "kind"}
                self._entries.append(entry)
                self._heights_by_digest.setdefault(entry["digest"], []).append(entry["height"])

    def handle(self, request: Request) -> Response:
        if request.method == "POST" and request.path == "/anchor":
            return self.anchor(request)
        if request.method == "GET" and request.path == "/entries":
            return self.find(request)
        if request.method == "GET" and request.path.startswith("/entries/"):
            return self.entry(request.path.removeprefix("/entries/"))
        raise Reject(
            404,
            f"{request.method} {request.path}: no such endpoint on the ledger; expected POST /anchor, "
            "GET /entries/{height}, GET /entries?digest=..., GET /health or /_admin/...",
        )

    def anchor(self, request: Request) -> Response:
        body = request.json_object()
        problems: list[str] = []
        check_fields(body, ("digest", "tsa_signature", "job_id"), problems)
        digest = hex64_of(body, "digest", problems)
        signature = hex64_of(body, "tsa_signature", problems, SIGNATURE_RULE)
        job_id = job_id_of(body, problems)
        key = request.idempotency_key(problems)
        if problems:
            raise Reject(400, "; ".join(problems))
        fingerprint = f"digest {digest} with tsa_signature {signature}"
        return self.store.answer(key, fingerprint, lambda: self._append(digest, signature, job_id), job_id)

    def _append(self, digest: str, tsa_signature: str, job_id: str | int | None) -> bytes:
        with self._chain_lock:
            prev = self._entries[-1]["entry_hash"] if self._entries else GENESIS_HASH
            height = len(self._entries) + 1
            entry = {
                "height": height,
                "digest": digest,
                "tsa_signature": tsa_signature,
                "job_id": job_id,
                "prev_hash": prev,
                "entry_hash": entry_hash(prev, digest, tsa_signature),
                "anchored_at": utc_now(),
            }
            self._entries.append(entry)
            self._heights_by_digest.setdefault(digest, []).append(height)
            self.store.journal.append({"kind": "entry", **entry})
        receipt = {
            name: entry[name] for name in ("height", "entry_hash", "prev_hash", "anchored_at", "digest")
        }
        receipt["ledger"] = self.ledger
        receipt["signature"] = sign_receipt(receipt, self.key)
        return canonical_json(receipt)

    def entry(self, text: str) -> Response:
        with self._chain_lock:
            count = len(self._entries)
            found = self._entries[int(text) - 1] if text.isdigit() and 1 <= int(text) <= count else None
        if found is None:
            raise Reject(
                404, f"no entry at height {text!r}; the chain has {count} entries (heights 1..{count})"
            )
        return Response(200, canonical_json(found))

    def find(self, request: Request) -> Response:
        """``?digest=HEX`` lists the entries of that digest; no query lists the whole chain."""
        digest = request.query.get("digest")
        with self._chain_lock:
            if digest is None:
                entries = list(self._entries)
            else:
                entries = [self._entries[height - 1] for height in self._heights_by_digest.get(digest, ())]
            height = len(self._entries)
        return Response(200, canonical_json({"entries": entries, "height": height}))

    def stats(self) -> dict[str, int]:
        with self._chain_lock:
            return {"height": len(self._entries)}
