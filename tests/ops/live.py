"""A live stack for the ops tests, traffic to send it, and a real Prometheus to run
against it (Debian's `prometheus` binary, a temporary config, storage and port)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml

from tests.service_stack import ServiceStack

__all__ = [
    "PROMETHEUS_HINT",
    "LiveStack",
    "prometheus_api",
    "running_prometheus",
    "scrape",
    "send_traffic",
]

PROMETHEUS_HINT = (
    "not found: install Debian's prometheus package (`apt-get install -y prometheus`; "
    "`make test` does it as root through scripts/ensure-system.sh)"
)
SIGN_URL = (
    "https://webcast.tiktok.com/webcast/im/fetch/?aid=1988&app_name=tiktok_web"
    "&room_id=7312345678901234567"
)


@dataclass
class LiveStack:
    stack: ServiceStack
    worker_metrics_port: int

    @property
    def api_address(self) -> str:
        return self.stack.base.removeprefix("http://")

    @property
    def worker_address(self) -> str:
        return f"127.0.0.1:{self.worker_metrics_port}"


def scrape(address: str, timeout: float = 10.0) -> str:
    """GET http://address/metrics, retried while nothing listens yet (up to `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
                return cast(bytes, response.read()).decode()
        except OSError as error:
            if time.monotonic() > deadline:
                raise AssertionError(f"no metrics at http://{address}/metrics: {error}") from None
            time.sleep(0.2)


def _send(url: str, body: dict[str, str] | None = None) -> int:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.read()
        return error.code


def send_traffic(stack: ServiceStack, signatures: int) -> list[int]:
    """Signing requests (valid ones and one the API refuses as invalid) and a health check;
    the answers' statuses."""
    statuses = [_send(f"{stack.base}/api/signature", {"url": SIGN_URL}) for _ in range(signatures)]
    statuses.append(_send(f"{stack.base}/api/signature", {"url": "https://example.com/"}))
    statuses.append(_send(f"{stack.base}/health"))
    return statuses


def prometheus_api(base: str, path: str, **params: str) -> Any:
    """GET a Prometheus HTTP API path; its `data`."""
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"{base}{path}{query}", timeout=10) as response:
        body = json.loads(response.read())
    assert body.get("status") == "success", body
    return body["data"]


@contextmanager
def running_prometheus(
    binary: str, config: dict[str, Any], folder: Path, port: int
) -> Iterator[str]:
    """Run Prometheus with `config` on `port` (storage and log in `folder`); yield its
    base URL."""
    config_file = folder / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    log_file = folder / "prometheus.log"
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, process, log_file)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(base: str, process: subprocess.Popen[bytes], log_file: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"prometheus exited at start:\n{log_file.read_text()}")
        try:
            with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"prometheus not ready after 30 s:\n{log_file.read_text()}")
