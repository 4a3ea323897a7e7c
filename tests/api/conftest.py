"""A native-engine `Signer` shared by the API tests: real `SignResult`s, no Chromium."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from signer import Signer, SignRequest, SignResult

FETCH_URL = (
    "https://webcast.tiktok.com/webcast/im/fetch/?aid=1988&app_language=en-US"
    "&app_name=tiktok_web&browser_language=en-US&browser_name=Mozilla&browser_online=true"
    "&browser_platform=Win32&cursor=&internal_ext=&room_id=7312345678901234567"
)
CLIENT_UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)


@pytest.fixture(scope="session")
async def native_signer() -> AsyncIterator[Signer]:
    async with Signer(engine="native") as signer:
        yield signer


@pytest.fixture
async def signed(native_signer: Signer) -> SignResult:
    """A real result carrying an msToken, as most clients' requests do."""
    return await native_signer.sign(SignRequest(FETCH_URL, ms_token="tok_123-abc="))
