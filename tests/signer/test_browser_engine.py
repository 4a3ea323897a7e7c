"""The browser engine in a real Chromium: identity, tokens, parity with the native engine."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signer import Signer, SignRequest, SignResult
from signer.browser import BrowserEngine
from signer.browser.page_contract import PageItem
from signer.native import sign_query
from signer.xgnarly import GnarlyRandomness, decode_xgnarly

from .conftest import FETCH_URL, TIKTOK_UA_WINDOWS
from .test_signer_native import assert_consistent


def _engine(signer: Signer) -> BrowserEngine:
    assert isinstance(signer.engine, BrowserEngine)
    return signer.engine


async def test_browser_sign_is_consistent(browser_signer: Signer) -> None:
    result = await browser_signer.sign(SignRequest(FETCH_URL))
    assert_consistent(result)
    assert result.engine == "browser"
    major = _engine(browser_signer).pool.browser_version.split(".")[0]
    assert f"Chrome/{major}.0.0.0" in result.user_agent


async def test_every_context_presents_its_profile(browser_signer: Signer) -> None:
    pool = _engine(browser_signer).pool
    contexts = pool.contexts()
    assert len(contexts) == 4
    major = pool.browser_version.split(".")[0]
    for warm in contexts:
        live: dict[str, Any] = await warm.evaluate(
            """({
                ua: navigator.userAgent, platform: navigator.platform,
                language: navigator.language, webdriver: navigator.webdriver,
                dpr: devicePixelRatio, width: screen.width, height: screen.height,
                tz: Intl.DateTimeFormat().resolvedOptions().timeZone,
                brands: navigator.userAgentData.brands.map(b => b.brand),
                hintPlatform: navigator.userAgentData.platform,
            })"""
        )
        profile = warm.profile
        nav = warm.navigator
        assert live["webdriver"] is False
        assert "Headless" not in live["ua"]
        assert not any("Headless" in brand for brand in live["brands"])
        assert "Google Chrome" in live["brands"]
        assert live["hintPlatform"] == profile.ua_platform
        assert live["ua"] == nav.user_agent == profile.user_agent(int(major))
        assert live["platform"] == nav.platform == profile.platform
        assert live["language"] == nav.language == profile.language
        assert live["dpr"] == nav.device_scale_factor == profile.device_scale_factor
        assert (live["width"], live["height"]) == (nav.screen_width, nav.screen_height)
        assert live["tz"] == nav.timezone == profile.timezone
        # The canvas is drawn from the real canvas; the same profile draws the same value.
        variant = json.dumps(profile.canvas_variant.to_js())
        again = await warm.evaluate(f"globalThis.__ttsigner.canvasFingerprint({variant})")
        assert again == warm.canvas
        assert warm.canvas != 0


async def test_results_report_the_signing_contexts_navigator(browser_signer: Signer) -> None:
    pool = _engine(browser_signer).pool
    by_profile = {warm.profile.id: warm for warm in pool.contexts()}
    results = await browser_signer.sign_many([SignRequest(FETCH_URL) for _ in range(64)])
    seen = set()
    for result in results:
        assert isinstance(result, SignResult)
        warm = by_profile[result.profile]
        assert result.navigator == warm.navigator
        assert result.canvas == warm.canvas
        assert f"screen_width={warm.navigator.screen_width}" in result.signed_url
        seen.add(result.profile)
        assert_consistent(result)
    assert len(seen) >= 2  # a burst is spread over several contexts


async def test_caller_user_agent_in_browser(browser_signer: Signer) -> None:
    result = await browser_signer.sign(SignRequest(FETCH_URL, user_agent=TIKTOK_UA_WINDOWS))
    assert result.user_agent == TIKTOK_UA_WINDOWS
    assert result.navigator.platform == "Win32"
    assert "os=windows" in result.signed_url
    assert_consistent(result)


async def test_concurrent_requests_are_batched(browser_signer: Signer) -> None:
    pool = _engine(browser_signer).pool
    before = pool.stats.batches
    results = await asyncio.gather(
        *(browser_signer.sign(SignRequest(FETCH_URL)) for _ in range(200))
    )
    assert len(results) == 200
    batches = pool.stats.batches - before
    assert batches < 100, f"200 concurrent requests took {batches} page calls"


async def test_deadline_in_the_past(browser_signer: Signer) -> None:
    (answer,) = await browser_signer.sign_many([SignRequest(FETCH_URL, deadline=0.0)])
    assert answer.__class__.__name__ == "DeadlineExceeded"


_QUERY = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=300
).map(lambda text: text.replace("&", "%26"))


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    query=_QUERY,
    user_agent=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=200),
    body=st.binary(max_size=300),
    timestamp=st.integers(0, 2**32 - 1),
    canvas=st.integers(0, 2**32 - 1),
    header=st.sampled_from([(65, 14), (1, 12), (0, 0), (3, 4)]),
)
async def test_browser_and_native_tokens_are_identical(
    browser_signer: Signer,
    query: str,
    user_agent: str,
    body: bytes,
    timestamp: int,
    canvas: int,
    header: tuple[int, int],
) -> None:
    """With time, canvas and randomness frozen, the page computes what Python computes."""
    randomness = GnarlyRandomness(
        key=secrets.token_bytes(48),
        counter=secrets.randbits(31),
        random16=secrets.randbits(16),
        random32=secrets.randbits(32),
    )
    verify_fp = "verify_lqbdh4s0_abcdEFGH_ijkl_4mno_8pqr_stuvwxyzABCD"
    warm = _engine(browser_signer).pool.contexts()[0]
    item: PageItem = {
        "query": query,
        "userAgent": user_agent,
        "msToken": "tok_1-2",
        "verifyFp": verify_fp,
        "includeVerifyFp": True,
        "timestamp": timestamp,
        "canvas": canvas,
        "header": list(header),
        "gnarly": {
            "key": list(randomness.key),
            "counter": randomness.counter,
            "random16": randomness.random16,
            "random32": randomness.random32,
        },
    }
    if body:
        item["bodyBase64"] = base64.b64encode(body).decode()
    # Straight to the page, so the requests-seen counter is the page's own; read it back.
    (page_result,) = await warm.sign([item], timeout=5)
    assert "error" not in page_result, page_result
    seen = decode_xgnarly(page_result["xGnarly"]).fields[12]
    assert isinstance(seen, int)
    expected = sign_query(
        query,
        user_agent,
        body=body,
        verify_fp=verify_fp,
        ms_token="tok_1-2",
        timestamp=timestamp,
        canvas=canvas,
        header=header,
        randomness=randomness,
        requests_seen=seen,
    )
    assert page_result["query"] == expected.query
    assert page_result["xBogus"] == expected.x_bogus
    assert page_result["xGnarly"] == expected.x_gnarly
    assert page_result["xttParams"] == expected.x_tt_params


@pytest.mark.parametrize("bad", ["", "ftp://tiktok.com/", "https://evil.com/", "x" * 20_000])
async def test_bad_input_never_reaches_the_browser(browser_signer: Signer, bad: str) -> None:
    pool = _engine(browser_signer).pool
    before = pool.stats.signatures
    (answer,) = await browser_signer.sign_many([SignRequest(bad)])
    assert answer.__class__.__name__ == "InvalidSignRequest"
    assert pool.stats.signatures == before
