"""The accounts repository on a real, migrated Postgres."""

from __future__ import annotations

import hashlib
import hmac
import statistics
from datetime import UTC, datetime, time, timedelta
from typing import Any, TypeAlias

import asyncpg
import pytest

from accounts import users as accounts
from accounts.apikeys import GeneratedKey, generate_key, key_prefix
from migrations import DatabaseSettings, migrate
from tests.postgres_server import PostgresServer

Connection: TypeAlias = "asyncpg.Connection[Any]"


@pytest.fixture
def conn(migrated_conn: Connection) -> Connection:
    return migrated_conn


async def test_create_and_get_a_user(conn: Connection) -> None:
    user = await accounts.create_user(conn, " Ada@Example.com ", "api_key")
    assert (user.email, user.tier, user.is_active, user.active_keys) == (
        "Ada@Example.com",
        "api_key",
        True,
        0,
    )
    assert user.last_login is None
    found = await accounts.get_user(conn, "ada@EXAMPLE.com")
    assert found == user
    assert await accounts.get_user(conn, "nobody@example.com") is None
    assert user.to_json()["email"] == "Ada@Example.com"


async def test_an_email_is_taken_whatever_its_case(conn: Connection) -> None:
    await accounts.create_user(conn, "ada@example.com")
    with pytest.raises(accounts.DuplicateUser, match="already exists"):
        await accounts.create_user(conn, "ADA@example.com")


@pytest.mark.parametrize("email", ["", "ada", "@example.com", "ada@", "a b@example.com", 5])
async def test_malformed_emails_are_refused(conn: Connection, email: Any) -> None:
    with pytest.raises(accounts.InvalidInput):
        await accounts.create_user(conn, email)


async def test_tiers_are_checked_and_can_change(conn: Connection) -> None:
    with pytest.raises(accounts.InvalidInput, match="tier"):
        await accounts.create_user(conn, "ada@example.com", "gold")
    await accounts.create_user(conn, "ada@example.com")
    user = await accounts.set_tier(conn, "ADA@example.com", "api_key")
    assert user.tier == "api_key"
    with pytest.raises(accounts.UnknownUser):
        await accounts.set_tier(conn, "bob@example.com", "free")
    with pytest.raises(accounts.InvalidInput):
        await accounts.set_tier(conn, "ada@example.com", "gold")


async def test_only_the_hash_of_a_key_is_stored(conn: Connection) -> None:
    await accounts.create_user(conn, "ada@example.com")
    info, key = await accounts.create_key(conn, "ada@example.com", "laptop", 10, 1000)
    assert key_prefix(key) == info.prefix
    assert (info.name, info.user_email, info.tier, info.per_minute, info.per_day) == (
        "laptop",
        "ada@example.com",
        "free",
        10,
        1000,
    )
    assert info.is_active
    assert info.last_used is None
    secret_part = key.split("_")[2]
    rows = await conn.fetch("SELECT k::text AS everything, key_hash FROM api_keys AS k")
    assert len(rows) == 1
    assert key not in rows[0]["everything"]
    assert secret_part not in rows[0]["everything"]
    assert rows[0]["key_hash"] == hashlib.sha256(key.encode()).hexdigest()


async def test_with_a_secret_the_stored_hash_is_an_hmac(conn: Connection) -> None:
    await accounts.create_user(conn, "ada@example.com")
    _, key = await accounts.create_key(conn, "ada@example.com", "ci", key_secret="server-secret")
    stored = await conn.fetchval("SELECT key_hash FROM api_keys")
    assert stored == hmac.new(b"server-secret", key.encode(), hashlib.sha256).hexdigest()


async def test_key_creation_refuses_bad_input(conn: Connection) -> None:
    with pytest.raises(accounts.UnknownUser):
        await accounts.create_key(conn, "nobody@example.com", "x")
    await accounts.create_user(conn, "ada@example.com")
    for per_minute in (0, -1, True, 2**31, "5"):
        with pytest.raises(accounts.InvalidInput, match="per_minute"):
            await accounts.create_key(conn, "ada@example.com", "x", per_minute)  # type: ignore[arg-type]
    with pytest.raises(accounts.InvalidInput, match="name"):
        await accounts.create_key(conn, "ada@example.com", "n" * 201)
    assert await conn.fetchval("SELECT count(*) FROM api_keys") == 0


async def test_a_prefix_clash_draws_again_even_inside_a_transaction(
    conn: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    await accounts.create_user(conn, "ada@example.com")
    taken, _ = await accounts.create_key(conn, "ada@example.com", "first")
    # The generator is made to repeat a prefix once (48 random bits never do in a test).
    draws = iter([GeneratedKey(taken.prefix, f"{taken.prefix}_{'a' * 32}"), generate_key()])
    monkeypatch.setattr(accounts, "generate_key", lambda: next(draws))
    async with conn.transaction():
        info, key = await accounts.create_key(conn, "ada@example.com", "second")
    assert info.prefix != taken.prefix
    assert key_prefix(key) == info.prefix
    assert await conn.fetchval("SELECT count(*) FROM api_keys") == 2


async def test_listing_keys_never_shows_a_hash(conn: Connection) -> None:
    await accounts.create_user(conn, "ada@example.com")
    await accounts.create_user(conn, "bob@example.com", "api_key")
    first, _ = await accounts.create_key(conn, "ada@example.com", "one")
    second, _ = await accounts.create_key(conn, "bob@example.com", "two", per_day=5)
    everything = await accounts.list_keys(conn)
    assert [key.prefix for key in everything] == [first.prefix, second.prefix]
    bobs = await accounts.list_keys(conn, "BOB@example.com")
    assert [(key.prefix, key.tier, key.per_day) for key in bobs] == [(second.prefix, "api_key", 5)]
    hashes = {row["key_hash"] for row in await conn.fetch("SELECT key_hash FROM api_keys")}
    for key in everything:
        assert not hashes & {str(value) for value in key.to_json().values()}
    with pytest.raises(accounts.UnknownUser):
        await accounts.list_keys(conn, "carol@example.com")
    users = await accounts.list_users(conn)
    assert [(user.email, user.active_keys) for user in users] == [
        ("ada@example.com", 1),
        ("bob@example.com", 1),
    ]


async def test_revoking_a_key(conn: Connection) -> None:
    await accounts.create_user(conn, "ada@example.com")
    info, key = await accounts.create_key(conn, "ada@example.com", "one")
    assert await accounts.revoke_key(conn, info.prefix)
    assert await accounts.revoke_key(conn, key)  # a whole key names its prefix; twice is fine
    assert [k.is_active for k in await accounts.list_keys(conn)] == [False]
    assert not await accounts.revoke_key(conn, "sk_00000000")
    with pytest.raises(accounts.InvalidInput):
        await accounts.revoke_key(conn, "not a prefix")


async def test_check_schema_wants_every_migration(postgres: PostgresServer) -> None:
    async with postgres.database() as url:
        conn = await asyncpg.connect(url)
        try:
            with pytest.raises(accounts.SchemaNotReady, match="signer migrate"):
                await accounts.check_schema(conn)
            await migrate(DatabaseSettings(DATABASE_URL=url))
            await accounts.check_schema(conn)
            await conn.execute("DELETE FROM schema_migrations WHERE name = '0002_usage.sql'")
            with pytest.raises(accounts.SchemaNotReady, match=r"0002_usage\.sql"):
                await accounts.check_schema(conn)
        finally:
            await conn.close()


async def add_usage(
    conn: Connection, user_id: Any, at: datetime, times: list[float], failures: int = 0
) -> None:
    rows = [
        ("req", user_id, "/api/signature", "structured", "t", index >= failures, 200, ms, at)
        for index, ms in enumerate(times)
    ]
    await conn.executemany(
        "INSERT INTO usage_logs (request_id, user_id, route, dialect, target, success,"
        " status_code, response_time_ms, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        rows,
    )


def percentile_cont(values: list[float], fraction: float) -> float:
    """Postgres's percentile_cont: linear interpolation between the closest ranks."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


async def test_usage_report_per_utc_day(conn: Connection) -> None:
    ada = await accounts.create_user(conn, "ada@example.com")
    bob = await accounts.create_user(conn, "bob@example.com")
    today = datetime.now(UTC).date()
    midnight = datetime.combine(today, time(), tzinfo=UTC)
    ada_today = [float(ms) for ms in range(1, 101)]
    await add_usage(conn, ada.id, midnight + timedelta(seconds=1), ada_today, failures=10)
    await add_usage(conn, ada.id, midnight - timedelta(days=2), [5.0, 7.0])
    await add_usage(conn, bob.id, midnight + timedelta(hours=1), [1000.0])
    # Outside the window: a week back, and tomorrow.
    await add_usage(conn, ada.id, midnight - timedelta(days=7), [1.0])
    await add_usage(conn, ada.id, midnight + timedelta(days=1), [1.0])

    report = await accounts.usage_report(conn, user_email="ADA@example.com", days=3)
    assert [day.day for day in report] == [today - timedelta(days=2 - n) for n in range(3)]
    oldest, empty, last = report
    assert (oldest.requests, oldest.successes, oldest.p50_ms) == (2, 2, 6.0)
    assert (empty.requests, empty.success_rate, empty.p50_ms, empty.p95_ms) == (0, None, None, None)
    assert (last.requests, last.successes, last.success_rate) == (100, 90, 0.9)
    assert last.p50_ms == pytest.approx(statistics.median(ada_today))
    assert last.p95_ms == pytest.approx(percentile_cont(ada_today, 0.95))

    everyone = await accounts.usage_report(conn, user_email=None, days=1)
    assert [(day.requests, day.successes) for day in everyone] == [(101, 91)]
    assert everyone[0].to_json()["day"] == today.isoformat()

    with pytest.raises(accounts.UnknownUser):
        await accounts.usage_report(conn, user_email="carol@example.com", days=3)
    for days in (0, -1, accounts.MAX_REPORT_DAYS + 1):
        with pytest.raises(accounts.InvalidInput, match="days"):
            await accounts.usage_report(conn, user_email=None, days=days)
