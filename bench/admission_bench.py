"""Admission under load and outage (issue 9): what a real key gets when its cache entry is
new, when it keeps expiring, and when Postgres stops.

    python bench/admission_bench.py                       # defaults below (about 40 s)
    python bench/admission_bench.py --seconds 5 --outage 3  # smoke

One native-engine worker and one API with limits on and a low look-up budget
(`SIGNER_LIMIT_KEY_LOOKUPS_PER_MINUTE=3`, one per key), a 1 s key cache TTL, on a private
Redis and a private Postgres of its own (so it can be stopped). Three phases, each with one
`api_key`-tier (unlimited) key:

- burst: a fresh key, 64 requests at once on 64 open connections;
- expiry: `--clients` clients signing for `--seconds`, the key's entry expiring every second;
- outage: `--clients` clients signing while Postgres is stopped for `--outage` seconds.

Each phase reports requests, statuses, look-ups sent to Postgres and stale answers (from
the API's `/metrics`). Writes JSON to bench/results/admission-<ts>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from load import signed_url_for  # noqa: E402
from report import machine, write_results  # noqa: E402

from service.stack.services import PrivatePostgres  # noqa: E402
from tests.service_stack import issue_key, service_stack  # noqa: E402

ENV = {
    # Low, so that counting anything but the first look-up of each of the three keys shows.
    "SIGNER_LIMIT_KEY_LOOKUPS_PER_MINUTE": "3",
    "SIGNER_LIMIT_ANONYMOUS_PER_DAY": "none",
    "SIGNER_KEY_CACHE_TTL": "1",
    "SIGNER_USAGE_FLUSH_INTERVAL_SECONDS": "0.25",
}
COUNTERS = {
    "lookups": "signer_api_key_lookups_total",
    "stale_answers": "signer_api_key_stale_answers_total",
    "rate_limited": "signer_api_rate_limited_total",
}


def counters(base: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{base}/metrics", timeout=30) as response:
        text = response.read().decode()
    totals = dict.fromkeys(COUNTERS, 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for name, metric in COUNTERS.items():
                if sample.name == metric:
                    totals[name] += sample.value
    return totals


def url(base: str, key: str, n: int) -> str:
    query = {"url": signed_url_for(n), "apiKey": key}
    return f"{base}/webcast/sign_url?{urllib.parse.urlencode(query)}"


async def _get(session: aiohttp.ClientSession, target: str) -> int:
    try:
        async with session.get(target) as response:
            await response.read()
            return response.status
    except (aiohttp.ClientError, TimeoutError):
        return 0  # no answer at all


async def burst(base: str, key: str, count: int) -> collections.Counter[int]:
    connector = aiohttp.TCPConnector(limit=count)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(_get(session, f"{base}/health") for _ in range(count)))
        return collections.Counter(
            await asyncio.gather(*(_get(session, url(base, key, n)) for n in range(count)))
        )


async def sustained(
    base: str,
    key: str,
    clients: int,
    seconds: float,
    during: Any = None,
) -> collections.Counter[int]:
    """`clients` signing in a loop for `seconds`; `during` (a coroutine) runs alongside."""
    statuses: collections.Counter[int] = collections.Counter()
    stop = time.monotonic() + seconds
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def client(c: int) -> None:
            n = 0
            while time.monotonic() < stop:
                statuses[await _get(session, url(base, key, c * 1_000_000 + n))] += 1
                n += 1

        await asyncio.gather(*(client(c) for c in range(clients)), *([during] if during else []))
    return statuses


async def outage(postgres: PrivatePostgres, port: int, after: float, length: float) -> None:
    await asyncio.sleep(after)
    await asyncio.to_thread(postgres.stop)
    await asyncio.sleep(length)
    await asyncio.to_thread(postgres.start, port)


def phase(name: str, base: str, before: dict[str, float], statuses: Any) -> dict[str, Any]:
    after = counters(base)
    result = {
        "phase": name,
        "requests": sum(statuses.values()),
        "statuses": dict(sorted(statuses.items())),
    } | {counter: after[counter] - before[counter] for counter in COUNTERS}
    print(
        f"{name:8} requests {result['requests']:6}  "
        + "  ".join(f"{status}: {count}" for status, count in result["statuses"].items())
        + f"  look-ups {result['lookups']:.0f}  stale {result['stale_answers']:.0f}"
        f"  429 {result['rate_limited']:.0f}",
        flush=True,
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the expiry phase")
    parser.add_argument("--outage", type=float, default=10.0, help="seconds Postgres is down")
    args = parser.parse_args()
    started = time.time()
    folder = Path(tempfile.mkdtemp(prefix="signer-admission-bench-"))
    folder.chmod(0o755)  # Postgres runs as its own user when we are root
    postgres = PrivatePostgres(folder / "pg")
    database_url = postgres.start()
    port = postgres.port
    phases = []
    try:
        env = ENV | {"DATABASE_URL": database_url}
        # The API's request log lines would bury the figures: dropped.
        with (
            open(os.devnull, "wb") as quiet,
            service_stack(limits=True, env=env, api_stderr=quiet) as stack,
        ):
            base = stack.base
            keys = [issue_key(stack.env, f"bench-{n}@example.com", "api_key") for n in range(3)]
            before = counters(base)
            phases.append(phase("burst", base, before, asyncio.run(burst(base, keys[0], 64))))
            before = counters(base)
            load = sustained(base, keys[1], args.clients, args.seconds)
            phases.append(phase("expiry", base, before, asyncio.run(load)))
            before = counters(base)
            down = outage(postgres, port, 2.0, args.outage)
            load = sustained(base, keys[2], args.clients, args.outage + 5.0, down)
            phases.append(phase("outage", base, before, asyncio.run(load)))
    finally:
        postgres.stop()
    report = {
        "kind": "admission",
        "machine": machine(),
        "settings": ENV | {"clients": args.clients, "seconds": args.seconds},
        "outage_seconds": args.outage,
        "phases": phases,
    }
    print(f"wrote {write_results('admission', report, started)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
