"""Logs as the processes write them: JSON lines or console lines on stderr, standard
library records in the same shape, and the API's one line per request without keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from service.logs import REDACTED
from tests.service_stack import ServiceStack, service_stack
from tests.signer.conftest import FETCH_URL

REQUEST_FIELDS = {
    "request_id",
    "method",
    "route",
    "dialect",
    "path",
    "status",
    "error_type",
    "latency_ms",
    "queue_wait_ms",
    "worker_id",
    "profile",
    "key_prefix",
    "client_ip",
    "event",
    "level",
    "logger",
    "timestamp",
}

_EMIT = """
import logging
from service.logs import configure_logging, get_logger
print(configure_logging())
get_logger("t.structlog").info("hello", n=1)
get_logger("t.structlog").debug("quiet")
logging.getLogger("t.stdlib").warning("from %s", "stdlib")
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("t.stdlib").exception("it broke")
"""


def _emit(**env: str) -> tuple[str, list[str]]:
    """Run `_EMIT` with `env`: the format it chose, and its stderr lines."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SIGNER_LOG_")}
    done = subprocess.run(
        [sys.executable, "-c", _EMIT],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip(), done.stderr.splitlines()


def test_json_when_stderr_is_not_a_terminal() -> None:
    chosen, lines = _emit()
    assert chosen == "json"
    records = [json.loads(line) for line in lines]  # every line, stdlib's included
    hello, stdlib, broke = records
    assert hello["event"] == "hello"
    assert hello["n"] == 1
    assert hello["level"] == "info"
    assert hello["logger"] == "t.structlog"
    assert hello["timestamp"].endswith("Z")
    assert stdlib["event"] == "from stdlib"
    assert stdlib["level"] == "warning"
    assert stdlib["logger"] == "t.stdlib"
    assert broke["level"] == "error"
    assert "ZeroDivisionError" in broke["exception"]


def test_console_format_and_level_are_settings() -> None:
    chosen, lines = _emit(SIGNER_LOG_FORMAT="console", SIGNER_LOG_LEVEL="debug")
    assert chosen == "console"
    text = "\n".join(lines)
    assert "hello" in text
    assert "n=1" in text
    assert "quiet" in text  # debug is written at debug level
    assert "from stdlib" in text
    assert "ZeroDivisionError" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines[0])
    chosen, lines = _emit(SIGNER_LOG_FORMAT="json", SIGNER_LOG_LEVEL="WARNING")
    assert [json.loads(line)["event"] for line in lines] == ["from stdlib", "it broke"]


@pytest.fixture(scope="module")
def logged_stack() -> Iterator[tuple[ServiceStack, Any]]:
    with (
        tempfile.TemporaryFile() as stderr,
        service_stack(env={"SIGNER_LOG_FORMAT": "json"}, api_stderr=stderr) as stack,
    ):
        yield stack, stderr


def _signer(stack: ServiceStack, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "service", *args],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def _call(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """GET `url`: its status and `X-Request-Id`."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
            return int(response.status), response.headers["X-Request-Id"]
    except urllib.error.HTTPError as error:
        return error.code, error.headers["X-Request-Id"]


def test_one_json_line_per_request_and_no_key(logged_stack: tuple[ServiceStack, Any]) -> None:
    stack, stderr = logged_stack
    email = "logs@example.com"
    _signer(stack, "users", "create", email)
    created = json.loads(
        _signer(stack, "keys", "create", "--user", email, "--name", "logs", "--json")
    )
    key, prefix = created["key"], created["record"]["prefix"]
    unknown_prefix = "sk_Nobody12"
    unknown = f"{unknown_prefix}_{'x' * 32}"  # shaped like a key, issued to nobody
    sign = f"{stack.base}/webcast/sign_url"
    query = urllib.parse.urlencode({"url": FETCH_URL})
    calls = {
        "header key": _call(f"{sign}?{query}", {"X-Api-Key": key}),
        "query key": _call(f"{sign}?{query}&{urllib.parse.urlencode({'apiKey': key})}"),
        "unknown key": _call(f"{sign}?{query}", {"X-Api-Key": unknown}),
        "no url": _call(sign),
        "health": _call(f"{stack.base}/health"),
    }
    assert calls["header key"][0] == calls["query key"][0] == 200
    assert calls["no url"][0] == 400
    assert calls["unknown key"][0] in (401, 403)

    stderr.seek(0)
    text = stderr.read().decode()
    assert key not in text
    assert unknown not in text
    records = [json.loads(line) for line in text.splitlines()]  # every line is JSON
    by_id: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if record["event"] == "request":
            assert set(record) == REQUEST_FIELDS
            by_id.setdefault(record["request_id"], []).append(record)
    lines = {name: by_id[request_id] for name, (_, request_id) in calls.items()}
    assert all(len(found) == 1 for found in lines.values()), lines
    line = {name: found[0] for name, found in lines.items()}

    for name in ("header key", "query key"):
        signed = line[name]
        assert signed["route"] == "sign_url_v1"
        assert signed["method"] == "GET"
        assert signed["path"] == "/webcast/sign_url"
        assert signed["status"] == 200
        assert signed["error_type"] is None
        assert signed["key_prefix"] == prefix
        assert signed["client_ip"] == "127.0.0.1"
        assert signed["worker_id"]
        assert signed["profile"] == "win10-chrome-1080p"
        assert signed["queue_wait_ms"] >= 0
        assert 0 < signed["latency_ms"] < 5000
        assert signed["level"] == "info"
    assert line["unknown key"]["key_prefix"] == unknown_prefix
    assert line["unknown key"]["status"] == calls["unknown key"][0]
    assert line["unknown key"]["worker_id"] is None
    assert line["no url"]["error_type"] == "VALIDATION_ERROR"
    assert line["no url"]["key_prefix"] is None
    assert line["health"]["route"] == "health"
    assert line["health"]["dialect"] == "structured"


_SECRETS = """
import asyncio, logging, sys
from service.logs import configure_logging, get_logger
key = sys.argv[1]
configure_logging()
get_logger("t.structlog").info(f"apiKey={key}", headers={"X-Api-Key": key}, raw=key.encode())
logging.getLogger("t.stdlib").warning("Authorization: Bearer %s", key)
try:
    raise ValueError(f"Invalid header value char: b'X-Api-Key: {key}\\\\x01'")
except ValueError:
    logging.getLogger("aiohttp.server").exception("Error handling request")
get_logger("t.tokens").info("signed", url="https://x/?a=1&msToken=SECRETTOKEN&X-Bogus=SECRETBOGUS")
"""


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_keys_and_tokens_are_redacted_from_every_record(log_format: str) -> None:
    from accounts.apikeys import generate_key  # the key shape the redaction must know

    key = generate_key()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SIGNER_LOG_")}
    done = subprocess.run(
        [sys.executable, "-c", _SECRETS, key.key],
        env={**clean, "SIGNER_LOG_FORMAT": log_format},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    secret = key.key.removeprefix(key.prefix + "_")
    assert secret[:8] not in done.stderr
    assert "SECRETTOKEN" not in done.stderr
    assert "SECRETBOGUS" not in done.stderr
    assert f"{key.prefix}_{REDACTED}" in done.stderr  # the prefix still says whose key it was
    assert "Error handling request" in done.stderr
    assert "ValueError" in done.stderr  # the traceback stays, without the key
    if log_format == "json":
        assert len(done.stderr.splitlines()) == 4


_ACCEPT_FAILURES = """
import asyncio, errno, logging
from service.logs import configure_logging
configure_logging()

async def main() -> None:
    loop = asyncio.get_running_loop()
    error = OSError(errno.EMFILE, "Too many open files")
    for _ in range(5000):  # what an API out of descriptors reported, scaled down
        loop.call_exception_handler(
            {"message": "socket.accept() out of system resource", "exception": error}
        )
    logging.getLogger("asyncio").error("something else")

asyncio.run(main())
"""


def test_accept_failures_are_logged_at_most_once_a_second() -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SIGNER_LOG_")}
    done = subprocess.run(
        [sys.executable, "-c", _ACCEPT_FAILURES],
        env={**clean, "SIGNER_LOG_FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    records = [json.loads(line) for line in done.stderr.splitlines()]
    failures = [r for r in records if r["event"].startswith("socket.accept()")]
    assert 1 <= len(failures) <= 2  # the loop ran well under two seconds
    assert "Too many open files" in failures[0]["event"]
    assert "exception" not in failures[0]
    assert [r["event"] for r in records if r not in failures] == ["something else"]
