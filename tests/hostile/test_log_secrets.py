"""No API key reaches the API's log, whatever the client sends: each kind of request
aiohttp's parser refuses (it quotes the raw bytes in its errors) carries a real key, and
the log is searched for it afterwards. Each also leaves exactly one log line, without a
traceback."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from typing import IO

import pytest

from tests.hostile.test_connections import LIMITS, answer_of, exchange
from tests.service_stack import ServiceStack, issue_key, service_stack


@pytest.fixture(scope="module")
def logged() -> Iterator[tuple[ServiceStack, IO[bytes], str]]:
    """A stack whose API logs JSON to a file, and a key issued on it."""
    with (
        tempfile.TemporaryFile() as stderr,
        service_stack(env={"SIGNER_LOG_FORMAT": "json"}, api_stderr=stderr) as stack,
    ):
        yield stack, stderr, issue_key(stack.env, "secrets@example.com")


def malformed(key: str) -> dict[str, bytes]:
    """Requests aiohttp's parser refuses, each holding `key` where the parser quotes."""
    k = key.encode()
    return {
        "long request line": b"GET /webcast/sign_url?apiKey=" + k + b"&url="
        + b"x" * (LIMITS.line + 100) + b" HTTP/1.1\r\nHost: a\r\n\r\n",
        "bad X-Api-Key": b"GET /health HTTP/1.1\r\nHost: a\r\nX-Api-Key: " + k + b"\x01\r\n\r\n",
        "long header": b"GET /health HTTP/1.1\r\nHost: a\r\nX-Api-Key: " + k
        + b"x" * (LIMITS.field + 100) + b"\r\n\r\n",
        "bad Authorization": b"GET /health HTTP/1.1\r\nAuthorization: Bearer " + k
        + b"\x7f\r\n\r\n",
        "bad request line": b"GET /webcast/sign_url?apiKey=" + k + b" HTTP/1.1 junk\r\n\r\n",
        "bad key in query": b"GET /x?apiKey=" + k + b"\x01 HTTP/1.1\r\n\r\n",
    }  # fmt: skip


KINDS = list(malformed("sk_AbCd1234_" + "x" * 32))


@pytest.mark.parametrize("kind", KINDS)
def test_a_refused_request_logs_one_line_without_the_key(
    logged: tuple[ServiceStack, IO[bytes], str], kind: str
) -> None:
    stack, stderr, key = logged
    secret = key.rsplit("_", 1)[1]
    stderr.seek(0, 2)
    before = stderr.tell()
    status, body = answer_of(exchange(stack.base, malformed(key)[kind]))
    assert 400 <= status < 500, body
    # The answer's line is written before the answer: it is in the file by now.
    stderr.seek(before)
    text = stderr.read().decode()
    assert secret[:12] not in text
    lines = text.splitlines()
    assert len(lines) == 1, lines
    record = json.loads(lines[0])
    assert record["event"] == "malformed request"
    assert record["status"] == status
    assert "exception" not in record
    assert "Traceback" not in text


def test_the_whole_log_holds_no_key(logged: tuple[ServiceStack, IO[bytes], str]) -> None:
    stack, stderr, key = logged
    for data in malformed(key).values():
        exchange(stack.base, data)
    stderr.seek(0)
    text = stderr.read().decode()
    assert key not in text
    assert key.rsplit("_", 1)[1][:12] not in text
