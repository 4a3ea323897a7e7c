"""A real Redis, a native signer behind the `Sign` callable, the sandbox, and a client."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as redis

from sandbox import Sandbox
from signer import Signer
from tests.redis_server import private_redis
from tiktok import TikTokClient, TikTokSettings


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with private_redis() as url:
        yield url


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def key_prefix() -> str:
    # A prefix of its own: tests never see each other's cached rooms or ttwids.
    return f"test-tiktok-{uuid.uuid4().hex[:8]}:"


@pytest.fixture(scope="session")
async def native_signer() -> AsyncIterator[Signer]:
    async with Signer(engine="native") as signer:
        yield signer


@pytest.fixture
async def tiktok() -> AsyncIterator[Sandbox]:
    async with Sandbox(mode="fetch") as sandbox:
        yield sandbox


def settings_for(sandbox: Sandbox, **overrides: Any) -> TikTokSettings:
    values: dict[str, Any] = {
        "tiktok_web_url": sandbox.web_url,
        "tiktok_webcast_url": sandbox.webcast_url,
        "tiktok_push_url": sandbox.push_url,
        "tiktok_retry_backoff": 0.01,
        "tiktok_connect_timeout": 1.0,
        "tiktok_read_timeout": 2.0,
    }
    values.update(overrides)
    return TikTokSettings(**values)


@pytest.fixture
async def client(
    tiktok: Sandbox, native_signer: Signer, redis_client: redis.Redis, key_prefix: str
) -> AsyncIterator[TikTokClient]:
    async with TikTokClient(
        settings_for(tiktok),
        sign=native_signer.sign,
        redis_client=redis_client,
        key_prefix=key_prefix,
    ) as tiktok_client:
        yield tiktok_client
