"""HTTP load generator for the signing service: latency percentiles, throughput, status codes.

    python bench/load.py http://127.0.0.1:8080 --requests 2000 --concurrency 1
    python bench/load.py http://127.0.0.1:8080 --concurrency 64 --duration 30 --json out.json
    python bench/load.py http://127.0.0.1:8080 --route post --requests 500 --concurrency 8

Each request signs a distinct URL (a `cursor_id` query parameter counts up). The run stops
after `--requests` requests or `--duration` seconds, whichever comes first. The functions
here (`run_load`, `LoadResult`) are also used by bench/stack_bench.py.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp
from sign_bench import URL

__all__ = ["URL", "LoadResult", "Route", "percentiles", "run_load", "signed_url_for"]

Route = Literal["get", "post"]


def signed_url_for(index: int) -> str:
    """The TikTok URL of request `index`: distinct for every request."""
    return f"{URL}&cursor_id={index}"


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p90/p99/max in milliseconds of `samples` given in seconds (nearest rank)."""
    if not samples:
        return {"p50_ms": 0.0, "p90_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    ordered = sorted(samples)

    def pick(quantile: float) -> float:
        rank = max(1, math.ceil(quantile * len(ordered)))
        return ordered[min(len(ordered), rank) - 1]

    return {
        "p50_ms": round(pick(0.50) * 1000, 3),
        "p90_ms": round(pick(0.90) * 1000, 3),
        "p99_ms": round(pick(0.99) * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
    }


@dataclass
class LoadResult:
    """What one load run measured. Latencies are of completed HTTP exchanges, any status."""

    base_url: str
    route: Route
    concurrency: int
    elapsed_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    ok_latencies_s: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        return len(self.latencies_s) + sum(self.errors.values())

    @property
    def ok(self) -> int:
        return len(self.ok_latencies_s)

    def summary(self) -> dict[str, Any]:
        elapsed = self.elapsed_s or 1e-9
        return {
            "base_url": self.base_url,
            "route": self.route,
            "concurrency": self.concurrency,
            "requests": self.requests,
            "ok": self.ok,
            "elapsed_s": round(self.elapsed_s, 3),
            "throughput_rps": round(self.requests / elapsed, 1),
            "ok_throughput_rps": round(self.ok / elapsed, 1),
            "latency": percentiles(self.latencies_s),
            "ok_latency": percentiles(self.ok_latencies_s),
            "status_counts": {str(code): n for code, n in sorted(self.statuses.items())},
            "errors": dict(self.errors),
        }


def _is_signed(route: Route, body: bytes) -> bool:
    """A 200 whose body carries a signed URL (GET) or a signature (POST)."""
    try:
        document = json.loads(body)
    except ValueError:
        return False
    if not isinstance(document, dict):
        return False
    if route == "get":
        return "X-Bogus=" in str(document.get("signedUrl", ""))
    data = document.get("data")
    return isinstance(data, dict) and "X-Bogus=" in str(data.get("signed_url", ""))


async def run_load(
    base_url: str,
    *,
    requests: int | None = 1000,
    concurrency: int = 1,
    duration: float | None = None,
    route: Route = "get",
    timeout: float = 30.0,
    start_index: int = 0,
) -> LoadResult:
    """`concurrency` clients, each sending one request after the other, until `requests`
    have been started or `duration` seconds have passed, whichever comes first."""
    if requests is None and duration is None:
        raise ValueError("give requests, duration or both: the run must be bounded")
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    base = base_url.rstrip("/")
    result = LoadResult(base_url=base, route=route, concurrency=concurrency)
    counter = itertools.count(start_index)
    limit = None if requests is None else start_index + requests
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    started = time.perf_counter()
    stop_at = None if duration is None else started + duration

    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:

        async def send(index: int) -> None:
            url = signed_url_for(index)
            begin = time.perf_counter()
            try:
                if route == "get":
                    call = session.get(f"{base}/webcast/sign_url", params={"url": url})
                else:
                    call = session.post(f"{base}/api/signature", json={"url": url})
                async with call as response:
                    body = await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                result.errors[type(error).__name__] += 1
                return
            elapsed = time.perf_counter() - begin
            result.latencies_s.append(elapsed)
            result.statuses[status] += 1
            if status == 200:
                if _is_signed(route, body):
                    result.ok_latencies_s.append(elapsed)
                else:
                    result.errors["unsigned_200"] += 1

        async def client() -> None:
            while True:
                if stop_at is not None and time.perf_counter() >= stop_at:
                    return
                index = next(counter)
                if limit is not None and index >= limit:
                    return
                await send(index)

        await asyncio.gather(*(client() for _ in range(concurrency)))
    result.elapsed_s = time.perf_counter() - started
    return result


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as a few human-readable lines."""
    latency = summary["latency"]
    lines = [
        f"{summary['base_url']}  route={summary['route']}  concurrency={summary['concurrency']}",
        f"  requests {summary['requests']} ({summary['ok']} signed) "
        f"in {summary['elapsed_s']:.2f} s: {summary['throughput_rps']:.1f} req/s "
        f"({summary['ok_throughput_rps']:.1f} signed/s)",
        f"  latency ms: p50 {latency['p50_ms']:.2f}  p90 {latency['p90_ms']:.2f}  "
        f"p99 {latency['p99_ms']:.2f}  max {latency['max_ms']:.2f}",
        f"  status codes: {summary['status_counts'] or '-'}",
        f"  errors: {summary['errors'] or '-'}",
    ]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_url", help="e.g. http://127.0.0.1:8080")
    parser.add_argument(
        "--requests", type=int, help="stop after N (default 1000, or none with --duration)"
    )
    parser.add_argument("--concurrency", type=int, default=1, help="clients at once (default 1)")
    parser.add_argument("--duration", type=float, help="stop after S seconds (default: none)")
    parser.add_argument(
        "--route",
        choices=["get", "post"],
        default="get",
        help="get: GET /webcast/sign_url; post: POST /api/signature",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    parser.add_argument("--json", type=Path, help="also write the summary here as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    route: Route = "post" if args.route == "post" else "get"
    result = asyncio.run(
        run_load(
            args.base_url,
            requests=args.requests if args.requests or args.duration else 1000,
            concurrency=args.concurrency,
            duration=args.duration,
            route=route,
            timeout=args.timeout,
        )
    )
    summary = result.summary()
    print(format_summary(summary))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if result.ok == result.requests and result.requests > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
