"""Crashes, hangs and recycling: the caller sees at most a delay."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from signer import Signer, SignerSettings, SignRequest, SignResult
from signer.browser import BrowserEngine
from signer.engine import EngineOutput
from signer.errors import InvalidSignRequest
from signer.profiles import PROFILES
from signer.urls import PreparedRequest, prepare_request

from .conftest import FETCH_URL, TIKTOK_UA_WINDOWS


@pytest.fixture
async def fragile_signer(require_chromium: None) -> AsyncIterator[Signer]:
    signer = Signer(SignerSettings(engine="browser", contexts=2, browser_call_timeout=1.0))
    await signer.start()
    await _pool(signer).pool.wait_warm()
    yield signer
    await signer.close()


def _pool(signer: Signer) -> BrowserEngine:
    assert isinstance(signer.engine, BrowserEngine)
    return signer.engine


async def test_killed_chromium_is_relaunched_and_signs_within_3s(fragile_signer: Signer) -> None:
    await fragile_signer.sign(SignRequest(FETCH_URL))
    pid = _pool(fragile_signer).pool.browser_pid
    assert pid is not None
    # A stream of requests is running when the browser dies.
    burst = asyncio.gather(
        *(fragile_signer.sign(SignRequest(FETCH_URL)) for _ in range(50)),
        return_exceptions=True,
    )
    await asyncio.sleep(0.01)
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    result = await fragile_signer.sign(SignRequest(FETCH_URL, deadline=time.time() + 3))
    elapsed = time.monotonic() - killed_at
    assert isinstance(result, SignResult)
    assert elapsed < 3.0, f"first signature {elapsed:.2f} s after the kill"
    answers = await burst
    assert all(isinstance(a, SignResult) for a in answers), [
        a for a in answers if not isinstance(a, SignResult)
    ][:3]
    stats = fragile_signer.stats()
    assert stats.browser_restarts >= 1
    new_pid = _pool(fragile_signer).pool.browser_pid
    assert new_pid is not None
    assert new_pid != pid


async def test_crashed_page_is_replaced(fragile_signer: Signer) -> None:
    pool = _pool(fragile_signer).pool
    victim = pool.contexts()[0]
    with contextlib.suppress(Exception):  # the renderer dies before it can answer
        async with asyncio.timeout(2):
            await victim.channel.cdp.send("Page.crash")
    results = await asyncio.gather(
        *(fragile_signer.sign(SignRequest(FETCH_URL)) for _ in range(20))
    )
    assert all(isinstance(r, SignResult) for r in results)
    await pool.wait_warm(2, timeout=5)
    assert pool.contexts_ready == 2
    assert victim not in pool.contexts()


async def test_hung_page_times_out_and_requests_are_retried(fragile_signer: Signer) -> None:
    pool = _pool(fragile_signer).pool
    victim = pool.contexts()[0]
    # Block the page's event loop: its channel can no longer answer.
    await victim.evaluate("setTimeout(() => { while (true) {} }, 0)")
    results = await asyncio.gather(
        *(fragile_signer.sign(SignRequest(FETCH_URL)) for _ in range(20))
    )
    assert all(isinstance(r, SignResult) for r in results)
    assert pool.stats.context_failures >= 1 or victim not in pool.contexts()


async def test_contexts_recycle_after_n_signatures(require_chromium: None) -> None:
    settings = SignerSettings(engine="browser", contexts=1, recycle_after_signatures=5)
    async with Signer(settings) as signer:
        pool = _pool(signer).pool
        first = pool.contexts()[0]
        for _ in range(12):
            await signer.sign(SignRequest(FETCH_URL))
        assert pool.stats.recycles == 2  # after the 5th and the 10th signature
        assert first not in pool.contexts()


async def test_recycled_slots_present_every_profile_in_turn(require_chromium: None) -> None:
    # 2 slots, 5 profiles: each reopen takes the next profile no other slot presents.
    settings = SignerSettings(engine="browser", contexts=2, recycle_after_signatures=1)
    async with Signer(settings) as signer:
        pool = _pool(signer).pool
        seen: set[str] = set()
        for _ in range(12):
            result = await signer.sign(SignRequest(FETCH_URL))
            seen.add(result.profile)
            await pool.wait_warm(timeout=10)
            held = [warm.profile.id for warm in pool.contexts()]
            assert len(held) == len(set(held)), held  # never two slots on one profile
        assert seen == {profile.id for profile in PROFILES}


async def test_contexts_recycle_after_t_seconds(require_chromium: None) -> None:
    settings = SignerSettings(engine="browser", contexts=1, recycle_after_seconds=0.3)
    async with Signer(settings) as signer:
        pool = _pool(signer).pool
        first = pool.contexts()[0]
        await signer.sign(SignRequest(FETCH_URL))
        await asyncio.sleep(0.5)
        await signer.sign(SignRequest(FETCH_URL))
        await signer.sign(SignRequest(FETCH_URL))
        assert pool.stats.recycles >= 1
        assert first not in pool.contexts()


def _unsignable(signer: Signer) -> PreparedRequest:
    """A request the page cannot be handed: a lone surrogate in its User-Agent (`quote`
    raises on it). Built past `prepare_request`, as input the API lets through would be."""
    good = prepare_request(SignRequest(FETCH_URL, deadline=time.time() + 5), signer.settings)
    return replace(good, user_agent=TIKTOK_UA_WINDOWS + "\ud800")


async def test_unsignable_requests_fail_alone_and_loops_go_on(fragile_signer: Signer) -> None:
    pool = _pool(fragile_signer).pool
    # More bad requests than there are loops: before the fix each one ended a loop.
    for _ in range(3):
        good = prepare_request(
            SignRequest(FETCH_URL, deadline=time.time() + 5), fragile_signer.settings
        )
        answers = await pool.sign([_unsignable(fragile_signer) for _ in range(4)] + [good])
        assert all(isinstance(a, InvalidSignRequest) for a in answers[:4]), answers[:4]
        assert isinstance(answers[4], EngineOutput), answers[4]
    assert pool.loops_alive == 2
    assert pool.stats.loop_restarts == 0
    result = await fragile_signer.sign(SignRequest(FETCH_URL, deadline=time.time() + 3))
    assert isinstance(result, SignResult)


async def test_an_ended_loop_is_replaced_and_counted(fragile_signer: Signer) -> None:
    pool = _pool(fragile_signer).pool
    pool._tasks[0].cancel()  # a loop ending for any reason but the pool's close
    await asyncio.sleep(0.1)
    assert pool.loops_alive == 2
    assert pool.stats.loop_restarts == 1
    assert fragile_signer.stats().loop_restarts == 1
    results = await asyncio.gather(
        *(fragile_signer.sign(SignRequest(FETCH_URL)) for _ in range(10))
    )
    assert all(isinstance(r, SignResult) for r in results)
