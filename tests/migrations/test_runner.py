"""The migration runner and the schema on a real Postgres."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

import asyncpg
import pytest

from accounts.tiers import TIERS
from migrations import (
    MIGRATION_LOCK_KEY,
    DatabaseSettings,
    MigrationChecksumError,
    MigrationFile,
    apply_migrations,
    apply_migrations_on,
    migrate,
    migration_files,
)
from migrations.partitions import partition_name, utc_today

Connection: TypeAlias = "asyncpg.Connection[Any]"

ALL = [file.name for file in migration_files()]

# Run in a separate interpreter: prints the names it applied as JSON.
APPLY_SCRIPT = """
import asyncio, json, sys
from migrations import apply_migrations
print(json.dumps(asyncio.run(apply_migrations(sys.argv[1]))))
"""


async def waiting_for_lock(conn: Connection) -> int:
    """How many sessions wait for the migration lock (a bigint key shows as two oids)."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND classid::bigint = $1 AND objid::bigint = $2",
        MIGRATION_LOCK_KEY >> 32,
        MIGRATION_LOCK_KEY & 0xFFFFFFFF,
    )
    return count


async def wait_until_waiting(conn: Connection, expected: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while await waiting_for_lock(conn) < expected:
        assert time.monotonic() < deadline, "the runners never queued on the lock"
        await asyncio.sleep(0.02)


async def recorded(conn: Connection) -> list[str]:
    return [r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations ORDER BY 1")]


async def lock_held(conn: Connection) -> bool:
    held: bool = await conn.fetchval(
        "SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory'"
        " AND classid::bigint = $1 AND objid::bigint = $2",
        MIGRATION_LOCK_KEY >> 32,
        MIGRATION_LOCK_KEY & 0xFFFFFFFF,
    )
    return held


def test_files_are_read_from_the_package_in_numeric_order() -> None:
    files = migration_files()
    assert [file.name for file in files][:2] == ["0001_accounts.sql", "0002_usage.sql"]
    assert [file.number for file in files] == sorted(file.number for file in files)
    assert all(len(file.checksum) == 64 for file in files)
    assert "CREATE TABLE users" in files[0].sql


def test_numbers_sort_as_numbers_and_line_endings_do_not_count() -> None:
    tenth, second = MigrationFile("10_b.sql", "x"), MigrationFile("2_a.sql", "x")
    assert sorted([tenth, second], key=lambda f: f.number) == [second, tenth]
    assert MigrationFile("1_a.sql", "a\r\nb").checksum == MigrationFile("1_a.sql", "a\nb").checksum


async def test_migrations_apply_to_an_empty_database(database_url: str, conn: Connection) -> None:
    assert await apply_migrations(database_url) == ALL
    assert await recorded(conn) == ALL
    tables = {
        r["tablename"]
        for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    }
    assert {"users", "api_keys", "usage_logs", "quota_usage", "schema_migrations"} <= tables
    stored = await conn.fetch("SELECT name, checksum, applied_at FROM schema_migrations")
    assert {r["name"]: r["checksum"] for r in stored} == {
        f.name: f.checksum for f in migration_files()
    }
    assert all(r["applied_at"] > datetime.now(UTC) - timedelta(minutes=5) for r in stored)
    assert not await lock_held(conn)


async def test_running_again_applies_nothing(database_url: str, conn: Connection) -> None:
    await apply_migrations(database_url)
    before = await conn.fetch("SELECT * FROM schema_migrations ORDER BY name")
    assert await apply_migrations(database_url) == []
    assert await conn.fetch("SELECT * FROM schema_migrations ORDER BY name") == before


async def test_two_runners_at_once_apply_each_file_once(
    database_url: str, conn: Connection
) -> None:
    first, second = await asyncpg.connect(database_url), await asyncpg.connect(database_url)
    # Hold the lock until both runners queue on it, so they really do start together.
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    runs = asyncio.gather(apply_migrations_on(first), apply_migrations_on(second))
    await wait_until_waiting(conn, 2)
    await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    results = await runs
    await first.close()
    await second.close()
    assert sorted(results[0] + results[1]) == ALL
    assert [] in results  # one did all the work, the other found nothing left
    assert await recorded(conn) == ALL


async def test_two_processes_at_once_apply_each_file_once(
    database_url: str, conn: Connection
) -> None:
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            APPLY_SCRIPT,
            database_url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    await wait_until_waiting(conn, 2)
    await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    applied: list[str] = []
    for process in processes:
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()
        applied += json.loads(out)
    assert sorted(applied) == ALL
    assert await recorded(conn) == ALL


async def test_an_edited_applied_file_fails_clearly_and_applies_nothing(
    conn: Connection,
) -> None:
    files = migration_files()
    await apply_migrations_on(conn, files[:1])
    edited = MigrationFile(files[0].name, files[0].sql + "\n-- an afterthought\n")
    with pytest.raises(MigrationChecksumError, match=f"{files[0].name} was changed"):
        await apply_migrations_on(conn, [edited, *files[1:]])
    assert await recorded(conn) == [files[0].name]  # the next file was not applied either
    assert not await lock_held(conn)


async def test_a_changed_checksum_in_the_database_fails(database_url: str) -> None:
    await apply_migrations(database_url)
    tamper = await asyncpg.connect(database_url)
    await tamper.execute("UPDATE schema_migrations SET checksum = 'x' WHERE name = $1", ALL[-1])
    await tamper.close()
    with pytest.raises(MigrationChecksumError, match="restore it"):
        await apply_migrations(database_url)


async def test_a_failing_file_is_rolled_back_whole_and_not_recorded(conn: Connection) -> None:
    broken = MigrationFile("0999_broken.sql", "CREATE TABLE half_done (id int); SELECT 1 / 0;")
    with pytest.raises(asyncpg.DivisionByZeroError):
        await apply_migrations_on(conn, [*migration_files(), broken])
    assert await recorded(conn) == ALL  # the files before it stay applied
    assert await conn.fetchval("SELECT to_regclass('half_done')") is None
    assert not await lock_held(conn)
    assert await apply_migrations_on(conn) == []


async def test_names_recorded_but_unknown_are_let_be(conn: Connection) -> None:
    # A replica of the previous version meeting a database the next version migrated.
    files = migration_files()
    extra = MigrationFile("0999_from_the_future.sql", "CREATE TABLE future (id int);")
    await apply_migrations_on(conn, [*files, extra])
    assert await apply_migrations_on(conn, files) == []


async def test_migrate_applies_and_creates_partitions(database_url: str) -> None:
    settings = DatabaseSettings(DATABASE_URL=database_url, partition_ahead_days=2)
    today = utc_today()
    days = [partition_name(today + timedelta(days=n)) for n in range(3)]
    assert await migrate(settings) == [f"applied {name}" for name in ALL] + [
        f"created partition {name}" for name in days
    ]
    assert await migrate(settings) == []


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db:5432/x")
    monkeypatch.setenv("SIGNER_USAGE_RETENTION_DAYS", "7")
    settings = DatabaseSettings()
    assert settings.database_url == "postgresql://u@db:5432/x"
    assert settings.usage_retention_days == 7
    assert settings.partition_ahead_days == 3
    assert all(field.description for field in DatabaseSettings.model_fields.values())


# The schema


@pytest.fixture
async def schema(database_url: str, conn: Connection) -> Connection:
    """A connection to a database migrated as `signer migrate` leaves it."""
    await migrate(DatabaseSettings(DATABASE_URL=database_url))
    return conn


async def add_user(conn: Connection, email: str, tier: str = "free") -> uuid.UUID:
    user_id: uuid.UUID = await conn.fetchval(
        "INSERT INTO users (email, tier) VALUES ($1, $2) RETURNING id", email, tier
    )
    return user_id


async def test_emails_are_unique_whatever_their_case(schema: Connection) -> None:
    user = await add_user(schema, "Someone@Example.com")
    row = await schema.fetchrow("SELECT * FROM users WHERE id = $1", user)
    assert row is not None
    assert row["email"] == "Someone@Example.com"
    assert row["is_active"] is True
    assert row["last_login"] is None
    assert row["created_at"] is not None
    with pytest.raises(asyncpg.UniqueViolationError):
        await add_user(schema, "someone@example.COM")
    found = await schema.fetchval(
        "SELECT id FROM users WHERE lower(email) = lower($1)", "SOMEONE@example.com"
    )
    assert found == user


async def test_tier_is_free_or_api_key(schema: Connection) -> None:
    for n, tier in enumerate(TIERS):  # the table takes every tier of the code, no other
        assert await add_user(schema, f"{n}@example.com", tier)
    with pytest.raises(asyncpg.CheckViolationError):
        await add_user(schema, "b@example.com", "premium")


async def test_api_keys_unique_by_hash_and_prefix(schema: Connection) -> None:
    user = await add_user(schema, "keys@example.com")
    insert = (
        "INSERT INTO api_keys (user_id, key_hash, prefix, name, per_minute)"
        " VALUES ($1, $2, $3, 'laptop', $4) RETURNING *"
    )
    key = await schema.fetchrow(insert, user, "a" * 64, "sk_live_AbCd1234", 60)
    assert key is not None
    assert key["is_active"] is True
    assert key["per_day"] is None
    assert key["last_used"] is None
    with pytest.raises(asyncpg.UniqueViolationError):
        await schema.execute(insert, user, "a" * 64, "sk_live_Other123", None)
    with pytest.raises(asyncpg.UniqueViolationError):
        await schema.execute(insert, user, "b" * 64, "sk_live_AbCd1234", None)
    with pytest.raises(asyncpg.CheckViolationError):  # a raw key, not its digest
        await schema.execute(insert, user, "sk_live_AbCd1234xyz", "sk_live_Zz", None)
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await schema.execute(insert, uuid.uuid4(), "c" * 64, "sk_live_Nobody12", None)
    await schema.execute("DELETE FROM users WHERE id = $1", user)
    assert await schema.fetchval("SELECT count(*) FROM api_keys") == 0


async def test_usage_rows_for_today_land_in_todays_partition(schema: Connection) -> None:
    user = await add_user(schema, "usage@example.com")
    now = datetime.now(UTC)
    signed = {
        "created_at": now,
        "request_id": "req-1",
        "user_id": user,
        "api_key_id": None,
        "key_prefix": "sk_live_AbCd1234",
        "client_ip": "203.0.113.9",
        "route": "/api/signature",
        "dialect": "ours",
        "target": "webcast.tiktok.com/webcast/im/fetch/",
        "success": True,
        "status_code": 200,
        "error_type": None,
        "error_message": None,
        "response_time_ms": 3.5,
        "queue_wait_ms": 0.4,
        "worker_id": "worker-1",
        "profile": "win-chrome-1",
    }
    anonymous_failure = signed | {
        "request_id": "req-2",
        "user_id": None,
        "key_prefix": None,
        "client_ip": None,
        "route": "/signature",
        "dialect": "tiktok-signature",
        "target": "https://www.tiktok.com/@someone/live",
        "success": False,
        "status_code": 504,
        "error_type": "deadline",
        "error_message": "too late",
        "queue_wait_ms": None,
        "worker_id": None,
        "profile": None,
    }
    # COPY, as the usage writer sends its batches.
    await schema.copy_records_to_table(
        "usage_logs",
        records=[tuple(row.values()) for row in (signed, anonymous_failure)],
        columns=list(signed),
    )
    stored = await schema.fetch("SELECT *, tableoid::regclass::text AS part FROM usage_logs")
    assert {r["part"] for r in stored} == {partition_name(now.date())}
    assert sorted(r["request_id"] for r in stored) == ["req-1", "req-2"]
    assert len({r["id"] for r in stored}) == 2


async def test_usage_for_a_day_without_partition_is_kept(schema: Connection) -> None:
    far = datetime.now(UTC) + timedelta(days=400)
    part = await schema.fetchval(
        "INSERT INTO usage_logs (created_at, request_id, route, dialect, target, success,"
        " status_code, response_time_ms) VALUES ($1, 'r', '/x', 'ours', 't', true, 200, 1)"
        " RETURNING tableoid::regclass::text",
        far,
    )
    assert part == "usage_logs_default"


async def test_quota_usage_one_row_per_user_and_day(schema: Connection) -> None:
    user = await add_user(schema, "quota@example.com")
    upsert = (
        "INSERT INTO quota_usage (user_id, date, request_count) VALUES ($1, $2, $3)"
        " ON CONFLICT (user_id, date) DO UPDATE"
        " SET request_count = quota_usage.request_count + EXCLUDED.request_count"
        " RETURNING request_count"
    )
    today = utc_today()
    assert await schema.fetchval(upsert, user, today, 5) == 5
    assert await schema.fetchval(upsert, user, today, 2) == 7
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await schema.execute(upsert, uuid.uuid4(), today, 1)
