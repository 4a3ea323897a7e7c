"""Benchmark of the signing core, in process: latency, throughput, memory, cold start.

    python bench/sign_bench.py                      # the full run (about 2 minutes)
    python bench/sign_bench.py --duration 5 --single 300 --memory-signatures 0   # smoke

Prints the figures and writes them as JSON to bench/results/ (see BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from report import write_results

from signer import Signer, SignerSettings, SignRequest, SignResult
from signer.browser import BrowserEngine
from signer.browser.procs import tree_rss_bytes
from signer.xbogus import encode_xbogus

URL = (
    "https://webcast.tiktok.com/webcast/im/fetch/?aid=1988&app_language=en&app_name=tiktok_web"
    "&browser_language=en-US&browser_name=Mozilla&browser_online=true&browser_platform=Win32"
    "&browser_version=5.0&cookie_enabled=true&cursor=&device_platform=web_pc&focus_state=true"
    "&from_page=user&history_len=4&internal_ext=&is_fullscreen=false&is_page_visible=true"
    "&os=windows&priority_region=&referer=&region=US&room_id=7312345678901234567"
    "&screen_height=1080&screen_width=1920&tz_name=America%2FNew_York&webcast_language=en"
)
MS_TOKEN = "G3C-3f8JVeDj9OTvvxfaJ_NppXWzVflwP1dOclpUOmAv4WmejB8kFwndJufXBBrXbeWNqzJgL8iF5zn33da"


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pick(quantile: float) -> float:
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]

    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p90_ms": round(pick(0.90) * 1000, 3),
        "p99_ms": round(pick(0.99) * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
    }


def _request(i: int) -> SignRequest:
    return SignRequest(f"{URL}&cursor_id={i}", ms_token=MS_TOKEN)


async def _single(signer: Signer, count: int) -> dict[str, Any]:
    for i in range(50):  # warm caches and JIT
        await signer.sign(_request(i))
    samples = []
    for i in range(count):
        start = time.perf_counter()
        await signer.sign(_request(i))
        samples.append(time.perf_counter() - start)
    return {"requests": count, **_percentiles(samples)}


async def _sustained(
    signer: Signer, seconds: float, batch: int, streams: int, memory_every: int
) -> dict[str, Any]:
    """`streams` callers each sending `batch` requests at a time, for `seconds`."""
    done = 0
    failures = 0
    memory: list[tuple[int, int]] = []
    stop = time.perf_counter() + seconds
    batch_times: list[float] = []

    async def stream(offset: int) -> None:
        nonlocal done, failures
        while time.perf_counter() < stop:
            start = time.perf_counter()
            answers = await signer.sign_many([_request(offset + i) for i in range(batch)])
            batch_times.append(time.perf_counter() - start)
            ok = sum(1 for answer in answers if isinstance(answer, SignResult))
            failures += len(answers) - ok
            before = done
            done += ok
            if memory_every and before // memory_every != done // memory_every:
                memory.append((done, tree_rss_bytes()))

    began = time.perf_counter()
    await asyncio.gather(*(stream(n * 100_000) for n in range(streams)))
    elapsed = time.perf_counter() - began
    return {
        "seconds": round(elapsed, 2),
        "signatures": done,
        "failures": failures,
        "per_second": round(done / elapsed),
        "batch": batch,
        "streams": streams,
        "batch_latency": _percentiles(batch_times),
        "memory_mb": [(n, round(b / 2**20)) for n, b in memory],
    }


def _xbogus_per_second(seconds: float) -> int:
    user_agent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/156.0.0.0 Safari/537.36"
    count = 0
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop:
        for i in range(1000):
            encode_xbogus(f"{URL}&i={count + i}", user_agent, 1_700_000_000, 1223183275)
        count += 1000
    return round(count / seconds)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contexts", type=int, default=4)
    parser.add_argument("--single", type=int, default=3000, help="sequential requests")
    parser.add_argument("--duration", type=float, default=60, help="sustained run, seconds")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--memory-signatures", type=int, default=100_000)
    args = parser.parse_args()
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {os.cpu_count()} cores, {platform.python_version()}",
    }

    settings = SignerSettings(engine="browser", contexts=args.contexts)
    began = time.perf_counter()
    signer = Signer(settings)
    await signer.start()
    await signer.sign(_request(0))
    report["cold_start_to_first_signature_s"] = round(time.perf_counter() - began, 3)
    try:
        assert isinstance(signer.engine, BrowserEngine)
        await signer.engine.pool.wait_warm()
        report["all_contexts_warm_s"] = round(time.perf_counter() - began, 3)
        report["memory_warm_mb"] = round(tree_rss_bytes() / 2**20)
        report["browser_single"] = await _single(signer, args.single)
        print(json.dumps(report, indent=2), flush=True)
        sustained = await _sustained(
            signer, args.duration, args.batch, args.streams, args.memory_signatures // 10
        )
        report["browser_sustained"] = sustained
        report["memory_after_mb"] = round(tree_rss_bytes() / 2**20)
        report["stats"] = asdict(signer.stats())
    finally:
        await signer.close()

    async with Signer(SignerSettings(engine="native")) as native:
        report["native_single"] = await _single(native, args.single)
    report["native_xbogus_per_second"] = _xbogus_per_second(3.0)

    print(json.dumps(report, indent=2))
    print(f"written to {write_results('sign', report)}")


if __name__ == "__main__":
    asyncio.run(main())
