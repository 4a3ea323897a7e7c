"""The real client packages against our running stack: private Redis, one native worker, the API.

Everything stays on 127.0.0.1: the clients are pointed at our base URL and their hosted
fallbacks are removed before they sign anything.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

import pytest

from signer.xbogus import verify_xbogus
from tests.service_stack import ServiceStack, issue_key, service_stack

NODE_DIR = Path(__file__).parent / "node"
NPM_INSTALL = "cd tests/clients/node && npm ci --no-audit --no-fund"
TIKTOKLIVE_PIP = '.venv/bin/pip install "TikTokLive>=6.6,<6.7"'


@pytest.fixture(scope="module")
def sign_stack() -> Iterator[ServiceStack]:
    """`signer api` with one native `signer worker`, on private Redis and Postgres."""
    with service_stack(processes=1) as stack:
        yield stack


@pytest.fixture(scope="module")
def sign_server(sign_stack: ServiceStack) -> str:
    """Base URL (no trailing slash) of the stack's API."""
    return sign_stack.base


@pytest.fixture(scope="module")
def client_key(sign_stack: ServiceStack) -> str:
    """A real API key of the stack, issued with the admin commands as a user would."""

    return issue_key(sign_stack.env, "client@example.com")


@pytest.fixture(scope="session")
def node_client() -> Path:
    """tests/clients/node with its pinned packages installed (`npm ci` when missing)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node/npm not on PATH: install Debian's nodejs and npm to run the npm clients")
    # Both pins: 1.x as itself, 2.x under its npm alias `tlc2`.
    packages = ("tiktok-live-connector", "tlc2")
    if not all((NODE_DIR / "node_modules" / name / "package.json").is_file() for name in packages):
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
