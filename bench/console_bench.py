"""What the console's pages cost with a million usage rows for one user.

    python bench/console_bench.py                    # 1,000,000 rows (a few minutes)
    python bench/console_bench.py --rows 50000       # smoke

A private Postgres (fresh database, day partitions for the last 31 days) and Redis; one
user with two keys and `--rows` usage rows over the last 30 days, loaded with COPY (and a
tenth as many of another user's, so the indexes hold more than one user). The API with
the console mounted runs in this process on loopback; the user signs in over HTTP, then
each page is fetched `--repeat` times and its p50/p90 printed (the time a request takes
from loopback, an upper bound of the server's time). The requests page and its search
are EXPLAINed. The live refresh is fetched by ten "tabs" at once and the Postgres
queries it cost are counted. Writes JSON to bench/results/console-<ts>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import re
import sys
import time
import urllib.parse
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import structlog
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from load import percentiles  # noqa: E402
from report import machine, write_results  # noqa: E402

from accounts import passwords, people, usage_queries, user_keys  # noqa: E402
from accounts.admission import Accounting  # noqa: E402
from accounts.ratelimit import RateLimiter  # noqa: E402
from accounts.settings import RateLimitSettings  # noqa: E402
from api.app import AppServices, AppSettings, create_app  # noqa: E402
from console.app import console_app, mount_console  # noqa: E402
from console.settings import ConsoleSettings, MailSettings  # noqa: E402
from migrations import DatabaseSettings, migrate  # noqa: E402
from migrations.partitions import ensure_partitions, utc_today  # noqa: E402
from tests.postgres_server import postgres_server  # noqa: E402
from tests.redis_server import private_redis  # noqa: E402
from workers import SignQueue  # noqa: E402
from workers.config import QueueSettings  # noqa: E402

PASSWORD = "benchmark password"
COLUMNS = (
    "created_at", "request_id", "user_id", "api_key_id", "key_prefix", "route", "dialect",
    "target", "success", "status_code", "error_type", "error_message", "response_time_ms",
    "queue_wait_ms", "worker_id", "profile",
)  # fmt: skip
FAILURES = (
    (400, "VALIDATION_ERROR", "url: host 'evil.example.org' is not allowed"),
    (429, "RATE_LIMIT_ERROR", "Rate limit reached: 60 requests per minute"),
    (503, "SERVICE_UNAVAILABLE", "no worker answered within the deadline"),
)


def _rows(count: int, user_id: uuid.UUID, keys: list[tuple[uuid.UUID, str]], now: datetime) -> Any:
    rng = random.Random(12)
    span = 30 * 86400
    for _ in range(count):
        key_id, prefix = keys[rng.randrange(len(keys))]
        failed = rng.random() < 0.05
        status, kind, message = FAILURES[rng.randrange(3)] if failed else (200, None, None)
        target = (
            "evil.example.org/webcast/im/fetch/"
            if status == 400
            else "webcast.tiktok.com/webcast/im/fetch/"
        )
        yield (
            now - timedelta(seconds=rng.random() * span),
            os.urandom(16).hex(),
            user_id,
            key_id,
            prefix,
            "sign_url_v2",
            "eulerstream",
            target,
            not failed,
            status,
            kind,
            message,
            rng.lognormvariate(1.5, 0.5),
            rng.random(),
            "worker-1",
            "win10-chrome-1080p",
        )


async def _load(conn: asyncpg.Connection[Any], rows: Any, total: int) -> float:
    started = time.perf_counter()
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == 50_000:
            await conn.copy_records_to_table("usage_logs", records=batch, columns=COLUMNS)
            batch.clear()
    if batch:
        await conn.copy_records_to_table("usage_logs", records=batch, columns=COLUMNS)
    return time.perf_counter() - started


class QueryCounter:
    """Counts the statements the pool's connections run (asyncpg's query logger), but
    the reset asyncpg's pool runs when a connection goes back to it."""

    def __init__(self) -> None:
        self.count = 0
        self.queries: list[str] = []

    def __call__(self, record: Any) -> None:
        if "RESET ALL" in record.query or "pg_advisory_unlock_all" in record.query:
            return
        self.count += 1
        self.queries.append(" ".join(record.query.split())[:120])

    async def init(self, conn: asyncpg.Connection[Any]) -> None:
        conn.add_query_logger(self)


async def _timed(http: aiohttp.ClientSession, url: str, repeat: int) -> dict[str, Any]:
    times = []
    status = 0
    for _ in range(repeat):
        started = time.perf_counter()
        async with http.get(url, allow_redirects=False) as response:
            await response.read()
            status = response.status
        times.append(time.perf_counter() - started)
    return {"status": status, **percentiles(times)}


async def run(rows: int, repeat: int) -> dict[str, Any]:
    report: dict[str, Any] = {"rows": rows, "repeat": repeat, "machine": machine()}
    with private_redis() as redis_url, postgres_server() as server:
        url = await server.fresh_database()
        try:
            await migrate(DatabaseSettings(DATABASE_URL=url))
            conn = await asyncpg.connect(url)
            today = utc_today()
            await ensure_partitions(
                conn, today=today - timedelta(days=31), ahead_days=33, retention_days=60
            )
            person = await people.create_person(conn, "bench@example.com")
            await passwords.set_password(conn, person.id, PASSWORD)
            await people.mark_verified(conn, person.id)
            other = await people.create_person(conn, "other@example.com")
            keys = []
            for name in ("bot one", "bot two"):
                info, _ = await user_keys.create_user_key(
                    conn, person.id, name, None, None, most_per_minute=None,
                    most_per_day=None, key_secret="",
                )  # fmt: skip
                keys.append((info.id, info.prefix))
            now = datetime.now(UTC)
            seconds = await _load(conn, _rows(rows, person.id, keys, now), rows)
            await _load(conn, _rows(rows // 10, other.id, keys, now), rows // 10)
            # As autovacuum would by then: statistics, and GIN pending lists merged.
            await conn.execute("VACUUM (ANALYZE) usage_logs")
            report["copy_seconds"] = round(seconds, 1)
            report["copy_rows_per_second"] = round(rows / seconds)
            print(f"loaded {rows} rows with COPY in {seconds:.1f} s")

            counter = QueryCounter()
            pool = await asyncpg.create_pool(url, min_size=1, max_size=4, init=counter.init)
            queue = SignQueue(QueueSettings(REDIS_URL=redis_url, prefix="bench"))
            await queue.start()
            limits = RateLimitSettings.model_construct()
            accounting = Accounting(
                limiter=RateLimiter(queue.redis, prefix="bench"), limits=limits, database=pool
            )
            app = create_app(AppSettings(), AppServices(queue, accounting=accounting))
            mount_console(
                app,
                *console_app(
                    ConsoleSettings.model_construct(),
                    MailSettings.model_construct(),
                    queue.redis,
                    prefix="bench",
                    key_secret="",
                ),
            )
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            base = f"http://127.0.0.1:{port}"
            jar = aiohttp.CookieJar(unsafe=True)
            async with aiohttp.ClientSession(cookie_jar=jar) as http:
                async with http.get(f"{base}/console/signin") as response:
                    csrf = re.search(r'name="csrf" value="([^"]+)"', await response.text())
                assert csrf
                async with http.post(
                    f"{base}/console/signin",
                    data={"email": "bench@example.com", "password": PASSWORD, "csrf": csrf[1]},
                    headers={"Origin": base},
                    allow_redirects=False,
                ) as response:
                    assert response.status == 303, await response.text()
                newest = await usage_queries.list_requests(
                    pool, person.id, usage_queries.RequestFilters(), limit=1
                )
                deep = await usage_queries.list_requests(
                    pool, person.id, usage_queries.RequestFilters(), limit=500
                )
                cursor = deep[-1].cursor
                pages = {
                    "overview": "/console/",
                    "keys": "/console/keys",
                    "requests": "/console/requests",
                    "requests, a page 500 rows deep": "/console/requests?"
                    + urllib.parse.urlencode({"after": cursor}),
                    "requests, failed only": "/console/requests?status=failed",
                    "requests, search (rare: evil.example)": "/console/requests?q=evil.example",
                    "requests, search (common: fetch)": "/console/requests?q=fetch",
                    "requests, search (no match)": "/console/requests?q=no-such-words",
                    "requests, one key and 429": (f"/console/requests?key={keys[0][0]}&status=429"),
                    "request detail": f"/console/requests/{newest[0].request_id}",
                    "connect": "/console/connect",
                    "account": "/console/account",
                }
                # The first overview rolls up the month (once); every later one, the
                # hours ended since.
                cold = await _timed(http, base + "/console/", 1)
                report["overview_first_ms"] = cold["p50_ms"]
                print(f"{'overview, first ever (rolls up 30 days)':40} {cold['p50_ms']:7.1f} ms")
                timings = {}
                for name, path in pages.items():
                    timings[name] = await _timed(http, base + path, repeat)
                    t = timings[name]
                    line = f"p50 {t['p50_ms']:7.1f} ms  p90 {t['p90_ms']:7.1f} ms"
                    print(f"{name:40} {t['status']}  {line}")
                report["pages_ms"] = timings

                # Ten tabs refresh at once, twice, the live cache cold each time.
                per_refresh = []
                for _ in range(2):
                    await queue.redis.delete(f"bench:console:live:{person.id}")
                    before = counter.count
                    await asyncio.gather(
                        *(_timed(http, f"{base}/console/overview/live", 1) for _ in range(10))
                    )
                    per_refresh.append(counter.count - before)
                    report.setdefault("live_refresh_queries", counter.queries[before:])
                report["live_refresh_queries_for_10_tabs"] = per_refresh
                print(f"live refresh, 10 tabs at once: {per_refresh} Postgres queries")

            explained = {}
            for name, filters in (
                ("requests page", usage_queries.RequestFilters()),
                ("search evil.example", usage_queries.RequestFilters(search="evil.example")),
                ("search, no match", usage_queries.RequestFilters(search="no-such-words")),
            ):
                sql, args = usage_queries.requests_query(person.id, filters, limit=51)
                plan = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *args)
                explained[name] = [row[0] for row in plan]
                print(f"\nEXPLAIN {name}:")
                print("\n".join(explained[name][:25]))
            report["explain"] = explained
            await runner.cleanup()
            await queue.close()
            await pool.close()
            await conn.close()
        finally:
            await server.drop(url)
    return report


def main() -> None:
    # The API's one line per request would bury the figures.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    started = time.time()
    report = asyncio.run(run(args.rows, args.repeat))
    print(f"\nwrote {write_results('console', report, started)}")


if __name__ == "__main__":
    main()
