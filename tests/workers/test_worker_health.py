"""A worker says it is alive only while its signer can sign (issue 15, item 1)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from signer import SignerSettings
from signer.browser import BrowserEngine
from workers import QueueSettings, SignQueue
from workers.worker import build_worker


async def _wait_for_workers(queue: SignQueue, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while await queue.workers_alive() != count:
        assert time.monotonic() < deadline, f"never {count} workers alive"
        await asyncio.sleep(0.1)


async def test_a_worker_whose_signer_has_no_loop_leaves_the_registry(
    require_chromium: None, queue: SignQueue, queue_settings: QueueSettings
) -> None:
    worker = build_worker(queue_settings, SignerSettings(engine="browser", contexts=1))
    running = asyncio.create_task(worker.run())
    try:
        await _wait_for_workers(queue, 1, timeout=30)
        engine = worker.signer.engine
        assert isinstance(engine, BrowserEngine)
        assert worker.ready
        # Every context loop gone: nothing would sign the jobs this worker took.
        await engine.pool.close()
        assert not worker.ready
        await _wait_for_workers(queue, 0, timeout=5)  # within one upkeep round, not 9 s
        state = await queue.state()
        assert state.workers == 0
    finally:
        await worker.drain(timeout=5)
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await worker.close()
