"""The hostile-input suite: a real stack (Chromium, two workers, Redis, Postgres) that
each test attacks with one kind of bad request, then checks it still serves everyone.

`assert_still_serving` is the suite's common ending: after the hostile input, 200 normal
requests (16 at a time) must all be signed and `/health` must say healthy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiohttp
import pytest

from tests.service_stack import ServiceStack, get_json, service_stack
from tests.signer.conftest import FETCH_URL

__all__ = ["NORMAL_REQUESTS", "assert_still_serving", "sign_normally"]

NORMAL_REQUESTS = 200
CONCURRENCY = 16


@pytest.fixture(scope="module")
def hostile_stack(require_chromium: None) -> Iterator[ServiceStack]:
    """One browser-engine stack with two worker processes for a module's attacks."""
    with service_stack(processes=2, engine="browser") as stack:
        yield stack


async def sign_normally(base: str, count: int = NORMAL_REQUESTS) -> list[int]:
    """`count` ordinary signing requests, `CONCURRENCY` at a time; their statuses."""
    timeout = aiohttp.ClientTimeout(total=30)
    gate = asyncio.Semaphore(CONCURRENCY)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def one(i: int) -> int:
            async with gate:
                url = f"{FETCH_URL}&cursor_id={i}"
                async with session.post(f"{base}/api/signature", json={"url": url}) as answer:
                    await answer.read()
                    return answer.status

        return list(await asyncio.gather(*(one(i) for i in range(count))))


def assert_still_serving(base: str) -> None:
    """Every one of `NORMAL_REQUESTS` ordinary requests is signed, and `/health` is healthy."""
    statuses = asyncio.run(sign_normally(base))
    assert statuses.count(200) == NORMAL_REQUESTS, sorted(set(statuses))
    status, health = get_json(f"{base}/health")
    assert (status, health.get("status")) == (200, "healthy"), health
