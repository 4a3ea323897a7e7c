"""Vendor SDK mode, with stand-in scripts of our own that expose TikTok's globals."""

from __future__ import annotations

from pathlib import Path

from signer import Signer, SignerSettings, SignRequest
from signer.xbogus import decode_xbogus

from .conftest import FETCH_URL, TIKTOK_UA_WINDOWS
from .test_signer_native import assert_consistent

FIXTURES = Path(__file__).parent / "fixtures"


async def test_x_bogus_and_signature_come_from_the_vendor_script(require_chromium: None) -> None:
    settings = SignerSettings(
        engine="browser",
        contexts=1,
        vendor_sdk_path=FIXTURES / "fake_webmssdk.js",
        vendor_acrawler_path=FIXTURES / "fake_acrawler.js",
    )
    async with Signer(settings) as signer:
        result = await signer.sign(SignRequest(FETCH_URL))
        own_ua = await signer.sign(SignRequest(FETCH_URL, user_agent=TIKTOK_UA_WINDOWS))
    assert result.engine == "browser-vendor"
    assert decode_xbogus(result.x_bogus).canvas == 0x5EED5EED
    assert result.signature.startswith("_02B4Z6wo00001")
    assert len(result.signature) == len("_02B4Z6wo00001") + 33
    assert_consistent(result)
    # The vendor script signs for the page's own UA only; a caller's UA uses our bundle.
    assert own_ua.engine == "browser"
    assert decode_xbogus(own_ua.x_bogus).canvas != 0x5EED5EED
    assert_consistent(own_ua)


async def test_x_gnarly_carries_the_vendor_tokens_time_and_canvas(require_chromium: None) -> None:
    from signer.xgnarly import decode_xgnarly

    settings = SignerSettings(
        engine="browser", contexts=1, vendor_sdk_path=FIXTURES / "fake_webmssdk.js"
    )
    async with Signer(settings) as signer:
        result = await signer.sign(SignRequest(FETCH_URL))
    gnarly = decode_xgnarly(result.x_gnarly)
    assert gnarly.canvas == decode_xbogus(result.x_bogus).canvas == result.canvas
    assert gnarly.timestamp == decode_xbogus(result.x_bogus).timestamp == result.timestamp
    assert result.signature == ""  # no acrawler.js configured
