"""A running sandbox per test, a client session, and a native signer for im/fetch URLs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlencode

import aiohttp
import pytest

from sandbox import DEFAULT_ROOM_ID, Sandbox
from signer import Signer, SignRequest, SignResult

# The form a client signs: the signer only signs TikTok hosts, and the tokens cover the query
# alone, so the query signed for webcast.tiktok.com is sent to the sandbox unchanged.
TIKTOK_FETCH = "https://webcast.tiktok.com/webcast/im/fetch/"
FETCH_PARAMS = {
    "aid": "1988",
    "app_name": "tiktok_web",
    "device_platform": "web",
    "cursor": "",
    "internal_ext": "",
    "room_id": DEFAULT_ROOM_ID,
    "resp_content_type": "protobuf",
    "live_id": "12",
    "did_rule": "3",
    "fetch_rule": "1",
}


@pytest.fixture
async def tiktok() -> AsyncIterator[Sandbox]:
    async with Sandbox(mode="fetch") as sandbox:
        yield sandbox


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # A jar that keeps cookies of an IP-address host (the sandbox), as a browser would.
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=timeout
    ) as session:
        yield session


@pytest.fixture(scope="session")
async def native_signer() -> AsyncIterator[Signer]:
    async with Signer(engine="native") as signer:
        yield signer


async def sign_fetch(signer: Signer, **params: str) -> SignResult:
    query = urlencode({**FETCH_PARAMS, **params})
    return await signer.sign(SignRequest(f"{TIKTOK_FETCH}?{query}"))


def sandbox_url(tiktok: Sandbox, signed: SignResult) -> str:
    """The signed URL with the sandbox in place of webcast.tiktok.com, query untouched."""
    query = signed.signed_url.partition("?")[2]
    return f"{tiktok.webcast_url}/webcast/im/fetch/?{query}"
