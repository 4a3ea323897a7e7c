"""PyPI `TikTokLive` 6.6.x: its own signer (`TikTokSigner`, EulerApiSdk underneath), pointed at us.

TikTokLive ships no type information, so its modules are loaded through `importlib` (typed
`Any`); the `tiktoklive` fixture fails with the pip command when the package is missing.
Nothing here sends a request to TikTok: `build_request` only builds the request it would send.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.clients.conftest import assert_xbogus_verifies, xbogus_of

ROOM_ID = "7312345678901234567"
UNSIGNED = (
    "https://webcast.tiktok.com/webcast/im/fetch/?aid=1988&app_name=tiktok_web"
    "&device_platform=web_pc&room_id=" + ROOM_ID
)
# TikTokLive 6.6 imports websockets' deprecated legacy API: not ours to fix.
pytestmark = [
    pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:websockets.exceptions.InvalidStatusCode:DeprecationWarning"),
]

CHROME_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)


def _module(name: str) -> Any:
    return importlib.import_module(name)


@pytest.fixture
def clean_sign_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A user's own SIGN_API_URL / SIGN_API_KEY must not send these tests anywhere else.
    monkeypatch.delenv("SIGN_API_URL", raising=False)
    monkeypatch.delenv("SIGN_API_KEY", raising=False)


def test_installed_version(tiktoklive: ModuleType) -> None:
    version = _module("TikTokLive.__version__").PACKAGE_VERSION
    assert str(version).startswith("6.6."), version


async def test_signer_signs_through_our_server(
    tiktoklive: ModuleType, sign_server: str, clean_sign_env: None
) -> None:
    signer = _module("TikTokLive.client.web.web_signer").TikTokSigner(sign_api_base=sign_server)
    # The client strips stale X-Bogus / msToken itself before asking: we must re-add fresh ones.
    stale = f"{UNSIGNED}&msToken=stale&X-Bogus=DFSzstale"
    result = await signer.webcast_sign(
        url=stale, method="GET", sign_url_type="xhr", payload="", user_agent=CHROME_UA
    )

    signed_url = str(result.signed_url)
    assert signed_url.startswith(UNSIGNED + "&"), signed_url
    params = parse_qs(urlsplit(signed_url).query, keep_blank_values=True)
    assert params["X-Bogus"] != ["DFSzstale"]
    assert "stale" not in params["msToken"]
    assert len(params["X-Bogus"]) == 1
    assert len(params["msToken"]) == 1

    # We sign with the caller's UA and say so; the X-Bogus binds query and that UA.
    assert result.user_agent == CHROME_UA
    assert_xbogus_verifies(signed_url, str(result.user_agent))
    tokens = result.tokens.to_dict()
    assert tokens["X-Bogus"] == xbogus_of(signed_url)
    assert result.request_headers.to_dict()["User-Agent"] == CHROME_UA
    assert isinstance(result.cookies, list)


async def test_live_client_signs_via_env_sign_api_url(
    tiktoklive: ModuleType, sign_server: str, client_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # How users switch: SIGN_API_URL (and a key in SIGN_API_KEY, sent as X-Api-Key).
    monkeypatch.setenv("SIGN_API_URL", sign_server)
    monkeypatch.setenv("SIGN_API_KEY", client_key)
    client = tiktoklive.TikTokLiveClient(unique_id="@someone")
    web = client.web
    assert web.signer.sign_api_key == client_key
    try:
        request = await web.build_request(
            url=f"{_module('TikTokLive.client.web.web_settings').WebDefaults.tiktok_webcast_url}"
            "/im/fetch/",
            method="GET",
            extra_params={"room_id": ROOM_ID},
            sign_url=True,
        )
    finally:
        await web.close()

    signed_url = str(request.url)
    assert urlsplit(signed_url).netloc == "webcast.tiktok.com"
    params = parse_qs(urlsplit(signed_url).query, keep_blank_values=True)
    assert params["room_id"] == [ROOM_ID]
    assert "msToken" in params
    # The client sends the UA we answered with: the signature must match it.
    assert_xbogus_verifies(signed_url, request.headers["User-Agent"])


async def test_http_client_signs_via_web_defaults(
    tiktoklive: ModuleType,
    sign_server: str,
    clean_sign_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    web_settings = _module("TikTokLive.client.web.web_settings")
    monkeypatch.setattr(web_settings.WebDefaults, "tiktok_sign_url", sign_server)
    http = _module("TikTokLive.client.web.web_base").TikTokHTTPClient()
    assert http.signer.sign_api_key is None
    try:
        request = await http.build_request(
            url=f"{web_settings.WebDefaults.tiktok_webcast_url}/room/info/",
            method="GET",
            extra_params={"room_id": ROOM_ID},
            sign_url=True,
        )
    finally:
        await http.close()

    signed_url = str(request.url)
    params = parse_qs(urlsplit(signed_url).query, keep_blank_values=True)
    assert urlsplit(signed_url).path == "/webcast/room/info/"
    assert params["room_id"] == [ROOM_ID]
    assert_xbogus_verifies(signed_url, request.headers["User-Agent"])
