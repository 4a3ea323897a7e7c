"""Connections that misbehave, against a real `signer api` on loopback: slow and idle ones
are closed after the head deadline, the connection cap refuses the extra ones at once,
the parser's limits fit the longest URL we sign and answer over-limit requests in JSON,
and a port already in use is one line, not a traceback.

Raw sockets, not an HTTP client: a client library would neither dribble a head nor send
an over-long or malformed one.
"""

from __future__ import annotations

import contextlib
import functools
import json
import resource
import select
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from typing import IO, Any

import pytest

from service.api_process import ParserLimits, connection_cap
from service.stack.services import free_port
from signer import SignerSettings
from tests.service_stack import ServiceStack, get_json, service_stack, wait_for_workers
from tests.signer.conftest import FETCH_URL

__all__ = ["answer_of", "exchange", "open_raw"]

LIMITS = ParserLimits(SignerSettings().max_url_length)
CAP = 50
HEAD_TIMEOUT = 2
SLOW = 60
# Seconds any raw exchange may take in all; the server answers or closes far sooner.
EXCHANGE_SECONDS = 20.0


def open_raw(base: str) -> socket.socket:
    """A TCP connection to the API at `base`."""
    parts = urllib.parse.urlsplit(base)
    assert parts.hostname is not None
    assert parts.port is not None
    return socket.create_connection((parts.hostname, parts.port), timeout=EXCHANGE_SECONDS)


def read_to_end(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes (a reset counts as the close)."""
    received = b""
    try:
        while chunk := connection.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def exchange(base: str, data: bytes) -> bytes:
    """Send `data` on a fresh connection; all the server answers before it closes."""
    with open_raw(base) as connection:
        # Refused mid-send (an over-long line): the answer is still there to read.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.sendall(data)
        return read_to_end(connection)


def answer_of(raw: bytes) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of one raw HTTP answer."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"application/json" in head, head
    return status, json.loads(body)


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[ServiceStack, IO[bytes]]]:
    """A native-engine stack at the default limits, its API's log captured."""
    with (
        tempfile.TemporaryFile() as stderr,
        service_stack(env={"SIGNER_LOG_FORMAT": "json"}, api_stderr=stderr) as running,
    ):
        yield running, stderr


def _long_url(length: int) -> str:
    return f"{FETCH_URL}&pad={'a' * (length - len(FETCH_URL) - 5)}"


def test_a_12_kb_url_signs_by_get(stack: tuple[ServiceStack, IO[bytes]]) -> None:
    running, _ = stack
    url = _long_url(12_000)
    query = urllib.parse.urlencode({"url": url})
    assert len(query) > 8190  # over aiohttp's default request line
    status, body = get_json(f"{running.base}/webcast/sign_url?{query}")
    assert status == 200, body
    signed = str(body["signedUrl"])
    assert url.rsplit("&", 1)[1] in signed  # the padding went all the way through
    assert "X-Bogus=" in signed


def test_over_limit_requests_get_json_in_the_route_dialect(
    stack: tuple[ServiceStack, IO[bytes]],
) -> None:
    running, _ = stack
    pad = "a" * (LIMITS.line + 100)
    # EulerStream's route: `{code, message}`.
    status, body = answer_of(
        exchange(running.base, f"GET /webcast/sign_url?url={pad} HTTP/1.1\r\n\r\n".encode())
    )
    assert status == 414
    assert body["code"] == 414
    assert "request line" in body["message"]
    # Any other path: `{status: "error", error: {...}}`.
    status, body = answer_of(
        exchange(running.base, f"GET /api/signature?x={pad} HTTP/1.1\r\n\r\n".encode())
    )
    assert (status, body["status"], body["error"]["code"]) == (414, "error", 414)
    header = f"GET /health HTTP/1.1\r\nHost: a\r\nX-Pad: {'b' * (LIMITS.field + 100)}\r\n\r\n"
    status, body = answer_of(exchange(running.base, header.encode()))
    assert (status, body["error"]["type"]) == (431, "VALIDATION_ERROR")
    status, body = answer_of(exchange(running.base, b"GET /health HTTP/1.1 junk\r\n\r\n"))
    assert status == 400
    assert body["error"]["message"].startswith("malformed HTTP request")
    # A URL the parser passes but the signer's own limit refuses: the route's 400.
    query = urllib.parse.urlencode({"url": _long_url(LIMITS.max_url_length + 10)})
    status, error = get_json(f"{running.base}/webcast/sign_url?{query}")
    assert status == 400
    assert "longer than" in str(error["message"])


def test_a_taken_port_is_one_line(stack: tuple[ServiceStack, IO[bytes]]) -> None:
    running, _ = stack
    port = int(running.base.rsplit(":", 1)[1])  # the stack's API holds it
    done = subprocess.run(
        [sys.executable, "-m", "service", "api", "--port", str(port)],
        env=running.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    expected = (
        f"signer api: port {port} on 127.0.0.1 is in use; choose another with --port "
        "(or SIGNER_API_PORT)"
    )
    assert expected in done.stderr.splitlines()
    assert "Traceback" not in done.stderr


def _status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/") else 0


def test_slow_connections_are_closed_and_capped() -> None:
    settings = {
        "SIGNER_LOG_FORMAT": "json",
        "SIGNER_API_MAX_CONNECTIONS": str(CAP),
        "SIGNER_API_HEAD_TIMEOUT": str(HEAD_TIMEOUT),
    }
    with (
        tempfile.TemporaryFile() as stderr,
        service_stack(env=settings, api_stderr=stderr) as running,
    ):
        slow = [open_raw(running.base) for _ in range(SLOW)]
        answers: dict[socket.socket, bytes] = {}
        try:
            # Slowloris: a head that never ends, one more header every half second to
            # each connection still open, until the server has closed every one.
            for connection in slow:
                connection.sendall(b"GET /health HTTP/1.1\r\nHost: a\r\n")
            deadline = time.monotonic() + EXCHANGE_SECONDS
            while len(answers) < SLOW and time.monotonic() < deadline:
                waiting = [c for c in slow if c not in answers]
                readable, _, _ = select.select(waiting, [], [], 0.5)
                for connection in readable:
                    answers[connection] = read_to_end(connection)
                for connection in waiting:
                    if connection not in readable:
                        # Closed meanwhile: read on the next round.
                        with contextlib.suppress(OSError):
                            connection.sendall(b"X-Slow: 1\r\n")
            # Every slow connection was answered and closed: the ones over the cap at
            # once with a 503, the others with a 408 at the head deadline.
            statuses = sorted(_status(raw) for raw in answers.values())
            assert len(statuses) == SLOW
            assert statuses.count(503) == SLOW - CAP
            assert statuses.count(408) == CAP
            refused = next(raw for raw in answers.values() if _status(raw) == 503)
            assert answer_of(refused)[1]["error"]["type"] == "SERVICE_UNAVAILABLE"
        finally:
            for connection in slow:
                connection.close()
        # Served normally afterwards.
        status, health = get_json(f"{running.base}/health")
        assert (status, health["status"]) == (200, "healthy")
        stderr.seek(0)
        records = [json.loads(line) for line in stderr.read().decode().splitlines()]
    events = [record["event"] for record in records]
    assert sum("socket.accept()" in event for event in events) <= 3
    # The cap's refusals are said at most once a second, not once each.
    assert 1 <= events.count("connection cap reached: refusing connections") <= 3


def test_below_the_cap_normal_requests_are_served_among_slow_ones() -> None:
    settings = {"SIGNER_API_MAX_CONNECTIONS": str(CAP), "SIGNER_API_HEAD_TIMEOUT": "30"}
    with service_stack(env=settings) as running:
        slow = [open_raw(running.base) for _ in range(CAP - 5)]
        try:
            for connection in slow:
                connection.sendall(b"GET /health HTTP/1.1\r\n")
            for _ in range(20):  # one at a time: each closes before the next
                status, _ = get_json(f"{running.base}/health")
                assert status == 200
        finally:
            for connection in slow:
                connection.close()


DESCRIPTORS = 256  # the API's file-descriptor limit in the test below
OVER = 300  # connections opened: more than the API has descriptors


def _limited(descriptors: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (descriptors, descriptors))


def test_out_of_descriptors_is_refused_not_a_log_flood(
    stack: tuple[ServiceStack, IO[bytes]],
) -> None:
    running, _ = stack
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as stderr:
        api = subprocess.Popen(
            [sys.executable, "-m", "service", "api", "--port", str(port)],
            env={**running.env, "SIGNER_LOG_FORMAT": "json", "SIGNER_API_HEAD_TIMEOUT": "3"},
            stderr=stderr,
            preexec_fn=functools.partial(_limited, DESCRIPTORS),
        )
        try:
            wait_for_workers(base, 1)
            held = [open_raw(base) for _ in range(OVER)]
            try:
                # The cap (derived from the limit) answers the extra ones at once.
                answers = [read_to_end(c) for c in held[connection_cap(10_000, DESCRIPTORS) :]]
                assert {_status(raw) for raw in answers} == {503}
            finally:
                for connection in held:
                    connection.close()
            wait_for_workers(base, 1)  # served again once they are gone
        finally:
            api.terminate()
            api.wait(timeout=30)
        stderr.seek(0)
        text = stderr.read().decode()
    assert text.count("socket.accept()") <= 3
