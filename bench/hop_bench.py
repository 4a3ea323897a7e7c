"""The floor under the full path: what each hop a request makes costs on this machine.

    python bench/hop_bench.py [--samples 2000]

A signed request crosses: HTTP client -> API, API -> Redis (enqueue), Redis -> worker
(wake-up), worker -> Redis (take), worker -> Chromium (sign), worker -> Redis (publish),
Redis -> API (pub/sub), API -> client. This measures the bare hops with nothing else
in them, in one process on a private Redis: an HTTP exchange with aiohttp on loopback, a
Redis PING, an LPUSH waking a BLPOP on a second connection, and a PUBLISH reaching a
subscriber. Prints medians and p99s and writes JSON to bench/results/hops-<ts>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from load import percentiles  # noqa: E402
from report import machine, write_results  # noqa: E402

from service.stack.services import free_port  # noqa: E402
from tests.redis_server import private_redis  # noqa: E402


async def _sample(samples: int, once: Callable[[], Awaitable[float]]) -> dict[str, float]:
    for _ in range(samples // 10):  # warm-up
        await once()
    return percentiles([await once() for _ in range(samples)])


async def _http(samples: int) -> dict[str, float]:
    async def hello(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as session:

            async def once() -> float:
                started = time.perf_counter()
                async with session.get(f"http://127.0.0.1:{port}/") as response:
                    await response.read()
                return time.perf_counter() - started

            return await _sample(samples, once)
    finally:
        await runner.cleanup()


async def _redis(url: str, samples: int) -> dict[str, dict[str, float]]:
    sender, receiver = Redis.from_url(url), Redis.from_url(url)
    # As the API hears answers: a task iterating `listen()` (see workers.client).
    pubsub = receiver.pubsub()
    await pubsub.subscribe("hops:channel")
    heard: asyncio.Queue[float] = asyncio.Queue()

    async def listen() -> None:
        async for message in pubsub.listen():
            if message.get("type") == "message":
                heard.put_nowait(time.perf_counter())

    listener = asyncio.create_task(listen())
    await asyncio.sleep(0.1)

    async def ping() -> float:
        started = time.perf_counter()
        await sender.ping()
        return time.perf_counter() - started

    async def wake() -> float:
        waiting = asyncio.create_task(sender.blpop(["hops:wake"], timeout=5))
        await asyncio.sleep(0.001)  # let the BLPOP reach Redis first
        started = time.perf_counter()
        await sender.lpush("hops:wake", "1")
        await waiting
        return time.perf_counter() - started

    async def publish() -> float:
        started = time.perf_counter()
        await sender.publish("hops:channel", "x")
        return await heard.get() - started

    try:
        return {
            "redis_ping": await _sample(samples, ping),
            "lpush_wakes_blpop": await _sample(samples, wake),
            "publish_reaches_subscriber": await _sample(samples, publish),
        }
    finally:
        listener.cancel()
        await sender.aclose()
        await receiver.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    started = datetime.now(UTC)
    report: dict[str, Any] = {"started": started.isoformat(), "machine": machine()}
    with private_redis() as url:
        hops = {"http_exchange": asyncio.run(_http(args.samples))}
        hops |= asyncio.run(_redis(url, args.samples))
    report["hops"] = hops
    for name, figures in hops.items():
        print(f"{name:28} p50 {figures['p50_ms']:.3f} ms  p99 {figures['p99_ms']:.3f} ms")
    print(f"written to {write_results('hops', report, started.timestamp())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
