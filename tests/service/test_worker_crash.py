"""A worker killed mid-burst: its jobs are signed by the other worker within the deadline."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import aiohttp

from signer.browser.procs import children
from tests.service_stack import ServiceStack
from tests.signer.conftest import FETCH_URL
from tests.test_commands import two_workers as two_workers


async def _burst(base: str, count: int) -> list[tuple[int, float]]:
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def one(i: int) -> tuple[int, float]:
            started = time.monotonic()
            url = f"{FETCH_URL}&cursor_id={i}"
            async with session.get(f"{base}/webcast/sign_url", params={"url": url}) as response:
                await response.read()
                return response.status, time.monotonic() - started

        tasks = []
        for i in range(count):
            tasks.append(asyncio.create_task(one(i)))
            await asyncio.sleep(0.005)  # a stream, so the kill lands mid-burst
        return await asyncio.gather(*tasks)


def test_killed_worker_leaves_no_request_hanging(two_workers: ServiceStack) -> None:
    base, workers = two_workers.base, two_workers.workers
    # The worker processes, not multiprocessing's resource tracker.
    victims = [
        pid
        for pid in children(workers.pid)
        if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    assert len(victims) == 2

    async def scenario() -> list[tuple[int, float]]:
        burst = asyncio.create_task(_burst(base, 200))
        await asyncio.sleep(0.3)
        os.kill(victims[0], signal.SIGKILL)
        return await burst

    answers = asyncio.run(scenario())
    statuses = [status for status, _ in answers]
    assert set(statuses) <= {200, 503}, statuses
    # The dead worker's jobs go back to the queue when their leases run out (2 s) and
    # the survivor signs them well within the 5 s deadline.
    assert statuses.count(200) == len(statuses), statuses
    # The default deadline is 5 s: nobody waits much past it.
    assert max(elapsed for _, elapsed in answers) < 7.0
