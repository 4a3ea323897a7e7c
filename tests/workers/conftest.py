"""A private Redis, and a queue plus an in-process worker on a fresh key prefix per test."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from signer import SignerSettings
from signer.config import EngineName
from tests.redis_server import private_redis
from workers import QueueSettings, SignQueue
from workers.worker import build_worker


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with private_redis() as url:
        yield url


@pytest.fixture
def queue_settings(redis_url: str) -> QueueSettings:
    # A prefix of its own: tests never see each other's jobs, even on a shared Redis.
    return QueueSettings(REDIS_URL=redis_url, prefix=f"test-{uuid.uuid4().hex[:8]}")


@pytest.fixture
async def queue(queue_settings: QueueSettings) -> AsyncIterator[SignQueue]:
    client = SignQueue(queue_settings)
    await client.start()
    yield client
    await client.close()


@contextlib.asynccontextmanager
async def running_worker(
    settings: QueueSettings, engine: EngineName = "native"
) -> AsyncIterator[None]:
    worker = build_worker(settings, SignerSettings(engine=engine))
    task = asyncio.create_task(worker.run())
    try:
        yield
    finally:
        await worker.drain(timeout=5)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await worker.close()
