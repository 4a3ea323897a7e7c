"""The queue on a real Redis: event-driven hand-off, deadlines, back-pressure, errors."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time

import pytest
from arq.jobs import Job
from redis.asyncio import Redis

from signer import DeadlineExceeded, InvalidSignRequest, SignError, SignRequest, SignResult
from tests.signer.conftest import FETCH_URL
from tests.signer.test_signer_native import assert_consistent
from workers import QueueFull, QueueSettings, SignQueue
from workers.keys import JOB_FUNCTION
from workers.scripts import QueueScripts

from .conftest import running_worker


async def test_a_request_is_signed_by_a_worker(
    queue: SignQueue, queue_settings: QueueSettings
) -> None:
    async with running_worker(queue_settings):
        result = await queue.sign(SignRequest(FETCH_URL))
    assert isinstance(result, SignResult)
    assert result.engine == "native"
    assert_consistent(result)


async def test_hand_off_is_event_driven_not_polled(
    queue: SignQueue, queue_settings: QueueSettings
) -> None:
    async with running_worker(queue_settings):
        await queue.sign(SignRequest(FETCH_URL))
        samples = []
        for _ in range(100):
            start = time.perf_counter()
            await queue.sign(SignRequest(FETCH_URL))
            samples.append(time.perf_counter() - start)
    # arq's own polling gives ~500 ms; anything near that means a wake-up was missed.
    assert statistics.median(samples) < 0.1, statistics.median(samples)


async def test_concurrent_requests_all_answered_in_batches(
    queue: SignQueue, queue_settings: QueueSettings
) -> None:
    async with running_worker(queue_settings):
        results = await asyncio.gather(*(queue.sign(SignRequest(FETCH_URL)) for _ in range(300)))
    assert len({r.verify_fp for r in results}) == 300
    # Requests submitted together travel together: 300 requests, 128 at most per job.
    assert queue.requests_submitted == 300
    assert queue.jobs_submitted == 3


async def test_an_idle_worker_and_client_barely_touch_redis(
    queue: SignQueue, queue_settings: QueueSettings
) -> None:
    redis = Redis.from_url(queue_settings.redis_url)
    async with running_worker(queue_settings):
        await queue.sign(SignRequest(FETCH_URL))
        await asyncio.sleep(0.5)
        before = int((await redis.info("stats"))["total_commands_processed"])
        await asyncio.sleep(3)
        after = int((await redis.info("stats"))["total_commands_processed"])
    await redis.aclose()
    per_second = (after - before - 1) / 3  # less our own INFO
    assert per_second <= 20, f"{per_second:.1f} Redis commands/s while idle"


async def test_invalid_request_error_crosses_the_queue(
    queue: SignQueue, queue_settings: QueueSettings
) -> None:
    async with running_worker(queue_settings):
        with pytest.raises(InvalidSignRequest) as caught:
            await queue.sign(SignRequest("https://example.com/x"))
    assert caught.value.field == "url"
    assert "not allowed" in caught.value.reason


async def test_no_worker_means_deadline_exceeded_on_time(queue: SignQueue) -> None:
    start = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        await queue.sign(SignRequest(FETCH_URL, deadline=time.time() + 0.3))
    assert time.monotonic() - start < 1.0


async def test_expired_job_is_dropped_unsigned(
    queue: SignQueue, queue_settings: QueueSettings
) -> None:
    waiting = asyncio.create_task(queue.sign(SignRequest(FETCH_URL, deadline=time.time() + 0.2)))
    await asyncio.sleep(0.4)  # the deadline passes before any worker exists
    async with running_worker(queue_settings):
        with pytest.raises(DeadlineExceeded):
            await waiting
        fresh = await queue.sign(SignRequest(FETCH_URL))
    assert isinstance(fresh, SignResult)


async def test_full_queue_answers_at_once(queue_settings: QueueSettings) -> None:
    settings = queue_settings.model_copy(update={"max_depth": 2})
    client = SignQueue(settings)
    await client.start()
    try:
        waiting = []
        for _ in range(2):  # separate turns of the loop: two jobs, not one batch
            request = SignRequest(FETCH_URL, deadline=time.time() + 2)
            waiting.append(asyncio.create_task(client.sign(request)))
            await asyncio.sleep(0.1)
        assert await client.depth() == 2
        start = time.monotonic()
        with pytest.raises(QueueFull):
            await client.sign(SignRequest(FETCH_URL))
        assert time.monotonic() - start < 0.2
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
    finally:
        await client.close()


async def test_a_job_held_by_a_dead_worker_is_signed_by_another(
    queue: SignQueue, queue_settings: QueueSettings
) -> None:
    settings = queue_settings.model_copy(update={"lease": 0.3})
    waiting = asyncio.create_task(queue.sign(SignRequest(FETCH_URL, deadline=time.time() + 4)))
    await asyncio.sleep(0.1)
    # A worker takes the job and dies: it never renews the lease nor answers.
    scripts = QueueScripts(queue.redis, settings.prefix)
    taken = await scripts.take(
        now_ms=int(time.time() * 1000), limit=10, lease_ms=300, tokens_consumed=0
    )
    assert len(taken) == 1
    assert taken[0].tries == 1
    start = time.monotonic()
    async with running_worker(settings):
        result = await waiting
        took = time.monotonic() - start
    assert isinstance(result, SignResult)
    # The lease ran out (0.3 s), then the next look at the queue (safety poll 1 s) took it.
    assert took < settings.lease + settings.safety_poll + 0.5


async def test_a_job_that_killed_two_workers_is_answered_with_an_error(
    queue: SignQueue, queue_settings: QueueSettings
) -> None:
    waiting = asyncio.create_task(queue.sign(SignRequest(FETCH_URL, deadline=time.time() + 4)))
    await asyncio.sleep(0.1)
    scripts = QueueScripts(queue.redis, queue_settings.prefix)
    for attempt in (1, 2):
        now_ms = int(time.time() * 1000)
        taken = await scripts.take(now_ms=now_ms, limit=10, lease_ms=50, tokens_consumed=0)
        assert [job.tries for job in taken] == [attempt]
        await asyncio.sleep(0.1)
    async with running_worker(queue_settings):
        with pytest.raises(SignError, match="taken 2 times"):
            await waiting


async def test_jobs_are_stored_in_arq_format(queue: SignQueue) -> None:
    waiting = asyncio.create_task(queue.sign(SignRequest(FETCH_URL, deadline=time.time() + 1)))
    await asyncio.sleep(0.1)
    [job_id] = await queue.redis.zrange(queue.scripts.queue, 0, -1)
    info = await Job(job_id.decode(), queue.redis).info()  # arq's own reader
    assert info is not None
    assert info.function == JOB_FUNCTION
    payloads, reply_to = info.args
    [payload] = payloads.values()
    assert payload["url"] == FETCH_URL
    assert reply_to.startswith(queue.settings.prefix)
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting


async def _sign_soon(queue: SignQueue, attempts: int = 3) -> SignResult:
    """Sign, allowing the first tries to fail while connections are re-made."""
    for _ in range(attempts - 1):
        try:
            return await queue.sign(SignRequest(FETCH_URL, deadline=time.time() + 3))
        except SignError:
            await asyncio.sleep(0.3)
    return await queue.sign(SignRequest(FETCH_URL, deadline=time.time() + 3))


async def test_answers_arrive_again_after_the_results_channel_is_cut(
    queue: SignQueue, queue_settings: QueueSettings
) -> None:
    admin = Redis.from_url(queue_settings.redis_url)
    async with running_worker(queue_settings):
        await queue.sign(SignRequest(FETCH_URL))
        assert await admin.client_kill_filter(_type="pubsub") >= 1
        await asyncio.sleep(0.5)
        assert queue.listening
        assert isinstance(await _sign_soon(queue), SignResult)
    await admin.aclose()


async def test_a_worker_carries_on_after_its_connections_are_cut(
    queue: SignQueue, queue_settings: QueueSettings
) -> None:
    admin = Redis.from_url(queue_settings.redis_url)
    async with running_worker(queue_settings):
        await queue.sign(SignRequest(FETCH_URL))
        # Every connection but this one: the worker's BLPOP, the queue's, the listener's.
        assert await admin.client_kill_filter(_type="normal", skipme=True) >= 2
        await admin.client_kill_filter(_type="pubsub")
        await asyncio.sleep(1.5)
        assert isinstance(await _sign_soon(queue), SignResult)
    await admin.aclose()
