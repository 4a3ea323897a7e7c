"""The connect path's cost: through us to an offline TikTok on loopback, 1 API and 1 worker.

    python bench/connect_bench.py [--samples 500] [--rate 200] [--duration 60]

Runs `python -m sandbox` (fetch mode, no random events) and the service as users run it
(`signer api` and `signer worker --processes 1`, private Redis and Postgres, limits off),
the API pointed at the sandbox. Measures, one request at a time:
- a bare signature (`GET /webcast/sign_url` of an im/fetch URL) and a connect
  (`GET /webcast/fetch?room_id=`, fetch strategy: signature, then TikTok's im/fetch): the
  difference of their p50s is what a connect adds over signing;
- a room look-up served from the process's cache (`RoomLookup.lookup`, in this process,
  against its own client: no HTTP);
then connects at `--rate` a second for `--duration` seconds (open loop: each request starts
on schedule whether or not the ones before have answered), counting every non-200.
Prints the figures and writes JSON to bench/results/connect-<ts>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as redis

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from load import percentiles  # noqa: E402
from report import machine, write_results  # noqa: E402

from sandbox import DEFAULT_ROOM_ID, DEFAULT_UNIQUE_ID  # noqa: E402
from service.stack.services import free_port  # noqa: E402
from tests.redis_server import private_redis  # noqa: E402
from tests.service_stack import service_stack  # noqa: E402
from tiktok import TikTokClient, TikTokSettings  # noqa: E402

FETCH_URL = (
    "https://webcast.tiktok.com/webcast/im/fetch/?aid=1988&app_name=tiktok_web"
    f"&device_platform=web&cursor=&internal_ext=&room_id={DEFAULT_ROOM_ID}"
)


async def _one_at_a_time(
    http: aiohttp.ClientSession, url: str, params: dict[str, str], samples: int
) -> dict[str, float]:
    timings: list[float] = []
    for index in range(samples + samples // 10):
        started = time.perf_counter()
        async with http.get(url, params={**params, "n": str(index)}) as response:
            await response.read()
            if response.status != 200:
                raise SystemExit(f"{url} answered {response.status}")
        if index >= samples // 10:  # the first tenth warms up
            timings.append(time.perf_counter() - started)
    return percentiles(timings)


async def _sustained(
    http: aiohttp.ClientSession, url: str, rate: float, duration: float
) -> dict[str, Any]:
    statuses: Counter[str] = Counter()
    timings: list[float] = []

    async def one() -> None:
        started = time.perf_counter()
        try:
            async with http.get(url, params={"room_id": DEFAULT_ROOM_ID}) as response:
                await response.read()
                statuses[str(response.status)] += 1
        except (aiohttp.ClientError, TimeoutError) as error:
            statuses[type(error).__name__] += 1
        timings.append(time.perf_counter() - started)

    tasks: list[asyncio.Task[None]] = []
    started = time.perf_counter()
    total = int(rate * duration)
    for index in range(total):
        delay = started + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    return {
        "target_per_second": rate,
        "seconds": round(elapsed, 2),
        "requests": total,
        "achieved_per_second": round(total / elapsed, 1),
        "statuses": dict(statuses),
        "errors": total - statuses.get("200", 0),
        **percentiles(timings),
    }


async def _cache_hit(web_url: str, samples: int) -> dict[str, float]:
    """A room look-up answered by the process's LRU: the path every repeat connect takes."""
    with private_redis() as url:
        client = redis.Redis.from_url(url)

        async def never(_: object) -> Any:
            raise AssertionError("a room look-up signs nothing")

        tiktok = TikTokClient(
            TikTokSettings(tiktok_web_url=web_url, tiktok_webcast_url=web_url),
            sign=never,
            redis_client=client,
        )
        async with tiktok:
            await tiktok.room(DEFAULT_UNIQUE_ID)  # the miss that fills the caches
            timings = []
            for _ in range(samples):
                started = time.perf_counter()
                await tiktok.room(DEFAULT_UNIQUE_ID)
                timings.append(time.perf_counter() - started)
            assert tiktok.stats().room_cache_misses == 1
        await client.aclose()
    result = percentiles(timings)
    result["p50_us"] = round(result["p50_ms"] * 1000, 2)
    return result


async def _measure(args: argparse.Namespace, base: str, web_url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        sign = await _one_at_a_time(
            http, f"{base}/webcast/sign_url", {"url": FETCH_URL}, args.samples
        )
        connect = await _one_at_a_time(
            http, f"{base}/webcast/fetch", {"room_id": DEFAULT_ROOM_ID}, args.samples
        )
        cache = await _cache_hit(web_url, args.samples * 10)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=30)
        ) as load:
            sustained = await _sustained(load, f"{base}/webcast/fetch", args.rate, args.duration)
    return {
        "sign_p50_ms": sign["p50_ms"],
        "connect_p50_ms": connect["p50_ms"],
        "connect_overhead_p50_ms": round(connect["p50_ms"] - sign["p50_ms"], 3),
        "sign": sign,
        "connect": connect,
        "room_cache_hit": cache,
        "sustained": sustained,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--duration", type=float, default=60.0)
    args = parser.parse_args()
    started = time.time()
    port = free_port()
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", str(port), "--rate", "0"],
        stdout=subprocess.DEVNULL,
    )
    web_url = f"http://127.0.0.1:{port}"
    env = {
        "SIGNER_TIKTOK_WEB_URL": web_url,
        "SIGNER_TIKTOK_WEBCAST_URL": web_url,
        "SIGNER_TIKTOK_PUSH_URL": f"ws://127.0.0.1:{port}/webcast/im/ws_proxy/ws_reuse_supplement/",
        "SIGNER_CONNECT_STRATEGY": "fetch",
        "SIGNER_LOG_LEVEL": "WARNING",
    }
    try:
        with service_stack(processes=1, env=env) as stack:
            report = asyncio.run(_measure(args, stack.base, web_url))
    finally:
        sandbox.terminate()
        sandbox.wait()
    report["machine"] = machine()
    report["settings"] = vars(args)
    path = write_results("connect", report, started)
    sustained = report["sustained"]
    print(
        f"bare signature p50 {report['sign_p50_ms']} ms, connect p50 {report['connect_p50_ms']} "
        f"ms: overhead {report['connect_overhead_p50_ms']} ms\n"
        f"room look-up cache hit p50 {report['room_cache_hit']['p50_us']} us\n"
        f"sustained: {sustained['achieved_per_second']}/s for {sustained['seconds']} s, "
        f"{sustained['errors']} errors, p50 {sustained['p50_ms']} ms, p99 {sustained['p99_ms']} "
        f"ms\nwritten to {path}"
    )


if __name__ == "__main__":
    main()
