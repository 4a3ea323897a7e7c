"""The real client packages against our running stack: private Redis, one native worker, the API.

Everything stays on 127.0.0.1: the clients are pointed at our base URL and their hosted
fallbacks are removed before they sign anything.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

import pytest

from signer.xbogus import verify_xbogus
from tests.redis_server import private_redis

NODE_DIR = Path(__file__).parent / "node"
NPM_INSTALL = "cd tests/clients/node && npm ci --no-audit --no-fund"
TIKTOKLIVE_PIP = '.venv/bin/pip install "TikTokLive>=6.6,<6.7"'
STACK_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _health(base: str) -> dict[str, object]:
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
            body: dict[str, object] = json.loads(response.read())
            return body
    except (OSError, ValueError, urllib.error.HTTPError):
        return {}


@pytest.fixture(scope="module")
def sign_server() -> Iterator[str]:
    """Base URL (no trailing slash) of `signer api` with one native `signer worker`."""
    with private_redis() as redis_url:
        env = dict(
            os.environ,
            REDIS_URL=redis_url,
            SIGNER_QUEUE_PREFIX=f"clients-{uuid.uuid4().hex[:8]}",
            SIGNER_ENGINE="native",
        )
        port = _free_port()
        command = [sys.executable, "-m", "signer"]
        workers = subprocess.Popen([*command, "worker", "--processes", "1"], env=env)
        api = subprocess.Popen([*command, "api", "--port", str(port)], env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + STACK_TIMEOUT
            health: dict[str, object] = {}
            while time.monotonic() < deadline:
                health = _health(base)
                if health.get("workers") == 1:
                    break
                if workers.poll() is not None or api.poll() is not None:
                    break
                time.sleep(0.2)
            if health.get("workers") != 1:
                pytest.fail(
                    f"the stack did not come up within {STACK_TIMEOUT:.0f}s: /health={health}, "
                    f"worker exit={workers.poll()}, api exit={api.poll()}"
                )
            yield base
        finally:
            for process in (api, workers):
                if process.poll() is None:
                    process.terminate()
                    try:
                        process.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()


@pytest.fixture(scope="session")
def node_client() -> Path:
    """tests/clients/node with its pinned packages installed (`npm ci` when missing)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node/npm not on PATH: install Debian's nodejs and npm to run the npm clients")
    if not (NODE_DIR / "node_modules" / "tiktok-live-connector" / "package.json").is_file():
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(
                f"`{NPM_INSTALL}` failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
    return NODE_DIR


@pytest.fixture(scope="session")
def tiktoklive() -> ModuleType:
    """The installed TikTokLive package; fails (not skips) with the install command."""
    try:
        module = importlib.import_module("TikTokLive")
    except ImportError as error:
        pytest.fail(f"TikTokLive is not installed ({error}): run `{TIKTOKLIVE_PIP}`")
    return module


def query_before_xbogus(signed_url: str) -> str:
    """The query X-Bogus covers: everything before `&X-Bogus=`."""
    query = urlsplit(signed_url).query
    assert "&X-Bogus=" in query, signed_url
    return query[: query.index("&X-Bogus=")]


def xbogus_of(signed_url: str) -> str:
    query = urlsplit(signed_url).query
    return query.split("&X-Bogus=", 1)[1].split("&", 1)[0]


def assert_xbogus_verifies(signed_url: str, user_agent: str) -> None:
    token = xbogus_of(signed_url)
    covered = query_before_xbogus(signed_url)
    assert verify_xbogus(token, covered, user_agent), (
        f"X-Bogus {token} does not fingerprint its query and UA {user_agent!r}: {signed_url}"
    )
