"""The sandbox's HTTP routes answer as the spec says TikTok does (sections 5, 7 and 8.2)."""

from __future__ import annotations

import json
import re

import aiohttp
import pytest
from yarl import URL

from sandbox import DEFAULT_ROOM_ID, OFFLINE_UNIQUE_ID, Sandbox
from sandbox.cookies import parse_cookie_header
from signer import Signer
from tiktok.proto import ProtoMessageFetchResult

from .conftest import sandbox_url, sign_fetch

_SIGI = re.compile(r'<script id="SIGI_STATE" type="application/json">(.*?)</script>')


async def _sigi(http: aiohttp.ClientSession, url: str) -> dict[str, object]:
    async with http.get(url) as response:
        assert response.status == 200
        text = await response.text()
    match = _SIGI.search(text)
    assert match is not None
    data = json.loads(match.group(1))
    assert isinstance(data, dict)
    return data


async def test_live_page_of_a_live_user(tiktok: Sandbox, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{tiktok.web_url}/@sandbox/live") as response:
        text = await response.text()
        assert response.status == 200
        assert "ttwid" in response.cookies
    # Compact JSON: TTLC 1.x finds the id with a regex that allows no space.
    assert f'"roomId":"{DEFAULT_ROOM_ID}"' in text
    data = await _sigi(http, f"{tiktok.web_url}/@Sandbox/live?lang=en")
    user = data["LiveRoom"]["liveRoomUserInfo"]["user"]  # type: ignore[index]
    assert user["roomId"] == DEFAULT_ROOM_ID
    assert user["status"] == 2
    assert data["LiveRoom"]["liveRoomUserInfo"]["liveRoom"]["status"] == 2  # type: ignore[index]


async def test_live_page_offline_and_unknown(tiktok: Sandbox, http: aiohttp.ClientSession) -> None:
    offline = await _sigi(http, f"{tiktok.web_url}/@{OFFLINE_UNIQUE_ID}/live")
    assert offline["LiveRoom"]["liveRoomUserInfo"]["user"]["status"] == 4  # type: ignore[index]
    unknown = await _sigi(http, f"{tiktok.web_url}/@nobody_here/live")
    assert "LiveRoom" not in unknown
    assert tiktok.requests.outcomes("live_page") == ["offline", "no_user"]


async def test_api_live_user_room(tiktok: Sandbox, http: aiohttp.ClientSession) -> None:
    url = f"{tiktok.web_url}/api-live/user/room/"
    async with http.get(
        url, params={"uniqueId": "sandbox", "sourceType": "54", "aid": "1988"}
    ) as r:
        live = await r.json()
    assert live["statusCode"] == 0
    assert live["message"] == ""
    assert live["data"]["user"]["roomId"] == DEFAULT_ROOM_ID
    assert live["data"]["liveRoom"]["status"] == 2
    async with http.get(url.rstrip("/"), params={"uniqueId": "ghost"}) as r:
        missing = await r.json()
    assert missing["message"] == "user_not_found"
    assert missing["statusCode"] != 0
    assert tiktok.requests.count("api_live_room") == 2


async def test_check_alive_and_room_info(tiktok: Sandbox, http: aiohttp.ClientSession) -> None:
    base = f"{tiktok.webcast_url}/webcast/room"
    async with http.get(f"{base}/check_alive/", params={"room_ids": DEFAULT_ROOM_ID}) as r:
        alive = await r.json()
    assert alive["status_code"] == 0
    assert alive["data"][0]["alive"] is True
    assert alive["data"][0]["room_id_str"] == DEFAULT_ROOM_ID
    async with http.get(f"{base}/info/", params={"room_id": DEFAULT_ROOM_ID}) as r:
        info = await r.json()
    assert info["data"]["status"] == 2
    assert len(info["data"]) > 1
    tiktok.set_live("sandbox", False)
    async with http.get(f"{base}/check_alive/", params={"room_ids": DEFAULT_ROOM_ID}) as r:
        assert (await r.json())["data"][0]["alive"] is False
    async with http.get(f"{base}/info/", params={"room_id": DEFAULT_ROOM_ID}) as r:
        assert (await r.json())["data"]["status"] == 4


async def test_ttwid_on_first_visit_only(tiktok: Sandbox, http: aiohttp.ClientSession) -> None:
    async with http.head(f"{tiktok.web_url}/") as response:
        assert response.status == 200
        ttwid = response.cookies["ttwid"].value
    parts = ttwid.split("%7C")
    assert parts[0] == "1"
    assert len(parts) == 4
    assert tiktok.state.cookies.ttwid_valid(ttwid)
    # The jar now sends it; a second visit keeps it.
    async with http.get(f"{tiktok.web_url}/live") as response:
        assert "ttwid" not in response.cookies
        assert "tt_csrf_token" in response.cookies
    tiktok.revoke_ttwids()
    async with http.get(f"{tiktok.web_url}/live") as response:
        assert "ttwid" in response.cookies


async def test_im_fetch_signed_gets_the_result(
    tiktok: Sandbox, http: aiohttp.ClientSession, native_signer: Signer
) -> None:
    signed = await sign_fetch(native_signer)
    headers = {"User-Agent": signed.user_agent, "Referer": "https://www.tiktok.com/"}
    async with http.get(URL(sandbox_url(tiktok, signed), encoded=True), headers=headers) as r:
        assert r.status == 200
        assert r.content_type == "application/protobuf"
        body = await r.read()
        assert "msToken" in r.cookies
        assert "ttwid" in r.cookies
    result = ProtoMessageFetchResult()
    result.ParseFromString(body)
    assert result.cursor
    assert result.internal_ext
    assert result.is_first
    assert result.push_server == tiktok.push_url
    assert "?" not in result.push_server
    assert set(result.route_params) == {"wrss", "imprp"}
    assert tiktok.requests.outcomes("im_fetch") == ["ok"]


@pytest.mark.parametrize("damage", ["missing", "tampered_query", "other_ua", "bad_token"])
async def test_im_fetch_refuses_bad_signatures_with_an_empty_200(
    tiktok: Sandbox, http: aiohttp.ClientSession, native_signer: Signer, damage: str
) -> None:
    signed = await sign_fetch(native_signer)
    url = sandbox_url(tiktok, signed)
    user_agent = signed.user_agent
    if damage == "missing":
        url = url[: url.index("&X-Bogus=")]
    elif damage == "tampered_query":
        url = url.replace(f"room_id={DEFAULT_ROOM_ID}", "room_id=7390000000000000009")
    elif damage == "other_ua":
        user_agent = user_agent.replace("Chrome/", "Chrome/1")
    else:
        url = url.replace("X-Bogus=DFSz", "X-Bogus=DFSa")
    async with http.get(URL(url, encoded=True), headers={"User-Agent": user_agent}) as r:
        assert r.status == 200
        assert await r.read() == b""
    expected = "unsigned" if damage == "missing" else "bad_signature"
    assert tiktok.requests.outcomes("im_fetch") == [expected]


async def test_im_fetch_accepts_percent_encoded_tokens(
    tiktok: Sandbox, http: aiohttp.ClientSession, native_signer: Signer
) -> None:
    # Some HTTP stacks encode `/` and `=` inside the token values; the tokens are the same.
    signed = await sign_fetch(native_signer)
    url = sandbox_url(tiktok, signed)
    head, _, tokens = url.partition("&X-Bogus=")
    url = f"{head}&X-Bogus={tokens.replace('/', '%2F').replace('==', '%3D%3D')}"
    async with http.get(URL(url, encoded=True), headers={"User-Agent": signed.user_agent}) as r:
        assert len(await r.read()) > 0


async def test_im_fetch_socket_mode_is_always_empty(
    tiktok: Sandbox, http: aiohttp.ClientSession, native_signer: Signer
) -> None:
    tiktok.mode = "socket"
    signed = await sign_fetch(native_signer)
    url = URL(sandbox_url(tiktok, signed), encoded=True)
    async with http.get(url, headers={"User-Agent": signed.user_agent}) as r:
        assert r.status == 200
        assert await r.read() == b""
    assert tiktok.requests.outcomes("im_fetch") == ["socket_mode"]


async def test_im_fetch_refuses_a_foreign_ttwid(
    tiktok: Sandbox, http: aiohttp.ClientSession, native_signer: Signer
) -> None:
    signed = await sign_fetch(native_signer)
    headers = {"User-Agent": signed.user_agent, "Cookie": "ttwid=1%7Cmadeup%7C1700000000%7Cabc"}
    async with http.get(URL(sandbox_url(tiktok, signed), encoded=True), headers=headers) as r:
        assert await r.read() == b""
        fresh = r.cookies["ttwid"].value
    assert tiktok.state.cookies.ttwid_valid(parse_cookie_header(f"ttwid={fresh}")["ttwid"])
    assert tiktok.requests.outcomes("im_fetch") == ["bad_ttwid"]


async def test_fault_switches_and_unknown_paths(
    tiktok: Sandbox, http: aiohttp.ClientSession
) -> None:
    tiktok.fail(503)
    async with http.get(f"{tiktok.web_url}/@sandbox/live") as r:
        assert r.status == 503
    tiktok.heal()
    async with http.get(f"{tiktok.web_url}/@sandbox/live") as r:
        assert r.status == 200
    async with http.get(f"{tiktok.web_url}/no/such/path") as r:
        assert r.status == 404
    assert [(rec.kind, rec.status) for rec in tiktok.requests.records] == [
        ("live_page", 503),
        ("live_page", 200),
        ("unknown", 404),
    ]


async def test_restart_on_the_same_port(http: aiohttp.ClientSession) -> None:
    sandbox = Sandbox()
    await sandbox.start()
    port = sandbox.port
    await sandbox.close()
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.get(f"{sandbox.web_url}/"):
            pass
    await sandbox.start()
    try:
        assert sandbox.port == port
        async with http.get(f"{sandbox.web_url}/") as r:
            assert r.status == 200
    finally:
        await sandbox.close()
