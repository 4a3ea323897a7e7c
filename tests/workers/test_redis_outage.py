"""The producer while Redis is away (issue 15, item 2): its listener backs off instead of
spinning, says it is not listening, and hears answers again once Redis is back."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from signer import SignRequest
from tests.restartable_redis import RestartableRedis, restartable_redis
from tests.signer.conftest import FETCH_URL
from workers import QueueSettings, QueueUnavailable, SignOutcome, SignQueue

from .conftest import running_worker


@pytest.fixture
def redis_server() -> Iterator[RestartableRedis]:
    with restartable_redis() as server:
        yield server


async def _until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.05)


async def test_listener_backs_off_and_resubscribes(redis_server: RestartableRedis) -> None:
    settings = QueueSettings(
        REDIS_URL=f"redis://127.0.0.1:{redis_server.port}/0", prefix=uuid.uuid4().hex[:8]
    )
    queue = SignQueue(settings)
    await queue.start()
    try:
        async with running_worker(settings):
            assert (await queue.submit(SignRequest(FETCH_URL))).worker_id is not None
            redis_server.kill()
            await _until(lambda: not queue.listening, timeout=3)
            # The event loop is the listener's only while it awaits: 20 ticks of 10 ms
            # take about 0.2 s, not the seconds a spinning loop would hold them.
            started = time.monotonic()
            for _ in range(20):
                await asyncio.sleep(0.01)
            assert time.monotonic() - started < 1.5
            outcome: SignOutcome = await queue.submit(SignRequest(FETCH_URL))
            assert isinstance(outcome.result, QueueUnavailable)
            assert f"127.0.0.1:{redis_server.port}" not in outcome.result.message
            redis_server.revive()
            await _until(lambda: queue.listening, timeout=3)
            deadline = time.monotonic() + 3
            while True:  # the worker reconnects by itself, within its backoff
                outcome = await queue.submit(SignRequest(FETCH_URL, deadline=time.time() + 1))
                if outcome.worker_id is not None or time.monotonic() > deadline:
                    break
            assert outcome.worker_id is not None, outcome
    finally:
        await queue.close()
