"""What API keys and rate limits cost on the full path, both measured in one run.

    python bench/accounting_bench.py                  # 2000 pairs (about a minute)
    python bench/accounting_bench.py --pairs 200      # smoke

One worker process and two API processes on one private Redis and one fresh Postgres
database: API "open" runs with rate limits off and is called without a key; API "keyed"
runs with limits on (a free account's budget set far above what the run sends) and is
called with a real key of a `free` user, so each of its requests looks the key up
(cached after the first), runs the rate-limit script in Redis and answers with the
`RateLimit-*` headers. Both write a usage row per request, as production does. Requests
go one at a time, alternating between the two APIs in random order, so both see the same
machine at the same moments; the difference of the medians is the cost of accounting.
Prints p50/p90/p99 for each and writes JSON to bench/results/accounting-<ts>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from load import percentiles, signed_url_for  # noqa: E402
from report import machine, write_results  # noqa: E402
from stack_bench import stop_process  # noqa: E402

from service.stack.services import free_port  # noqa: E402
from tests.postgres_server import postgres_server  # noqa: E402
from tests.redis_server import private_redis  # noqa: E402
from tests.service_stack import issue_key, wait_for_workers  # noqa: E402


async def _timed(session: aiohttp.ClientSession, url: str) -> tuple[float, int]:
    started = time.perf_counter()
    async with session.get(url) as response:
        await response.read()
        return time.perf_counter() - started, response.status


async def _pairs(bases: dict[str, str], key: str, pairs: int, warmup: int) -> dict[str, Any]:
    samples: dict[str, list[float]] = {name: [] for name in bases}
    statuses: dict[str, dict[int, int]] = {name: {} for name in bases}
    async with aiohttp.ClientSession() as session:
        for index in range(warmup + pairs):
            order = list(bases)
            random.shuffle(order)
            for name in order:
                query = {"url": signed_url_for(index)}
                if name == "keyed":
                    query["apiKey"] = key
                url = f"{bases[name]}/webcast/sign_url?{urllib.parse.urlencode(query)}"
                elapsed, status = await _timed(session, url)
                if index >= warmup:
                    samples[name].append(elapsed)
                    statuses[name][status] = statuses[name].get(status, 0) + 1
    return {
        name: {"requests": len(samples[name]), "statuses": statuses[name]}
        | percentiles(samples[name])
        for name in bases
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=2000, help="requests to each API")
    parser.add_argument("--warmup", type=int, default=100, help="pairs not counted")
    parser.add_argument("--engine", choices=["browser", "native"], default="browser")
    args = parser.parse_args()
    started = datetime.now(UTC)
    logs = Path(tempfile.mkdtemp(prefix="accounting-bench-"))
    processes: list[subprocess.Popen[bytes]] = []
    report: dict[str, Any] = {
        "started": started.isoformat(),
        "machine": machine(),
        "args": vars(args),
    }
    with private_redis() as redis_url, postgres_server() as postgres:
        database_url = asyncio.run(postgres.fresh_database())
        env = dict(
            os.environ,
            REDIS_URL=redis_url,
            DATABASE_URL=database_url,
            SIGNER_ENGINE=args.engine,
            SIGNER_QUEUE_PREFIX=f"accbench-{uuid.uuid4().hex[:8]}",
        )
        try:
            key = issue_key(env, "bench@example.com")

            def spawn(name: str, extra: dict[str, str], *command: str) -> None:
                log = (logs / f"{name}.log").open("ab")
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "service", *command],
                        env=env | extra,
                        cwd=ROOT,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )

            ports = {"open": free_port(), "keyed": free_port()}
            spawn("worker", {}, "worker")
            spawn("open", {"SIGNER_LIMIT_ENABLED": "false"}, "api", "--port", str(ports["open"]))
            keyed = {
                "SIGNER_LIMIT_ENABLED": "true",
                "SIGNER_LIMIT_FREE_PER_MINUTE": "100000000",
                "SIGNER_LIMIT_FREE_PER_DAY": "100000000",
            }
            spawn("keyed", keyed, "api", "--port", str(ports["keyed"]))
            bases = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
            for base in bases.values():
                wait_for_workers(base, 1, timeout=90)
            report["results"] = asyncio.run(_pairs(bases, key, args.pairs, args.warmup))
        finally:
            for process in processes:
                stop_process(process)
            asyncio.run(postgres.drop(database_url))
    results = report["results"]
    delta = results["keyed"]["p50_ms"] - results["open"]["p50_ms"]
    report["p50_delta_ms"] = round(delta, 3)
    report["loadavg_at_end"] = os.getloadavg()
    for name in ("open", "keyed"):
        r = results[name]
        print(
            f"{name:6} {r['requests']} requests {r['statuses']}: p50 {r['p50_ms']:.2f} ms  "
            f"p90 {r['p90_ms']:.2f}  p99 {r['p99_ms']:.2f}  max {r['max_ms']:.2f}"
        )
    verdict = "met" if delta <= 0.5 else "missed"
    print(f"keys and limits on add {delta:+.2f} ms to the p50 (target <= 0.5 ms): {verdict}")
    out = write_results("accounting", report, started.timestamp())
    print(f"written to {out}  (logs in {logs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
