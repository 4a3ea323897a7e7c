"""Benchmark of the usage writer: rows per second into Postgres, and what each flush costs.

    python bench/usage_bench.py                          # private Postgres, default phases
    python bench/usage_bench.py --seconds 30 --rows 500000
    python bench/usage_bench.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

Phases, both through one `UsageWriter` with its default settings (batches of 1000, flush
every 0.25 s) on a migrated database with today's partitions:
  (a) sustained: rows added at `--rate` (10,000) per second for `--seconds` (10), a tick
      every 10 ms, as an API's requests would add them; reports the rate written, the peak
      of the buffer, drops, and how long the last rows took to land once adding stopped;
  (b) flat out: `--rows` (200,000) rows, made beforehand, added as fast as the writer
      takes them (held under half the buffer's bound); reports rows written per second.
Rows look like the API's: 500 users with 1,000 keys, a fifth anonymous, 5% errors. Each
phase reports the flush sizes and p50/p99 flush time (one flush = one batch's transaction:
COPY, quota upsert, last_used update, COMMIT), and the CPU used by this process and by all
postgres processes on the host.

Postgres: a fresh database on the server of `--database-url` (dropped afterwards), else on
a private server started with service.stack.services.PrivatePostgres (tests/postgres_server.py; it
uses DATABASE_URL's server instead when that is set). Writes JSON to
bench/results/usage-<ts>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
from report import machine, write_results  # noqa: E402

from accounts.usage import UsageRow, UsageSettings, UsageWriter  # noqa: E402
from migrations.runner import migrate  # noqa: E402
from migrations.settings import DatabaseSettings  # noqa: E402
from tests.postgres_server import PostgresServer, postgres_server  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TICK = 0.01
USERS = 500
KEYS_PER_USER = 2


# --- the rows ------------------------------------------------------------------------------


@dataclass
class RowMaker:
    """Rows shaped like the API's, over a fixed set of users and keys."""

    keys: list[tuple[uuid.UUID, uuid.UUID, str]]  # (user, key, prefix)
    made: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def make(self, now: datetime) -> UsageRow:
        self.made += 1
        rng = self.rng
        user = key = prefix = None
        if rng.random() >= 0.2:
            user, key, prefix = rng.choice(self.keys)
        failed = rng.random() < 0.05
        return UsageRow(
            created_at=now,
            request_id=uuid.uuid4().hex,
            route="sign_webcast_url",
            dialect="eulerstream",
            target="webcast.tiktok.com/webcast/im/fetch/",
            success=not failed,
            status_code=503 if failed else 200,
            response_time_ms=rng.uniform(1.5, 9.0),
            user_id=user,
            api_key_id=key,
            key_prefix=prefix,
            client_ip=f"198.51.100.{rng.randrange(1, 255)}",
            error_type="SERVICE_UNAVAILABLE" if failed else None,
            error_message="the signing engine is busy; try again shortly" if failed else None,
            queue_wait_ms=rng.uniform(0.1, 2.0),
            worker_id=f"worker-{rng.randrange(4)}",
            profile="chrome-120-win" if not failed else None,
        )


async def make_accounts(conn: asyncpg.Connection[Any]) -> list[tuple[uuid.UUID, uuid.UUID, str]]:
    keys: list[tuple[uuid.UUID, uuid.UUID, str]] = []
    for n in range(USERS):
        user: uuid.UUID = await conn.fetchval(
            "INSERT INTO users (email) VALUES ($1) RETURNING id", f"bench{n}@example.com"
        )
        for k in range(KEYS_PER_USER):
            prefix = f"sk_bench_{n}_{k}"
            key: uuid.UUID = await conn.fetchval(
                "INSERT INTO api_keys (user_id, key_hash, prefix) VALUES ($1, $2, $3) RETURNING id",
                user,
                uuid.uuid4().hex * 2,
                prefix,
            )
            keys.append((user, key, prefix))
    return keys


# --- measuring -----------------------------------------------------------------------------


def postgres_cpu_seconds() -> float:
    """CPU seconds used so far by every process named postgres on this host."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        if name == "postgres":
            fields = stat[stat.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass
class Flushes:
    sizes: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def record(self, size: int, seconds: float) -> None:
        self.sizes.append(size)
        self.seconds.append(seconds)

    def summary(self) -> dict[str, Any]:
        if not self.sizes:
            return {"flushes": 0}
        return {
            "flushes": len(self.sizes),
            "size_mean": round(statistics.fmean(self.sizes), 1),
            "size_p50": percentile([float(s) for s in self.sizes], 0.5),
            "size_min": min(self.sizes),
            "size_max": max(self.sizes),
            "full_batches": sum(1 for size in self.sizes if size >= 1000),
            "flush_ms_p50": round(percentile(self.seconds, 0.5) * 1000, 2),
            "flush_ms_p99": round(percentile(self.seconds, 0.99) * 1000, 2),
            "flush_ms_max": round(max(self.seconds) * 1000, 2),
            "rows_per_flush_second": round(sum(self.sizes) / sum(self.seconds)),
        }


@asynccontextmanager
async def measured() -> AsyncIterator[dict[str, Any]]:
    """Wall time and CPU of this process and of postgres over the block."""
    out: dict[str, Any] = {}
    wall, cpu, pg = time.perf_counter(), time.process_time(), postgres_cpu_seconds()
    yield out
    elapsed = time.perf_counter() - wall
    out["wall_s"] = round(elapsed, 3)
    out["process_cpu_cores"] = round((time.process_time() - cpu) / elapsed, 3)
    out["postgres_cpu_cores"] = round((postgres_cpu_seconds() - pg) / elapsed, 3)


# --- phases --------------------------------------------------------------------------------


async def sustained(url: str, maker: RowMaker, rate: int, seconds: float) -> dict[str, Any]:
    flushes = Flushes()
    writer = UsageWriter(url, UsageSettings(), on_flush=flushes.record)
    await writer.start()
    peak = 0
    # (time, rows written) once the first second is over, to leave out the start-up.
    steady: tuple[float, int] | None = None
    async with measured() as cost:
        started = time.perf_counter()
        added = 0
        while (elapsed := time.perf_counter() - started) < seconds:
            # Catch up to the schedule, so that a late tick does not lower the rate.
            due = int(rate * elapsed) - added
            now = datetime.now(UTC)
            for _ in range(due):
                writer.add(maker.make(now))
            added += due
            peak = max(peak, writer.buffered)
            if steady is None and elapsed >= min(1.0, seconds / 2):
                steady = (elapsed, writer.written)
            await asyncio.sleep(TICK)
        adding_s = time.perf_counter() - started
        written_while_adding = writer.written
        buffered_at_end = writer.buffered
        assert steady is not None
        steady_rate = (written_while_adding - steady[1]) / (adding_s - steady[0])
        last_add = time.perf_counter()
        await writer.flush()
        drain_s = time.perf_counter() - last_add
    await writer.close()
    return {
        "rows": added,
        "add_rate_per_s": round(added / adding_s),
        "written_per_s_steady": round(steady_rate),
        "written_per_s_while_adding": round(written_while_adding / adding_s),
        "peak_buffered": peak,
        "buffered_when_adding_stopped": buffered_at_end,
        "dropped": writer.dropped,
        "last_rows_landed_after_s": round(drain_s, 3),
        **flushes.summary(),
        **cost,
    }


async def flat_out(url: str, maker: RowMaker, rows: int) -> dict[str, Any]:
    flushes = Flushes()
    settings = UsageSettings()
    writer = UsageWriter(url, settings, on_flush=flushes.record)
    await writer.start()
    # Made beforehand, so that the figure is the writer's and Postgres's alone.
    now = datetime.now(UTC)
    made = [maker.make(now) for _ in range(rows)]
    async with measured() as cost:
        started = time.perf_counter()
        added = 0
        while added < rows:
            if writer.buffered > settings.max_buffered // 2:
                await asyncio.sleep(0.001)
                continue
            for usage in made[added : added + 1000]:
                writer.add(usage)
            added = min(rows, added + 1000)
            await asyncio.sleep(0)
        await writer.flush()
        elapsed = time.perf_counter() - started
    await writer.close()
    return {
        "rows": added,
        "written_per_s": round(writer.written / elapsed),
        "dropped": writer.dropped,
        **flushes.summary(),
        **cost,
    }


async def check(url: str, expected_rows: int) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetchval("SELECT count(*) FROM usage_logs")
        in_default = await conn.fetchval("SELECT count(*) FROM usage_logs_default")
        quota = await conn.fetchval("SELECT coalesce(sum(request_count), 0) FROM quota_usage")
        counted = await conn.fetchval(
            "SELECT count(*) FROM usage_logs WHERE user_id IS NOT NULL AND status_code <> 429"
        )
        version = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    return {
        "rows_in_usage_logs": rows,
        "rows_expected": expected_rows,
        "rows_in_default_partition": in_default,
        "quota_total": quota,
        "quota_expected": counted,
        "postgres_version": version,
    }


async def run(args: argparse.Namespace, server: PostgresServer) -> dict[str, Any]:
    async with server.database() as url:
        await migrate(DatabaseSettings(DATABASE_URL=url))
        conn = await asyncpg.connect(url)
        try:
            maker = RowMaker(await make_accounts(conn))
        finally:
            await conn.close()
        out: dict[str, Any] = {}
        if args.seconds > 0:
            print(f"(a) sustained: {args.rate:,} rows/s for {args.seconds} s")
            out["sustained"] = await sustained(url, maker, args.rate, args.seconds)
            print(f"    {out['sustained']}")
        if args.rows > 0:
            print(f"(b) flat out: {args.rows:,} rows")
            out["flat_out"] = await flat_out(url, maker, args.rows)
            print(f"    {out['flat_out']}")
        out["check"] = await check(url, maker.made)
        print(f"    {out['check']}")
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=10_000, help="rows/s added in (a)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of (a); 0 skips it")
    parser.add_argument("--rows", type=int, default=200_000, help="rows of (b); 0 skips it")
    parser.add_argument(
        "--database-url",
        default=None,
        help="a Postgres server to make a fresh database on (default: a private server)",
    )
    args = parser.parse_args()

    started = datetime.now(UTC)
    report: dict[str, Any] = {
        "started": started.isoformat(),
        "machine": machine(),
        "args": vars(args),
        "settings": UsageSettings().model_dump(),
    }
    if args.database_url:
        report.update(asyncio.run(run(args, PostgresServer(args.database_url))))
    else:
        with postgres_server() as server:
            report.update(asyncio.run(run(args, server)))
    report["loadavg_at_end"] = os.getloadavg()

    print()
    for phase in ("sustained", "flat_out"):
        if phase not in report:
            continue
        found = report[phase]
        rate = found.get("written_per_s_steady", found.get("written_per_s"))
        print(
            f"{phase}: {rate:,} rows/s written, flushes {found['flushes']} "
            f"(mean {found['size_mean']} rows, max {found['size_max']}), "
            f"flush p50 {found['flush_ms_p50']} ms p99 {found['flush_ms_p99']} ms, "
            f"dropped {found['dropped']}, CPU {found['process_cpu_cores']} cores here + "
            f"{found['postgres_cpu_cores']} postgres"
        )
    if "sustained" in report:
        found = report["sustained"]
        # Kept up: written as fast as added (1% for timing noise), no backlog left growing
        # (under two batches waiting when adding stopped), nothing dropped.
        met = (
            found["written_per_s_steady"] >= 0.99 * args.rate
            and found["buffered_when_adding_stopped"] < 2 * UsageSettings().batch_size
            and found["dropped"] == 0
        )
        verdict = "met" if met and args.rate >= 10_000 else "missed"
        report["verdict_10k_rows_per_s"] = verdict
        print(f"objective: sustains 10,000 rows/s -> {verdict} (at {args.rate:,} rows/s)")
    print(f"written to {write_results('usage', report, started.timestamp())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
