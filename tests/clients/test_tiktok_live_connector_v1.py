"""npm `tiktok-live-connector@1.2.3`: its own sign provider, pointed at our server.

`node/sign_v1.js` calls `signatureProvider.signWebcastRequest` with a real `TikTokHttpClient`'s
headers and cookie jar, exactly as the library signs its initial `webcast/im/fetch/` request,
and prints what the client kept from our answer.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.clients.conftest import assert_xbogus_verifies

PINNED = "1.2.3"


def run_sign_v1(node_dir: Path, base: str, mode: str, api_key: str = "") -> dict[str, object]:
    node = shutil.which("node")
    assert node is not None
    # The 1.x client appends 'webcast/sign_url' to the host: users give it with a trailing '/'.
    argv = [node, "sign_v1.js", f"{base}/", mode, *([api_key] if api_key else [])]
    done = subprocess.run(
        argv, cwd=node_dir, capture_output=True, text=True, timeout=60, check=False
    )
    lines = done.stdout.strip().splitlines()
    assert lines, f"sign_v1.js printed nothing (exit {done.returncode}): {done.stderr}"
    result: dict[str, object] = json.loads(lines[-1])
    rejected = f"tiktok-live-connector {PINNED} rejected our answer: {result.get('error')}"
    assert result.get("ok") is True, f"{rejected}\n{done.stderr}"
    assert done.returncode == 0, f"{rejected}\n{done.stderr}"
    return result


def test_pinned_version_is_installed(node_client: Path) -> None:
    manifest = node_client / "node_modules" / "tiktok-live-connector" / "package.json"
    assert json.loads(manifest.read_text())["version"] == PINNED
    lock = json.loads((node_client / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/tiktok-live-connector"]["version"] == PINNED


@pytest.mark.parametrize(
    ("mode", "with_key"),
    [
        pytest.param("options", False, id="signProviderOptions.host"),
        pytest.param("config", False, id="signatureProvider.config.signProviderHost"),
        pytest.param("options", True, id="signProviderOptions.params.apiKey"),
    ],
)
def test_client_accepts_our_signature(
    sign_server: str, node_client: Path, client_key: str, mode: str, with_key: bool
) -> None:
    result = run_sign_v1(node_client, sign_server, mode, client_key if with_key else "")

    # Our server answered, not a fallback, and the client took the answer as a success.
    assert result["events"] == [{"type": "signSuccess", "signHost": f"{sign_server}/"}]

    signed_url = str(result["signedUrl"])
    unsigned = urlsplit(str(result["unsignedUrl"]))
    signed = urlsplit(signed_url)
    assert (signed.scheme, signed.netloc, signed.path) == (
        unsigned.scheme,
        unsigned.netloc,
        unsigned.path,
    )
    params = parse_qs(signed.query, keep_blank_values=True)
    assert params["room_id"] == ["7312345678901234567"]
    assert params["aid"] == ["1988"]
    for token in ("X-Bogus", "X-Gnarly", "verifyFp", "msToken"):
        assert token in params, f"{token} missing from {signed_url}"

    # The client switches its own User-Agent to ours: the signature must match that UA.
    user_agent = str(result["userAgent"])
    assert user_agent.startswith("Mozilla/5.0"), user_agent
    assert_xbogus_verifies(signed_url, user_agent)

    # msToken from the answer becomes the client's cookie (`cookieJar.setCookie`).
    assert isinstance(result["msToken"], str)
    assert params["msToken"] == [result["msToken"]]


def test_client_throws_its_own_error_when_the_server_is_down(node_client: Path) -> None:
    # No server on this port: the client must fail with its SignatureError, and stay offline
    # (sign_v1.js removes the hosted fallbacks).
    node = shutil.which("node")
    assert node is not None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    done = subprocess.run(
        [node, "sign_v1.js", dead, "options"],
        cwd=node_client,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 1
    assert result["ok"] is False
    assert str(result["error"]).startswith("Failed to sign request"), result
