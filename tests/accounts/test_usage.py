"""The usage writer against a real Postgres: what lands, when, and what it adds up to.

Postgres going away and coming back is in test_usage_outage.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeAlias

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from accounts.usage import UsageRow, UsageSettings, UsageWriter
from migrations.runner import apply_migrations
from service.stack.services import free_port
from tests.postgres_server import PostgresServer

Connection: TypeAlias = "asyncpg.Connection[Any]"
WriterFactory: TypeAlias = Callable[..., Awaitable[UsageWriter]]

# A fixed time, far from midnight: rows must not straddle a UTC day by accident.
T0 = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
DAY1 = T0.date()
DAY2 = DAY1 + timedelta(days=1)


def row(n: int, **fields: Any) -> UsageRow:
    """Row number `n`: request id `req-<n>`, created `n` ms after T0 unless given."""
    values: dict[str, Any] = {
        "created_at": T0 + timedelta(milliseconds=n),
        "request_id": f"req-{n:06d}",
        "route": "sign",
        "dialect": "eulerstream",
        "target": "webcast.tiktok.com/webcast/im/fetch/",
        "success": True,
        "status_code": 200,
        "response_time_ms": 12.5,
    }
    values.update(fields)
    return UsageRow(**values)


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s")
        await asyncio.sleep(0.01)


async def request_ids(conn: Connection) -> list[str]:
    return [
        r["request_id"] for r in await conn.fetch("SELECT request_id FROM usage_logs ORDER BY id")
    ]


@pytest.fixture
async def database_url(postgres: PostgresServer) -> AsyncIterator[str]:
    async with postgres.database() as url:
        await apply_migrations(url)
        yield url


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[Connection]:
    connection = await asyncpg.connect(database_url)
    yield connection
    await connection.close()


@pytest.fixture
async def make_writer(database_url: str) -> AsyncIterator[WriterFactory]:
    """Started writers on the test's database (or `url`), closed after the test."""
    writers: list[UsageWriter] = []

    async def make(url: str | None = None, **settings: Any) -> UsageWriter:
        settings.setdefault("retry_initial_seconds", 0.05)
        settings.setdefault("retry_max_seconds", 0.2)
        registry = settings.pop("registry", None)
        writer = UsageWriter(url or database_url, UsageSettings(**settings), registry=registry)
        writers.append(writer)
        await writer.start()
        return writer

    yield make
    for writer in writers:
        await writer.close(timeout=2)


@dataclass
class Accounts:
    alice: uuid.UUID
    bob: uuid.UUID
    alice_key: uuid.UUID
    alice_key2: uuid.UUID
    bob_key: uuid.UUID


@pytest.fixture
async def accounts(conn: Connection) -> Accounts:
    async def user(email: str) -> uuid.UUID:
        found: uuid.UUID = await conn.fetchval(
            "INSERT INTO users (email) VALUES ($1) RETURNING id", email
        )
        return found

    async def key(user_id: uuid.UUID, prefix: str) -> uuid.UUID:
        found: uuid.UUID = await conn.fetchval(
            "INSERT INTO api_keys (user_id, key_hash, prefix) VALUES ($1, $2, $3) RETURNING id",
            user_id,
            uuid.uuid4().hex * 2,
            prefix,
        )
        return found

    alice = await user("alice@example.com")
    bob = await user("bob@example.com")
    return Accounts(
        alice=alice,
        bob=bob,
        alice_key=await key(alice, "sk_live_alice1"),
        alice_key2=await key(alice, "sk_live_alice2"),
        bob_key=await key(bob, "sk_live_bob1"),
    )


async def quota(conn: Connection) -> dict[tuple[uuid.UUID, date], int]:
    found = await conn.fetch("SELECT user_id, date, request_count FROM quota_usage")
    return {(r["user_id"], r["date"]): r["request_count"] for r in found}


async def test_a_full_batch_is_written_without_waiting_for_the_interval(
    make_writer: WriterFactory, conn: Connection
) -> None:
    writer = await make_writer(batch_size=100, flush_interval_seconds=3600)
    for n in range(250):
        writer.add(row(n))
    await wait_for(lambda: writer.written == 200)
    assert await request_ids(conn) == [f"req-{n:06d}" for n in range(200)]
    assert writer.buffered == 50
    await writer.flush()
    assert await request_ids(conn) == [f"req-{n:06d}" for n in range(250)]
    assert (writer.written, writer.buffered, writer.dropped) == (250, 0, 0)


async def test_rows_are_written_after_the_interval_field_for_field(
    make_writer: WriterFactory, conn: Connection, accounts: Accounts
) -> None:
    writer = await make_writer(batch_size=1000, flush_interval_seconds=0.1)
    full = row(
        1,
        user_id=accounts.alice,
        api_key_id=accounts.alice_key,
        key_prefix="sk_live_alice1",
        client_ip="2001:db8::7",
        success=False,
        status_code=503,
        error_type="SERVICE_UNAVAILABLE",
        error_message="deadline passed before a worker took the job",
        queue_wait_ms=3.25,
        worker_id="worker-1:4242",
        profile="chrome-120-win",
        route="eulerstream_sign",
        dialect="structured",
        target="www.tiktok.com/@someone/live",
        response_time_ms=1500.75,
        room_id="7312345678901234567",
        strategy="fetch",
        upstream_status=200,
        upstream_ms=41.5,
        cost=2,
    )
    bare = row(2)
    writer.add(full)
    writer.add(bare)
    # No flush(): the interval alone must write them.
    await wait_for(lambda: writer.written == 2)
    records = await conn.fetch("SELECT * FROM usage_logs ORDER BY id")
    stored = [dict(record) for record in records]
    for found in stored:
        assert isinstance(found.pop("id"), int)
        if found["client_ip"] is not None:
            found["client_ip"] = str(found["client_ip"])
    assert stored == [
        {
            "created_at": full.created_at,
            "request_id": "req-000001",
            "user_id": accounts.alice,
            "api_key_id": accounts.alice_key,
            "key_prefix": "sk_live_alice1",
            "client_ip": "2001:db8::7",
            "route": "eulerstream_sign",
            "dialect": "structured",
            "target": "www.tiktok.com/@someone/live",
            "success": False,
            "status_code": 503,
            "error_type": "SERVICE_UNAVAILABLE",
            "error_message": "deadline passed before a worker took the job",
            "response_time_ms": 1500.75,
            "queue_wait_ms": 3.25,
            "worker_id": "worker-1:4242",
            "profile": "chrome-120-win",
            "room_id": "7312345678901234567",
            "strategy": "fetch",
            "upstream_status": 200,
            "upstream_ms": 41.5,
            "cost": 2,
        },
        {
            "created_at": bare.created_at,
            "request_id": "req-000002",
            "user_id": None,
            "api_key_id": None,
            "key_prefix": None,
            "client_ip": None,
            "route": "sign",
            "dialect": "eulerstream",
            "target": "webcast.tiktok.com/webcast/im/fetch/",
            "success": True,
            "status_code": 200,
            "error_type": None,
            "error_message": None,
            "response_time_ms": 12.5,
            "queue_wait_ms": None,
            "worker_id": None,
            "profile": None,
            "room_id": None,
            "strategy": None,
            "upstream_status": None,
            "upstream_ms": None,
            "cost": 1,
        },
    ]
    # A connect of weight 2 counts twice toward the day's quota, as the limiter counted it.
    assert await quota(conn) == {(accounts.alice, full.created_at.date()): 2}


async def test_long_error_messages_are_cut_and_naive_times_taken_as_utc(
    make_writer: WriterFactory, conn: Connection
) -> None:
    writer = await make_writer(max_message_chars=20)
    writer.add(row(1, error_message="x" * 5000, created_at=datetime(2026, 3, 14, 23, 59)))
    await writer.flush()
    stored = await conn.fetchrow("SELECT created_at, error_message FROM usage_logs")
    assert stored is not None
    assert stored["error_message"] == "x" * 20
    assert stored["created_at"] == datetime(2026, 3, 14, 23, 59, tzinfo=UTC)


async def test_client_addresses_are_stored_as_postgres_reads_them(
    make_writer: WriterFactory, conn: Connection
) -> None:
    # The writer encodes inet itself (faster than asyncpg): Postgres's own parser is the judge.
    addresses = ["203.0.113.9", "2001:db8::7", "10.1.2.3/8", "::ffff:1.2.3.4", "fe80::1", "0.0.0.0"]
    writer = await make_writer()
    for n, address in enumerate(addresses * 2):  # the second time from the cache
        writer.add(row(n, client_ip=address))
    await writer.flush()
    stored = [r[0] for r in await conn.fetch("SELECT client_ip::text FROM usage_logs ORDER BY id")]
    expected = [await conn.fetchval("SELECT $1::text::inet::text", a) for a in addresses]
    assert stored == expected * 2


async def test_quota_counts_admitted_requests_per_user_and_utc_day_across_flushes(
    make_writer: WriterFactory, conn: Connection, accounts: Accounts
) -> None:
    writer = await make_writer()
    alice = {"user_id": accounts.alice, "api_key_id": accounts.alice_key}
    bob = {"user_id": accounts.bob, "api_key_id": accounts.bob_key}
    late = T0.replace(hour=23, minute=59, second=59)  # the last second of DAY1
    writer.add(row(1, **alice))
    writer.add(row(2, **alice, success=False, status_code=400, error_type="VALIDATION_ERROR"))
    writer.add(row(3, **alice, success=False, status_code=503, error_type="SERVICE_UNAVAILABLE"))
    # Refused by the rate limiter: not counted, as the limiter does not count it.
    writer.add(row(4, **alice, success=False, status_code=429, error_type="RATE_LIMIT_ERROR"))
    writer.add(row(5, **alice, created_at=late))
    writer.add(row(6, **alice, created_at=late + timedelta(seconds=1)))  # DAY2
    writer.add(row(7, **bob))
    writer.add(row(8))  # anonymous
    writer.add(row(9, user_id=uuid.uuid4()))  # a user deleted meanwhile: row kept, no quota
    await writer.flush()
    assert await quota(conn) == {
        (accounts.alice, DAY1): 4,
        (accounts.alice, DAY2): 1,
        (accounts.bob, DAY1): 1,
    }
    writer.add(row(10, user_id=accounts.alice, api_key_id=accounts.alice_key2))
    writer.add(row(11, **bob, created_at=T0 + timedelta(days=1)))
    await writer.flush()
    assert await quota(conn) == {
        (accounts.alice, DAY1): 5,
        (accounts.alice, DAY2): 1,
        (accounts.bob, DAY1): 1,
        (accounts.bob, DAY2): 1,
    }
    assert await conn.fetchval("SELECT count(*) FROM usage_logs") == 11


@pytest.mark.parametrize("resolution", [60.0, 0.0])
async def test_last_used_is_the_latest_use_and_never_goes_back(
    make_writer: WriterFactory, conn: Connection, accounts: Accounts, resolution: float
) -> None:
    async def last_used() -> dict[uuid.UUID, datetime | None]:
        found = await conn.fetch("SELECT id, last_used FROM api_keys")
        return {r["id"]: r["last_used"] for r in found}

    writer = await make_writer(last_used_resolution_seconds=resolution)
    alice = {"user_id": accounts.alice, "api_key_id": accounts.alice_key}
    writer.add(row(1, **alice, created_at=T0 + timedelta(minutes=3)))
    writer.add(row(2, **alice, created_at=T0 + timedelta(minutes=1)))
    # A refused request still used the key.
    writer.add(
        row(3, user_id=accounts.bob, api_key_id=accounts.bob_key, status_code=429, success=False)
    )
    writer.add(row(4, api_key_id=uuid.uuid4()))  # a key deleted meanwhile
    await writer.flush()
    assert await last_used() == {
        accounts.alice_key: T0 + timedelta(minutes=3),
        accounts.alice_key2: None,
        accounts.bob_key: row(3).created_at,
    }
    # A late row (a backlog after an outage, another replica's) must not move it back.
    writer.add(row(5, **alice, created_at=T0 + timedelta(minutes=2)))
    writer.add(
        row(
            6, user_id=accounts.bob, api_key_id=accounts.bob_key, created_at=T0 + timedelta(hours=1)
        )
    )
    await writer.flush()
    assert await last_used() == {
        accounts.alice_key: T0 + timedelta(minutes=3),
        accounts.alice_key2: None,
        accounts.bob_key: T0 + timedelta(hours=1),
    }
    # Half a minute later: within the default resolution, the row is left alone.
    later = T0 + timedelta(minutes=3, seconds=30)
    writer.add(row(7, **alice, created_at=later))
    await writer.flush()
    moved = (await last_used())[accounts.alice_key]
    assert moved == (later if resolution == 0 else T0 + timedelta(minutes=3))


async def test_rows_postgres_rejects_are_dropped_alone(
    make_writer: WriterFactory,
    conn: Connection,
    accounts: Accounts,
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    writer = await make_writer(registry=registry, flush_interval_seconds=3600)
    bad: dict[int, dict[str, Any]] = {
        3: {"status_code": -70_000},  # out of smallint's range too
        6: {"client_ip": "not-an-ip"},  # asyncpg cannot encode it as inet
        8: {"status_code": 70_000},  # out of smallint's range
        9: {"request_id": None},  # NOT NULL
    }
    with caplog.at_level(logging.WARNING, logger="accounts.usage"):
        for n in range(12):
            writer.add(row(n, user_id=accounts.alice, **bad.get(n, {})))
        writer.add(row(12, created_at=None))  # not even a row's shape
        await writer.flush()
    good = [f"req-{n:06d}" for n in range(12) if n not in bad]
    assert await request_ids(conn) == good
    # The rejected rows were counted nowhere: the quota moved with the rows that landed.
    assert await quota(conn) == {(accounts.alice, DAY1): len(good)}
    assert (writer.written, writer.dropped, writer.buffered) == (len(good), 5, 0)
    assert registry.get_sample_value("signer_usage_rows_dropped_total", {"reason": "invalid"}) == 5
    rejected = [r.message for r in caplog.records if "Postgres rejected" in r.message]
    assert len(rejected) == 1
    assert rejected[0].startswith("dropped 4 usage rows Postgres rejected")
    assert sum("malformed" in r.message for r in caplog.records) == 1
    # The queue goes on.
    writer.add(row(20))
    await writer.flush()
    assert (await request_ids(conn))[-1] == "req-000020"


async def test_text_postgres_cannot_hold_is_stored_replaced(
    make_writer: WriterFactory, conn: Connection
) -> None:
    # A NUL in the URL's host or path made Postgres refuse the row, so the request left
    # no trace (issue 15.11); lone surrogates cannot even be encoded. Every text column.
    writer = await make_writer()
    nasty = "a\x00b\ud800c\udfffd"
    columns = ("target", "error_message", "error_type", "route", "dialect", "worker_id")
    writer.add(row(1, **{column: nasty for column in columns}, key_prefix=nasty, profile=nasty))
    writer.add(row(2, request_id="req-\x00-2", target="webcast.tiktok.com/\x00/x"))
    await writer.flush()
    selected = ", ".join(("request_id", "key_prefix", "profile", *columns))
    stored = await conn.fetch(f"SELECT {selected} FROM usage_logs ORDER BY id")
    assert len(stored) == 2
    assert set(stored[0].values()) - {"req-000001"} == {"a\ufffdb\ufffdc\ufffdd"}
    assert (stored[1]["request_id"], stored[1]["target"]) == (
        "req-\ufffd-2",
        "webcast.tiktok.com/\ufffd/x",
    )
    assert writer.dropped == 0


async def test_close_writes_what_is_buffered(make_writer: WriterFactory, conn: Connection) -> None:
    writer = await make_writer(flush_interval_seconds=3600)
    for n in range(30):
        writer.add(row(n))
    await writer.close()
    assert await conn.fetchval("SELECT count(*) FROM usage_logs") == 30
    assert (writer.written, writer.dropped, writer.buffered) == (30, 0, 0)
    writer.add(row(31))  # too late: counted, never raised
    assert (writer.written, writer.dropped) == (30, 1)


async def test_metrics(make_writer: WriterFactory) -> None:
    registry = CollectorRegistry()
    writer = await make_writer(registry=registry, batch_size=10, flush_interval_seconds=3600)
    for n in range(25):
        writer.add(row(n))
    await wait_for(lambda: writer.written == 20)

    def sample(name: str, labels: dict[str, str] | None = None) -> float | None:
        return registry.get_sample_value(name, labels or {})

    assert sample("signer_usage_rows_buffered") == 5
    await writer.flush()
    assert sample("signer_usage_rows_buffered") == 0
    assert sample("signer_usage_rows_written_total") == 25
    assert sample("signer_usage_postgres_up") == 1
    assert sample("signer_usage_flush_seconds_count") == 3
    for reason in ("buffer_full", "invalid", "shutdown"):
        assert sample("signer_usage_rows_dropped_total", {"reason": reason}) == 0


async def test_rows_wait_for_the_tables_to_exist(
    make_writer: WriterFactory, postgres: PostgresServer
) -> None:
    async with postgres.database() as url:  # not migrated yet
        writer = await make_writer(url)
        for n in range(5):
            writer.add(row(n))
        await asyncio.sleep(0.3)  # several failed attempts
        assert (writer.buffered, writer.written, writer.dropped) == (5, 0, 0)
        await apply_migrations(url)
        async with asyncio.timeout(10):
            await writer.flush()
        assert writer.postgres_up
        conn = await asyncpg.connect(url)
        try:
            assert await request_ids(conn) == [f"req-{n:06d}" for n in range(5)]
        finally:
            await conn.close()
        await writer.close()


async def test_add_is_fast_and_never_raises_while_postgres_is_unreachable(
    make_writer: WriterFactory, caplog: pytest.LogCaptureFixture
) -> None:
    nobody = f"postgresql://postgres@127.0.0.1:{free_port()}/signer"
    rows = [row(n) for n in range(20_000)]
    with caplog.at_level(logging.WARNING, logger="accounts.usage"):
        started = time.perf_counter()
        writer = await make_writer(nobody, batch_size=500, max_buffered=5000)
        assert time.perf_counter() - started < 1  # start() does not wait for Postgres
        await wait_for(lambda: any("cannot be written" in r.message for r in caplog.records))
        started = time.perf_counter()
        for usage in rows:
            writer.add(usage)
        adding = time.perf_counter() - started
        await asyncio.sleep(0.2)
        assert (writer.buffered, writer.dropped, writer.written) == (5000, 15_000, 0)
        assert not writer.postgres_up
        started = time.perf_counter()
        await writer.close(timeout=0.2)
        assert time.perf_counter() - started < 2
    # Generous: about 20 ms here; the point is that no call waits on the network.
    assert adding < 2, adding
    assert (writer.buffered, writer.dropped, writer.written) == (0, 20_000, 0)
    messages = [r.message for r in caplog.records]
    assert sum("usage buffer full" in m for m in messages) == 1
    assert sum("cannot be written to Postgres" in m for m in messages) == 1
    assert sum("closed with 5000 rows unwritten" in m for m in messages) == 1


async def test_flush_needs_a_started_writer(database_url: str) -> None:
    writer = UsageWriter(database_url)
    await writer.flush()  # nothing to write: fine
    writer.add(row(1))
    with pytest.raises(RuntimeError, match="start"):
        await writer.flush()
    await writer.close(timeout=0)
    assert writer.dropped == 1


def test_settings_refuse_a_batch_larger_than_the_buffer() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        UsageSettings(batch_size=10, max_buffered=5)
    assert all(field.description for field in UsageSettings.model_fields.values())
