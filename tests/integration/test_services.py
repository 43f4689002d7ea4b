"""The external services as the harness runs them: real subprocesses, called through ``ServiceClient``.

Each test starts ``python -m pipeline.services ...`` on a free port, learns the port from the one
``listening on`` line, and checks one behaviour the orchestrator or the harness relies on: signatures,
idempotency, the fault knobs, the hash chain, the two exception classes, and the command line's exit codes.
Timing assertions are lower bounds only, so a slow machine cannot make them flaky.
"""

from __future__ import annotations

import contextlib
import hashlib
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipeline.services import (
    ServiceClient,
    ServiceError,
    ServiceRejected,
    ServiceUnavailable,
    verify_chain,
    verify_receipt,
    verify_token,
)

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 15.0


@dataclass
class Running:
    """One service subprocess and a client connected to it."""

    process: subprocess.Popen[str]
    url: str
    client: ServiceClient

    def configure(self, **knobs: object) -> dict[str, Any]:
        return self.client.post_json("/_admin/config", knobs, None)

    def stats(self) -> dict[str, Any]:
        return self.client.get_json("/_admin/stats")


def digest_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@contextlib.contextmanager
def running(*args: str) -> Iterator[Running]:
    """Start a service, yield it once it printed its port, and always stop it (SIGTERM, then SIGKILL)."""
    with tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline.services", *args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            line = read_line(process, START_TIMEOUT_S)
            if not line.startswith("listening on http://127.0.0.1:"):
                stderr.seek(0)
                raise AssertionError(
                    f"service {args} printed {line!r}, not 'listening on'; stderr: {stderr.read()}"
                )
            url = line.removeprefix("listening on ").strip()
            with ServiceClient(url, timeout_s=5.0) as client:
                yield Running(process, url, client)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdout:
                process.stdout.close()


def read_line(process: subprocess.Popen[str], timeout_s: float) -> str:
    """The first stdout line, waiting on the pipe (not sleeping); fails saying what it waited for."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout_s):
            raise AssertionError(f"no 'listening on' line within {timeout_s} s (exit code {process.poll()})")
    return process.stdout.readline()


@pytest.fixture
def tsa() -> Iterator[Running]:
    with running("tsa", "--port", "0", "--seed", "7") as service:
        yield service


@pytest.fixture
def ledger() -> Iterator[Running]:
    with running("ledger", "--port", "0", "--seed", "7") as service:
        yield service


def timestamp(service: Running, key: str, digest: str, job_id: object = "job-1") -> dict[str, Any]:
    return service.client.post_json("/timestamp", {"digest": digest, "job_id": job_id}, key)


def test_timestamp_token_is_signed_and_verifies(tsa: Running) -> None:
    digest = digest_of("document 1")
    answer = timestamp(tsa, "job-1:tsa", digest)
    token, signature = answer["token"], answer["signature"]
    assert token["digest"] == digest
    assert token["serial"] == 1
    assert token["gen_time"].endswith("Z")
    assert {"tsa", "policy"} <= token.keys()
    assert verify_token(token, signature)
    assert tsa.client.post_json("/verify", answer, None) == {"valid": True}
    forged = token | {"digest": digest_of("another document")}
    assert tsa.client.post_json("/verify", {"token": forged, "signature": signature}, None) == {
        "valid": False
    }


def test_key_hex_signs_with_that_key() -> None:
    key = bytes(range(32))
    with running("tsa", "--key-hex", key.hex()) as tsa:
        answer = timestamp(tsa, "k", digest_of("d"))
    assert verify_token(answer["token"], answer["signature"], key)
    assert not verify_token(answer["token"], answer["signature"])


def test_same_idempotency_key_returns_the_identical_token(tsa: Running) -> None:
    digest = digest_of("document 2")
    first = timestamp(tsa, "job-2:tsa", digest)
    second = timestamp(tsa, "job-2:tsa", digest)
    assert second == first
    stats = tsa.stats()
    assert stats["distinct_keys"] == 1
    assert stats["idempotent_replays"] == 1
    assert stats["tokens_issued"] == 1


def test_concurrent_calls_with_one_key_issue_one_token(tsa: Running) -> None:
    tsa.configure(latency_ms=20)
    answers: list[dict[str, Any]] = []

    def call() -> None:
        with ServiceClient(tsa.url) as client:
            answers.append(client.post_json("/timestamp", {"digest": digest_of("same")}, "same-key"))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 8
    assert all(answer == answers[0] for answer in answers)
    assert tsa.stats()["tokens_issued"] == 1


def test_reused_key_with_another_digest_is_rejected_with_409(tsa: Running) -> None:
    timestamp(tsa, "job-3:tsa", digest_of("original"))
    with pytest.raises(ServiceRejected) as caught:
        timestamp(tsa, "job-3:tsa", digest_of("changed"))
    assert caught.value.status == 409
    assert "already used" in caught.value.detail
    assert tsa.url in str(caught.value)


def test_failure_rate_one_makes_every_call_unavailable(tsa: Running) -> None:
    tsa.configure(failure_rate=1)
    with pytest.raises(ServiceUnavailable) as caught:
        timestamp(tsa, "job-4:tsa", digest_of("x"))
    assert caught.value.status == 503
    assert caught.value.retryable
    tsa.configure(failure_rate=0)
    assert timestamp(tsa, "job-4:tsa", digest_of("x"))["token"]["serial"] == 1
    assert tsa.stats()["failures_injected"] == 1


def test_failure_after_applying_is_healed_by_retrying_the_same_key(tsa: Running) -> None:
    tsa.configure(failure_rate=1, failure_point="after")
    with pytest.raises(ServiceUnavailable):
        timestamp(tsa, "job-5:tsa", digest_of("y"))
    tsa.configure(failure_rate=0)
    retried = timestamp(tsa, "job-5:tsa", digest_of("y"))
    stats = tsa.stats()
    assert retried["token"]["serial"] == 1
    assert (stats["tokens_issued"], stats["idempotent_replays"]) == (1, 1)


def test_latency_is_a_lower_bound_on_the_call(tsa: Running) -> None:
    assert tsa.configure(latency_ms=150, jitter_ms=10)["latency_ms"] == 150
    started = time.monotonic()
    timestamp(tsa, "job-6:tsa", digest_of("slow"))
    assert time.monotonic() - started >= 0.150


def test_a_call_slower_than_the_timeout_is_unavailable(tsa: Running) -> None:
    tsa.configure(latency_ms=1000)
    with ServiceClient(tsa.url, timeout_s=0.2) as impatient, pytest.raises(ServiceUnavailable) as caught:
        impatient.post_json("/timestamp", {"digest": digest_of("z")}, "job-7:tsa")
    assert "no answer within 0.2 s" in str(caught.value)
    assert caught.value.maybe_applied


def test_down_answers_503_except_admin(tsa: Running) -> None:
    tsa.configure(down=True)
    with pytest.raises(ServiceUnavailable) as caught:
        timestamp(tsa, "job-8:tsa", digest_of("down"))
    assert "down" in str(caught.value)
    with pytest.raises(ServiceUnavailable):
        tsa.client.get_json("/health")
    assert tsa.configure(down=False)["down"] is False
    assert tsa.client.get_json("/health") == {"service": "tsa", "status": "ok"}


def test_killed_service_raises_unavailable_not_a_socket_error(tsa: Running) -> None:
    timestamp(tsa, "job-9:tsa", digest_of("before kill"))  # the client now holds a keep-alive connection
    tsa.process.send_signal(signal.SIGKILL)
    tsa.process.wait(10)
    with pytest.raises(ServiceUnavailable) as caught:
        timestamp(tsa, "job-10:tsa", digest_of("after kill"))
    assert tsa.url in str(caught.value)
    with ServiceClient(tsa.url) as fresh, pytest.raises(ServiceUnavailable) as refused:
        fresh.get_json("/health")
    assert not refused.value.maybe_applied
    assert "cannot connect" in str(refused.value)


class CuttingProxy:
    """A TCP forwarder that can cut every open connection at once, like the harness's network nemesis."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                downstream, _ = self.listener.accept()
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
                self.sockets += [downstream, upstream]
                self.accepted += 1
                for source, target in ((downstream, upstream), (upstream, downstream)):
                    threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.sockets.clear()

    def close(self) -> None:
        self.cut()
        self.listener.close()


def test_client_reconnects_once_after_its_connection_is_cut(tsa: Running) -> None:
    proxy = CuttingProxy(int(tsa.url.rsplit(":", 1)[1]))
    try:
        with ServiceClient(f"http://127.0.0.1:{proxy.port}") as client:
            first = client.post_json("/timestamp", {"digest": digest_of("a")}, "cut-1")
            proxy.cut()
            second = client.post_json("/timestamp", {"digest": digest_of("b")}, "cut-2")
        assert (first["token"]["serial"], second["token"]["serial"]) == (1, 2)
        assert proxy.accepted == 2
    finally:
        proxy.close()


def test_ledger_chains_entries_and_ignores_replayed_keys(ledger: Running) -> None:
    signature = "ab" * 32
    receipts = [
        ledger.client.post_json(
            "/anchor", {"digest": digest_of(f"doc {n}"), "tsa_signature": signature}, f"a{n}"
        )
        for n in range(3)
    ]
    assert [receipt["height"] for receipt in receipts] == [1, 2, 3]
    assert receipts[0]["prev_hash"] == "0" * 64
    assert [receipt["prev_hash"] for receipt in receipts[1:]] == [
        receipt["entry_hash"] for receipt in receipts[:2]
    ]
    assert all(verify_receipt(receipt) for receipt in receipts)

    replay = ledger.client.post_json(
        "/anchor", {"digest": digest_of("doc 1"), "tsa_signature": signature}, "a1"
    )
    assert replay == receipts[1]
    chain = ledger.client.get_json("/entries")
    assert chain["height"] == 3
    assert verify_chain(chain["entries"]) == []
    assert ledger.client.get_json("/entries/2")["entry_hash"] == receipts[1]["entry_hash"]
    found = ledger.client.get_json(f"/entries?digest={digest_of('doc 2')}")["entries"]
    assert [entry["height"] for entry in found] == [3]
    with pytest.raises(ServiceRejected) as missing:
        ledger.client.get_json("/entries/4")
    assert missing.value.status == 404
    assert "the chain has 3 entries" in missing.value.detail
    assert ledger.stats()["distinct_keys"] == 3


def test_verify_chain_names_a_broken_link() -> None:
    entries = [{"height": 1, "prev_hash": "0" * 64, "digest": "d", "tsa_signature": "s", "entry_hash": "bad"}]
    assert verify_chain(entries) == [
        f"entry 1: entry_hash bad is not {hashlib.sha256(b'0' * 64 + b'ds').hexdigest()}"
    ]


BAD_TIMESTAMP_REQUESTS = {
    "missing digest": (
        {"job_id": "j"},
        "digest: missing; expected 64 lowercase hex characters (a sha256 hexdigest)",
    ),
    "short digest": (
        {"digest": "abc"},
        "digest: 'abc' is not valid; expected 64 lowercase hex characters (a sha256 hexdigest)",
    ),
    "uppercase digest": (
        {"digest": "A" * 64},
        f"digest: '{'A' * 64}' is not valid; expected 64 lowercase hex characters (a sha256 hexdigest)",
    ),
    "typo in a field name": (
        {"digets": "a" * 64},
        "digets: unknown field; expected only: digest, job_id; "
        "digest: missing; expected 64 lowercase hex characters (a sha256 hexdigest)",
    ),
    "boolean job_id": (
        {"digest": "a" * 64, "job_id": True},
        "job_id: True; expected a string or an integer (at most 200 characters), or omitted",
    ),
}


@pytest.mark.parametrize("case", BAD_TIMESTAMP_REQUESTS)
def test_bad_timestamp_request_is_rejected_naming_the_field(tsa: Running, case: str) -> None:
    body, message = BAD_TIMESTAMP_REQUESTS[case]
    with pytest.raises(ServiceRejected) as caught:
        tsa.client.post_json("/timestamp", body, "bad")
    assert (caught.value.status, caught.value.detail) == (400, message)
    assert "\n" not in str(caught.value)


def test_missing_idempotency_key_and_invalid_json_are_rejected(tsa: Running, ledger: Running) -> None:
    with pytest.raises(ServiceRejected, match="header Idempotency-Key: missing"):
        tsa.client.post_json("/timestamp", {"digest": "a" * 64}, None)
    with pytest.raises(ServiceRejected, match="tsa_signature: missing"):
        ledger.client.post_json("/anchor", {"digest": "a" * 64}, "k")
    connection = socket.create_connection(("127.0.0.1", int(tsa.url.rsplit(":", 1)[1])))
    with connection:
        connection.sendall(
            b"POST /timestamp HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{oops"
        )
        answer = b"".join(iter(lambda: connection.recv(4096), b""))
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"body: invalid JSON" in answer


def test_bad_admin_config_is_rejected_listing_every_problem(tsa: Running) -> None:
    with pytest.raises(ServiceRejected) as caught:
        tsa.configure(failure_rate=1.5, down="yes", latency=3)
    assert caught.value.detail == (
        "failure_rate: 1.5 is not allowed; expected a number from 0 to 1; "
        "down: 'yes' is not allowed; expected true or false; "
        "latency: unknown setting; expected one of: "
        "latency_ms, jitter_ms, failure_rate, failure_point, down, seed"
    )
    assert tsa.client.get_json("/_admin/config")["failure_rate"] == 0


def test_sigterm_stops_the_service_with_exit_code_zero(tsa: Running) -> None:
    tsa.process.send_signal(signal.SIGTERM)
    assert tsa.process.wait(10) == 0


BAD_COMMAND_LINES = {
    "unknown service": (["notary"], "argument service: invalid choice: 'notary'"),
    "rate out of range": (["tsa", "--failure-rate", "2"], "--failure-rate: 2.0 is not allowed"),
    "rate not a number": (["tsa", "--failure-rate", "often"], "invalid float value: 'often'"),
    "negative latency": (["ledger", "--latency-ms", "-5"], "--latency-ms: -5.0 is not allowed"),
    "key not hex": (["tsa", "--key-hex", "xyz"], "--key-hex: 'xyz' is not allowed"),
    "port out of range": (["tsa", "--port", "70000"], "--port: 70000 is not allowed"),
}


@pytest.mark.parametrize("case", BAD_COMMAND_LINES)
def test_bad_command_line_exits_3_with_one_line(case: str) -> None:
    args, expected = BAD_COMMAND_LINES[case]
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.services", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 3
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("python -m pipeline.services: error: ")
    assert expected in lines[0]


def test_errors_share_one_root_whose_docstring_is_the_default_message() -> None:
    assert issubclass(ServiceUnavailable, ServiceError)
    assert issubclass(ServiceRejected, ServiceError)
    assert str(ServiceUnavailable()) == ServiceUnavailable.__doc__


@pytest.mark.parametrize("service", ["tsa", "ledger"])
def test_throughput_of_sequential_keep_alive_calls(service: str) -> None:
    """Printed, not asserted: the pipeline needs a few hundred calls per second per service."""
    path, extra = ("/timestamp", {}) if service == "tsa" else ("/anchor", {"tsa_signature": "cd" * 32})
    calls = 2000
    with running(service) as running_service:
        client = running_service.client
        started = time.perf_counter()
        for n in range(calls):
            client.post_json(path, {"digest": digest_of(str(n)), **extra}, f"throughput-{n}")
        elapsed = time.perf_counter() - started
        assert running_service.stats()["distinct_keys"] == calls
    rate = calls / elapsed
    print(f"\n{service}: {calls} sequential keep-alive calls in {elapsed:.2f} s = {rate:,.0f} requests/s")
