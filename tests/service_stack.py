"""The service as users run it, for tests: a private Redis, `signer worker`, `signer api`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from stack.services import free_port
from tests.redis_server import private_redis

__all__ = ["ServiceStack", "get_json", "service_stack"]


@dataclass
class ServiceStack:
    base: str  # no trailing slash
    api: subprocess.Popen[bytes]
    workers: subprocess.Popen[bytes]


def get_json(url: str) -> tuple[int, dict[str, object]]:
    """GET `url`; its status and JSON body, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _wait_for_workers(base: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    health: dict[str, object] = {}
    while time.monotonic() < deadline:
        try:
            status, health = get_json(f"{base}/health")
            if status == 200 and health["workers"] == count:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the stack did not report {count} workers: {health}")


@contextmanager
def service_stack(processes: int = 1, engine: str = "native") -> Iterator[ServiceStack]:
    """Start the stack, wait until `/health` reports every worker, kill what is left after."""
    with private_redis() as redis_url:
        env = dict(
            os.environ,
            REDIS_URL=redis_url,
            SIGNER_QUEUE_PREFIX=f"test-{uuid.uuid4().hex[:8]}",
            SIGNER_ENGINE=engine,
        )
        port = free_port()
        command = [sys.executable, "-m", "signer"]
        workers = subprocess.Popen([*command, "worker", "--processes", str(processes)], env=env)
        api = subprocess.Popen([*command, "api", "--port", str(port)], env=env)
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_for_workers(base, processes, timeout=30)
            yield ServiceStack(base, api, workers)
        finally:
            for process in (api, workers):
                if process.poll() is None:
                    process.kill()
                    process.wait()
