"""A shared browser-engine `Signer` for the tests that do not break it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from signer import Signer, SignerSettings
from signer.browser import BrowserEngine

TIKTOK_UA_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
FETCH_URL = (
    "https://webcast.tiktok.com/webcast/im/fetch/?aid=1988&app_name=tiktok_web"
    "&browser_name=Mozilla&browser_platform=Linux%20x86_64&browser_version=5.0"
    "&browser_language=fr&os=linux&screen_width=800&screen_height=600&room_id=7312345678901234567"
)


@pytest.fixture(scope="session")
async def browser_signer(require_chromium: None) -> AsyncIterator[Signer]:
    signer = Signer(SignerSettings(engine="browser", contexts=4))
    await signer.start()
    assert isinstance(signer.engine, BrowserEngine)
    await signer.engine.pool.wait_warm()
    yield signer
    await signer.close()
