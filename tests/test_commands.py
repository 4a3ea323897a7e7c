"""`signer api` and `signer worker --processes N` as a user runs them, on a private Redis."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from tests.redis_server import private_redis
from tests.signer.conftest import FETCH_URL


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def stack() -> Iterator[tuple[str, subprocess.Popen[bytes], subprocess.Popen[bytes]]]:
    with private_redis() as redis_url:
        env = dict(
            os.environ,
            REDIS_URL=redis_url,
            SIGNER_QUEUE_PREFIX=f"cmd-{uuid.uuid4().hex[:8]}",
            SIGNER_ENGINE="native",
        )
        port = _free_port()
        command = [sys.executable, "-m", "signer"]
        workers = subprocess.Popen([*command, "worker", "--processes", "2"], env=env)
        api = subprocess.Popen([*command, "api", "--port", str(port)], env=env)
        try:
            yield f"http://127.0.0.1:{port}", api, workers
        finally:
            for process in (api, workers):
                if process.poll() is None:
                    process.kill()
                    process.wait()


def test_api_and_two_workers_sign_then_stop_cleanly(
    stack: tuple[str, subprocess.Popen[bytes], subprocess.Popen[bytes]],
) -> None:
    base, api, workers = stack
    deadline = time.monotonic() + 30
    health: dict[str, object] = {}
    while time.monotonic() < deadline:
        try:
            status, health = _get(f"{base}/health")
            if status == 200 and health["workers"] == 2:
                break
        except OSError:
            pass
        time.sleep(0.2)
    assert health.get("workers") == 2, health
    query = urllib.parse.urlencode({"url": FETCH_URL})
    status, body = _get(f"{base}/webcast/sign_url?{query}")
    assert status == 200
    assert "X-Bogus=DFSz" in str(body["signedUrl"])

    workers.send_signal(signal.SIGTERM)
    api.send_signal(signal.SIGTERM)
    assert workers.wait(timeout=30) == 0
    assert api.wait(timeout=30) == 0
