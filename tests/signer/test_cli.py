"""The `signer` command line, run as a user would run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import FETCH_URL

VECTORS = Path(__file__).parents[3] / "shared" / "vectors" / "xbogus.json"
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args], capture_output=True, text=True, timeout=60
    )


def test_token_xbogus_prints_every_vector() -> None:
    if not VECTORS.exists():
        pytest.skip(f"public vectors not found at {VECTORS}")
    for vector in json.loads(VECTORS.read_text())["vectors"]:
        header = ",".join(str(b) for b in vector["header"])
        out = run(
            "token",
            "xbogus",
            "--query",
            vector["query"],
            "--user-agent",
            vector["user_agent"],
            "--timestamp",
            str(vector["timestamp"]),
            "--canvas",
            str(vector["canvas"]),
            "--header",
            header,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout == vector["expected"] + "\n"


def test_token_xgnarly_then_decode_validates() -> None:
    out = run(
        "token",
        "xgnarly",
        "--query",
        "aid=1988",
        "--user-agent",
        UA,
        "--timestamp",
        "1700000000",
        "--canvas",
        "12345",
    )
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    decoded = run("token", "decode", token, "--query", "aid=1988", "--user-agent", UA)
    data = json.loads(decoded.stdout)
    assert data["kind"] == "x-gnarly"
    assert data["valid"] is True
    assert data["fields"]["timestamp"] == 1700000000
    wrong = run("token", "decode", token, "--query", "aid=1989", "--user-agent", UA)
    assert json.loads(wrong.stdout)["valid"] is False


def test_token_xttparams_and_decode() -> None:
    out = run("token", "xttparams", "aid=1988&count=30")
    assert out.stdout.strip() == "mb+z3Pl1d/bc+N0SKnc7nS/NviSlH9Z9tBDVDTo4Fl/oL7XZztHicmJ+WbzsqEDx"
    decoded = json.loads(run("token", "decode", out.stdout.strip()).stdout)
    assert decoded["kind"] == "x-tt-params"


def test_decode_rejects_garbage_with_a_message() -> None:
    out = run("token", "decode", "not-a-token")
    assert out.returncode == 2
    assert out.stderr.startswith("signer: ")


def test_sign_native_json() -> None:
    out = run("sign", FETCH_URL, "--engine", "native", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["signed_url"].startswith("https://webcast.tiktok.com/webcast/im/fetch/?")
    assert data["engine"] == "native"
    assert data["navigator"]["platform"] == "Win32"


def test_sign_browser_prints_url_and_user_agent(require_chromium: None) -> None:
    out = run("sign", FETCH_URL)
    assert out.returncode == 0, out.stderr
    assert "&X-Bogus=DFSz" in out.stdout
    assert out.stderr.startswith("User-Agent: Mozilla/5.0")
    assert "Headless" not in out.stderr


def test_sign_refuses_a_foreign_host() -> None:
    out = run("sign", "https://example.com/x", "--engine", "native")
    assert out.returncode == 2
    assert "not allowed" in out.stderr
