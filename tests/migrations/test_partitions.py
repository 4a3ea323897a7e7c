"""Partition upkeep of usage_logs on a real Postgres."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeAlias

import asyncpg
import pytest

from migrations import apply_migrations_on
from migrations.partitions import (
    PARTITION_LOCK_KEY,
    PartitionChanges,
    ensure_partitions,
    partition_name,
    upkeep_partitions,
    utc_today,
)
from tests.postgres_server import PostgresServer

Connection: TypeAlias = "asyncpg.Connection[Any]"

DAY = date(2026, 11, 23)


@pytest.fixture
async def database_url(postgres: PostgresServer) -> AsyncIterator[str]:
    """A fresh database, migrated but without partitions (the upkeep under test adds them)."""
    async with postgres.database() as url:
        connection = await asyncpg.connect(url)
        await apply_migrations_on(connection)
        await connection.close()
        yield url


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[Connection]:
    connection = await asyncpg.connect(database_url)
    yield connection
    await connection.close()


def days(first: date, count: int) -> list[str]:
    return [partition_name(first + timedelta(days=n)) for n in range(count)]


async def partitions(conn: Connection) -> list[str]:
    records = await conn.fetch(
        "SELECT inhrelid::regclass::text AS name FROM pg_inherits"
        " WHERE inhparent = 'usage_logs'::regclass ORDER BY 1"
    )
    return [r["name"] for r in records if r["name"] != "usage_logs_default"]


async def insert_usage(conn: Connection, at: datetime, request_id: str = "r") -> str:
    """Insert one usage row; return the partition it landed in."""
    part: str = await conn.fetchval(
        "INSERT INTO usage_logs (created_at, request_id, route, dialect, target, success,"
        " status_code, response_time_ms) VALUES ($1, $2, '/x', 'ours', 't', true, 200, 1)"
        " RETURNING tableoid::regclass::text",
        at,
        request_id,
    )
    return part


async def test_creates_today_and_the_days_ahead(conn: Connection) -> None:
    changes = await ensure_partitions(conn, today=DAY, ahead_days=3, retention_days=30)
    assert changes == PartitionChanges(created=tuple(days(DAY, 4)))
    assert await partitions(conn) == days(DAY, 4)
    bound = await conn.fetchval(
        "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = $1",
        "usage_logs_20261123",
    )
    assert "'2026-11-23 00:00:00+00'" in bound
    assert "'2026-11-24 00:00:00+00'" in bound


async def test_days_are_utc_days_whatever_the_session_time_zone(conn: Connection) -> None:
    await conn.execute("SET TimeZone = 'Pacific/Kiritimati'")  # UTC+14
    await ensure_partitions(conn, today=DAY, ahead_days=1, retention_days=30)
    last_moment = datetime(2026, 11, 23, 23, 59, 59, 999999, tzinfo=UTC)
    assert await insert_usage(conn, last_moment) == "usage_logs_20261123"
    assert await insert_usage(conn, last_moment + timedelta(microseconds=1)) == (
        "usage_logs_20261124"
    )


async def test_running_again_changes_nothing(conn: Connection) -> None:
    await ensure_partitions(conn, today=DAY, ahead_days=3, retention_days=30)
    again = await ensure_partitions(conn, today=DAY, ahead_days=3, retention_days=30)
    assert again == PartitionChanges()
    assert not again
    assert again.describe() == []
    assert await partitions(conn) == days(DAY, 4)


async def test_drops_days_past_retention_and_keeps_the_rest(conn: Connection) -> None:
    start = DAY - timedelta(days=35)
    await ensure_partitions(conn, today=start, ahead_days=35, retention_days=30)
    assert await partitions(conn) == days(start, 36)
    await insert_usage(conn, datetime.combine(start, datetime.min.time(), tzinfo=UTC))
    changes = await ensure_partitions(conn, today=DAY, ahead_days=1, retention_days=30)
    cutoff = DAY - timedelta(days=30)
    assert changes.dropped == tuple(days(start, 5))  # the five days before the cutoff
    assert changes.created == (partition_name(DAY + timedelta(days=1)),)
    assert await partitions(conn) == days(cutoff, 32)
    assert await conn.fetchval("SELECT count(*) FROM usage_logs") == 0


async def test_quota_rows_past_retention_are_deleted(conn: Connection) -> None:
    user = await conn.fetchval("INSERT INTO users (email) VALUES ('q@example.com') RETURNING id")
    cutoff = DAY - timedelta(days=30)
    for day in (cutoff - timedelta(days=1), cutoff, DAY):
        await conn.execute(
            "INSERT INTO quota_usage (user_id, date, request_count) VALUES ($1, $2, 1)", user, day
        )
    changes = await ensure_partitions(conn, today=DAY, ahead_days=0, retention_days=30)
    assert changes.quota_rows_deleted == 1
    kept = await conn.fetch("SELECT date FROM quota_usage ORDER BY date")
    assert [r["date"] for r in kept] == [cutoff, DAY]


async def test_rows_in_the_default_partition_are_moved_or_expired(conn: Connection) -> None:
    def noon(day: date) -> datetime:
        return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)

    missed, future, expired = DAY - timedelta(days=2), DAY + timedelta(days=10), DAY - timedelta(40)
    for day in (missed, missed, future, expired):
        assert await insert_usage(conn, noon(day), str(day)) == "usage_logs_default"
    ids = {r["id"] for r in await conn.fetch("SELECT id FROM usage_logs")}

    changes = await ensure_partitions(conn, today=DAY, ahead_days=3, retention_days=30)

    assert changes.created == (partition_name(missed), *days(DAY, 4))
    assert changes.rescued_rows == 2
    assert changes.expired_rows == 1
    assert "moved 2 usage rows out of usage_logs_default" in changes.describe()
    rows = await conn.fetch(
        "SELECT id, request_id, tableoid::regclass::text AS part FROM usage_logs"
    )
    assert {r["id"] for r in rows} < ids  # same rows, same ids, less the expired one
    placed = {(r["request_id"], r["part"]) for r in rows}
    assert placed == {(str(missed), partition_name(missed)), (str(future), "usage_logs_default")}
    # New rows still get fresh ids after the move.
    await insert_usage(conn, noon(DAY))
    assert await conn.fetchval("SELECT count(DISTINCT id) FROM usage_logs") == 4


async def test_two_at_once_create_each_partition_once(database_url: str, conn: Connection) -> None:
    first, second = await asyncpg.connect(database_url), await asyncpg.connect(database_url)
    # Hold the upkeep's lock until both runs queue on it, so they really start together.
    holding = conn.transaction()
    await holding.start()
    await conn.execute("SELECT pg_advisory_xact_lock($1)", PARTITION_LOCK_KEY)
    runs = asyncio.gather(
        *(ensure_partitions(c, today=DAY, ahead_days=3, retention_days=30) for c in (first, second))
    )
    deadline = time.monotonic() + 30
    while await waiting_for_upkeep(conn) < 2:
        assert time.monotonic() < deadline, "the runs never queued on the lock"
        await asyncio.sleep(0.02)
    await holding.commit()
    results = await runs
    await first.close()
    await second.close()
    assert sorted(results[0].created + results[1].created) == days(DAY, 4)
    assert PartitionChanges() in results
    assert await partitions(conn) == days(DAY, 4)


async def waiting_for_upkeep(conn: Connection) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND classid::bigint = $1 AND objid::bigint = $2",
        PARTITION_LOCK_KEY >> 32,
        PARTITION_LOCK_KEY & 0xFFFFFFFF,
    )
    return count


async def test_the_periodic_job_works_from_a_pool(database_url: str, conn: Connection) -> None:
    async with asyncpg.create_pool(database_url, min_size=1, max_size=1) as pool:
        changes = await upkeep_partitions(pool, ahead_days=1, retention_days=30)
    assert changes.created == tuple(days(utc_today(), 2))
    assert await insert_usage(conn, datetime.now(UTC)) == partition_name(utc_today())


async def test_nonsense_windows_are_refused(conn: Connection) -> None:
    with pytest.raises(ValueError, match="retention_days"):
        await ensure_partitions(conn, today=DAY, ahead_days=1, retention_days=0)
