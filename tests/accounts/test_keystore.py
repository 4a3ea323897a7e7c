"""The hot-path key look-up on a real Postgres: answers, caching, single flight, outages.

Queries are counted with asyncpg's own query logger on every pooled connection, so the
tests see exactly when Postgres is asked.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

import asyncpg
import pytest
from asyncpg.connection import LoggedQuery

from accounts import users as accounts
from accounts.apikeys import generate_key, hash_key
from accounts.keystore import AccountsUnavailable, KeyRecord, KeyStore
from accounts.settings import AccountSettings

Connection: TypeAlias = "asyncpg.Connection[Any]"

LONG = 60.0  # a TTL no test outlives
SHORT = 0.4


@pytest.fixture
async def conn(migrated_url: str) -> AsyncIterator[Connection]:
    connection = await asyncpg.connect(migrated_url)
    yield connection
    await connection.close()


class QueryCount:
    """Key look-ups Postgres has run through the pools this counter is installed on."""

    def __init__(self) -> None:
        self.lookups = 0

    def log(self, query: LoggedQuery) -> None:
        if "FROM api_keys AS k JOIN users" in query.query:
            self.lookups += 1

    async def install(self, connection: Connection) -> None:
        connection.add_query_logger(self.log)

    async def settled(self) -> int:
        # The logger is called with call_soon: let it run before reading.
        await asyncio.sleep(0.01)
        return self.lookups


@pytest.fixture
def queries() -> QueryCount:
    return QueryCount()


@pytest.fixture
async def pool(migrated_url: str, queries: QueryCount) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(
        migrated_url, min_size=0, max_size=8, init=queries.install
    ) as created:
        yield created


def settings(
    valid_ttl: float = LONG,
    refused_ttl: float = LONG,
    secret: str = "",
    timeout: float = 2.0,
    stale_ttl: float = 3600.0,
) -> AccountSettings:
    # Every field given: the environment running the tests must not change them.
    return AccountSettings(
        key_secret=secret,
        key_cache_ttl=valid_ttl,
        key_negative_ttl=refused_ttl,
        key_stale_ttl=stale_ttl,
        key_lookup_timeout=timeout,
        admin_token="",
    )


def sent(store: KeyStore, outcome: str, reason: str) -> float:
    """Look-ups `store` sent to Postgres with that outcome and reason (its counter; the
    stores here have no registry to read it from)."""
    return float(store.lookups.labels(outcome, reason)._value.get())


async def new_key(
    conn: Connection,
    email: str = "ada@example.com",
    tier: str = "free",
    secret: str = "",
    **limits: int,
) -> tuple[accounts.ApiKeyInfo, str]:
    if await accounts.get_user(conn, email) is None:
        await accounts.create_user(conn, email, tier)
    return await accounts.create_key(conn, email, "test", key_secret=secret, **limits)


async def test_a_valid_key_is_found_and_then_served_from_memory(
    conn: Connection, pool: asyncpg.Pool, queries: QueryCount
) -> None:
    info, key = await new_key(conn, tier="api_key", per_minute=7, per_day=700)
    user = await accounts.get_user(conn, "ada@example.com")
    assert user is not None
    store = KeyStore(pool, settings())
    expected = KeyRecord(info.id, user.id, "api_key", info.prefix, 7, 700)
    assert await store.lookup(key) == expected
    for _ in range(50):
        assert await store.lookup(key) == expected
    assert await queries.settled() == 1


async def test_unknown_and_malformed_keys(
    conn: Connection, pool: asyncpg.Pool, queries: QueryCount
) -> None:
    info, key = await new_key(conn)
    store = KeyStore(pool, settings())
    malformed = ["", "apikey", info.prefix, key + "!", key[:-1], "sk_" + "A" * 5000, key.upper()]
    for text in malformed:
        assert await store.lookup(text) is None
    assert await queries.settled() == 0  # never asked Postgres
    same_prefix = f"{info.prefix}_{'A' * 32}"
    assert await store.lookup(same_prefix) is None  # right prefix, wrong secret
    assert await store.lookup(generate_key().key) is None
    assert await queries.settled() == 2


async def test_revoked_keys_and_inactive_users_are_refused(
    conn: Connection, pool: asyncpg.Pool
) -> None:
    revoked, revoked_key = await new_key(conn, "ada@example.com")
    _, inactive_key = await new_key(conn, "bob@example.com")
    _, fine_key = await new_key(conn, "carol@example.com")
    await accounts.revoke_key(conn, revoked.prefix)
    await conn.execute("UPDATE users SET is_active = false WHERE email = 'bob@example.com'")
    store = KeyStore(pool, settings())
    assert await store.lookup(revoked_key) is None
    assert await store.lookup(inactive_key) is None
    assert await store.lookup(fine_key) is not None


async def test_a_cached_key_outlives_its_revocation_until_the_ttl(
    conn: Connection, pool: asyncpg.Pool, queries: QueryCount
) -> None:
    info, key = await new_key(conn)
    store = KeyStore(pool, settings(valid_ttl=SHORT))
    assert await store.lookup(key) is not None
    cached_at = time.monotonic()
    await conn.execute("UPDATE api_keys SET is_active = false WHERE prefix = $1", info.prefix)
    assert await store.lookup(key) is not None  # the cached answer, as documented
    assert await queries.settled() == 1
    await asyncio.sleep(SHORT - (time.monotonic() - cached_at) + 0.05)
    assert await store.lookup(key) is None
    assert await queries.settled() == 2


async def test_a_refused_key_is_remembered_briefly(
    conn: Connection, pool: asyncpg.Pool, queries: QueryCount
) -> None:
    await accounts.create_user(conn, "ada@example.com")
    new = generate_key()
    store = KeyStore(pool, settings(refused_ttl=SHORT))
    for _ in range(20):
        assert await store.lookup(new.key) is None
    refused_at = time.monotonic()
    assert await queries.settled() == 1
    # The key comes into existence behind the cache's back.
    await conn.execute(
        "INSERT INTO api_keys (user_id, key_hash, prefix) SELECT id, $1, $2 FROM users",
        hash_key(new.key),
        new.prefix,
    )
    assert await store.lookup(new.key) is None
    await asyncio.sleep(SHORT - (time.monotonic() - refused_at) + 0.05)
    assert await store.lookup(new.key) is not None
    assert await queries.settled() == 2


async def test_forget_drops_every_cached_answer(
    conn: Connection, pool: asyncpg.Pool, queries: QueryCount
) -> None:
    info, key = await new_key(conn)
    unknown = generate_key().key
    store = KeyStore(pool, settings())
    assert await store.lookup(key) is not None
    assert await store.lookup(unknown) is None
    assert store.cached_entries == 2
    await conn.execute("UPDATE users SET tier = 'api_key'")
    store.forget()
    assert store.cached_entries == 0
    record = await store.lookup(key)
    assert record is not None
    assert record.tier == "api_key"
    await accounts.revoke_key(conn, info.prefix)
    store.forget()
    assert await store.lookup(key) is None
    assert await queries.settled() == 4


async def test_a_burst_for_one_uncached_key_makes_one_query(
    conn: Connection, pool: asyncpg.Pool, queries: QueryCount
) -> None:
    _, key = await new_key(conn)
    unknown = generate_key().key
    store = KeyStore(pool, settings())
    results = await asyncio.gather(*(store.lookup(key) for _ in range(100)))
    assert len(set(results)) == 1
    assert results[0] is not None
    refused = await asyncio.gather(*(store.lookup(unknown) for _ in range(100)))
    assert refused == [None] * 100
    assert await queries.settled() == 2


@asynccontextmanager
async def api_keys_locked(migrated_url: str) -> AsyncIterator[Connection]:
    """Hold a lock that makes every key look-up wait, until the block ends."""
    holder = await asyncpg.connect(migrated_url)
    transaction = holder.transaction()
    await transaction.start()
    await holder.execute("LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE")
    try:
        yield holder
    finally:
        await transaction.rollback()
        await holder.close()


async def wait_until_blocked(conn: Connection) -> None:
    for _ in range(200):
        if await conn.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the look-up never waited on the lock")


async def test_a_slow_postgres_means_unavailable_for_every_waiter_and_nothing_cached(
    conn: Connection, pool: asyncpg.Pool, migrated_url: str, queries: QueryCount
) -> None:
    _, key = await new_key(conn)
    store = KeyStore(pool, settings(timeout=0.3))
    async with api_keys_locked(migrated_url):
        started = time.monotonic()
        outcomes = await asyncio.gather(
            *(store.lookup(key) for _ in range(10)), return_exceptions=True
        )
        assert time.monotonic() - started < 2
    assert all(isinstance(outcome, AccountsUnavailable) for outcome in outcomes)
    assert await store.lookup(key) is not None  # the failure was not cached
    assert await queries.settled() == 2


async def test_postgres_down_serves_cached_keys_only(conn: Connection, migrated_url: str) -> None:
    _, cached_key = await new_key(conn, "ada@example.com")
    _, other_key = await new_key(conn, "bob@example.com")
    closing = await asyncpg.create_pool(migrated_url, min_size=0, max_size=2)
    store = KeyStore(closing, settings())
    assert await store.lookup(cached_key) is not None
    await closing.close()
    assert await store.lookup(cached_key) is not None
    with pytest.raises(AccountsUnavailable):
        await store.lookup(other_key)
    assert await store.lookup("not a key") is None


async def test_a_waiter_giving_up_does_not_cancel_the_others(
    conn: Connection, pool: asyncpg.Pool, migrated_url: str, queries: QueryCount
) -> None:
    _, key = await new_key(conn)
    store = KeyStore(pool, settings())
    async with api_keys_locked(migrated_url):
        impatient = asyncio.create_task(store.lookup(key))
        patient = asyncio.create_task(store.lookup(key))
        await wait_until_blocked(conn)
        impatient.cancel()
        await asyncio.sleep(0.05)
    assert impatient.cancelled()
    assert await patient is not None
    assert await queries.settled() == 1


async def test_an_answer_begun_before_forget_is_not_cached(
    conn: Connection, pool: asyncpg.Pool, migrated_url: str
) -> None:
    info, key = await new_key(conn)
    store = KeyStore(pool, settings())
    async with api_keys_locked(migrated_url):
        in_flight = asyncio.create_task(store.lookup(key))
        await wait_until_blocked(conn)
        store.forget()
    assert await in_flight is not None
    await accounts.revoke_key(conn, info.prefix)
    assert await store.lookup(key) is None


async def test_hmac_keys_need_the_same_secret(conn: Connection, pool: asyncpg.Pool) -> None:
    _, key = await new_key(conn, secret="server-secret")
    assert await KeyStore(pool, settings(secret="server-secret")).lookup(key) is not None
    assert await KeyStore(pool, settings()).lookup(key) is None
    assert await KeyStore(pool, settings(secret="another-secret")).lookup(key) is None


async def test_a_zero_ttl_asks_postgres_every_time(
    conn: Connection, pool: asyncpg.Pool, queries: QueryCount
) -> None:
    _, key = await new_key(conn)
    store = KeyStore(pool, settings(valid_ttl=0, refused_ttl=0))
    for _ in range(3):
        assert await store.lookup(key) is not None
    assert store.cached_entries == 0
    assert await queries.settled() == 3


class HookCalls:
    """A `before_query` hook that counts its calls and refuses the first `refuse` ones."""

    def __init__(self, refuse: int = 0) -> None:
        self.calls = 0
        self.refuse = refuse

    async def __call__(self) -> None:
        self.calls += 1
        await asyncio.sleep(0.05)  # as a Redis round trip would: others join meanwhile
        if self.calls <= self.refuse:
            raise RuntimeError("over budget")


async def test_only_the_request_that_starts_a_query_runs_the_hook(
    conn: Connection, pool: asyncpg.Pool, queries: QueryCount
) -> None:
    # Issue 9: every concurrent request for an uncached key was counted against the
    # address's look-up budget before the one shared query, so a real key got 429.
    _, key = await new_key(conn, tier="api_key")
    store = KeyStore(pool, settings())
    hook = HookCalls()
    results = await asyncio.gather(*(store.lookup(key, before_query=hook) for _ in range(64)))
    assert all(result is not None for result in results)
    assert hook.calls == 1
    assert await queries.settled() == 1
    await store.lookup(key, before_query=hook)  # cached: no hook
    assert hook.calls == 1


async def test_waiters_ask_again_when_the_starters_hook_refuses(
    conn: Connection, pool: asyncpg.Pool, queries: QueryCount
) -> None:
    _, key = await new_key(conn)
    store = KeyStore(pool, settings())
    refusing, counting = HookCalls(refuse=1), HookCalls()
    first = asyncio.create_task(store.lookup(key, before_query=refusing))
    await asyncio.sleep(0)  # the first has started the query: the others wait on it
    others = [asyncio.create_task(store.lookup(key, before_query=counting)) for _ in range(9)]
    with pytest.raises(RuntimeError, match="over budget"):
        await first
    assert all(result is not None for result in await asyncio.gather(*others))
    assert (refusing.calls, counting.calls) == (1, 1)  # one waiter started the next query
    assert await queries.settled() == 1


async def test_a_key_in_use_is_refreshed_before_its_entry_expires(
    conn: Connection, pool: asyncpg.Pool, queries: QueryCount
) -> None:
    _, key = await new_key(conn)
    ttl = 0.5
    store = KeyStore(pool, settings(valid_ttl=ttl))
    hook = HookCalls()
    started = time.monotonic()
    while time.monotonic() - started < 2.0:
        assert await store.lookup(key, before_query=hook) is not None
        await asyncio.sleep(0.02)
    # One query to learn the key, then refreshes in the background: no request missed the
    # cache (nor waited on Postgres) after the first, and none was counted again.
    assert hook.calls == 1
    assert sent(store, "valid", "uncached") == 1
    assert sent(store, "valid", "expired") == 0
    refreshes = sent(store, "valid", "refresh")
    assert 2 <= refreshes <= 2.0 / (0.8 * ttl) + 1  # about once per 0.8 TTL, never a flood
    assert await queries.settled() == 1 + refreshes


async def test_a_refresh_that_finds_the_key_revoked_drops_it(
    conn: Connection, pool: asyncpg.Pool
) -> None:
    info, key = await new_key(conn)
    store = KeyStore(pool, settings(valid_ttl=SHORT))
    assert await store.lookup(key) is not None
    await accounts.revoke_key(conn, info.prefix)
    await asyncio.sleep(SHORT * 0.85)  # past the refresh point, before the TTL
    assert await store.lookup(key) is not None  # the held answer; a refresh starts
    for _ in range(100):
        if sent(store, "refused", "refresh"):
            break
        await asyncio.sleep(0.01)
    assert await store.lookup(key) is None


async def test_postgres_away_serves_a_known_keys_last_answer_for_the_stale_ttl(
    conn: Connection, migrated_url: str
) -> None:
    # Issue 9 item 3: Postgres stopped for 20 s turned 49,689 requests of a valid key
    # into 429 and 223 into 503.
    _, known = await new_key(conn, "ada@example.com")
    _, unknown = await new_key(conn, "bob@example.com")
    closing = await asyncpg.create_pool(migrated_url, min_size=0, max_size=2)
    store = KeyStore(closing, settings(valid_ttl=0.2, stale_ttl=1.5))
    assert await store.lookup(known) is not None
    await closing.close()
    await asyncio.sleep(0.25)  # past the TTL: only a stale answer is left
    hook = HookCalls()
    for _ in range(30):
        assert await store.lookup(known, before_query=hook) is not None
    assert hook.calls == 0  # a known key's failed look-ups cost no look-up budget
    assert store.stale_answers._value.get() == 30
    assert sent(store, "failed", "expired") == 1  # asked once, then not for a second
    with pytest.raises(AccountsUnavailable):
        await store.lookup(unknown)  # never seen: still needs Postgres
    await asyncio.sleep(1.5)  # past the stale TTL too
    with pytest.raises(AccountsUnavailable):
        await store.lookup(known)


async def test_fresh_answers_again_once_postgres_answers(
    conn: Connection, pool: asyncpg.Pool, migrated_url: str
) -> None:
    info, key = await new_key(conn)
    store = KeyStore(pool, settings(valid_ttl=0.2, timeout=0.2))
    assert await store.lookup(key) is not None
    async with api_keys_locked(migrated_url):  # Postgres too slow to answer
        await asyncio.sleep(0.25)
        results = await asyncio.gather(*(store.lookup(key) for _ in range(10)))
        assert all(result is not None for result in results)
        assert store.stale_answers._value.get() == 10
    await accounts.revoke_key(conn, info.prefix)
    await asyncio.sleep(1.05)  # the retry pause after the failure
    assert await store.lookup(key) is None  # the revocation is seen again


def test_waiters_refused_with_the_starter_never_spin(migrated_url: str) -> None:
    # Found by bench/admission_bench.py: a waiter woken by a refused hook could find the
    # finished query still registered (its done callback not run yet), wait on it again
    # (done: no yield), be refused again, and spin forever with the event loop blocked.
    # Run in a thread of its own, so a spin fails the test instead of hanging it.
    outcome: list[object] = []

    async def scenario() -> None:
        async with asyncpg.create_pool(migrated_url, min_size=0, max_size=2) as own_pool:
            connection = await asyncpg.connect(migrated_url)
            _, key = await new_key(connection)
            await connection.close()
            store = KeyStore(own_pool, settings())
            refused = asyncio.Event()

            async def refuse_and_wake() -> None:
                await asyncio.sleep(0.01)
                # The late request wakes before the query's done callback runs.
                refused.set()
                raise RuntimeError("over budget")

            async def late() -> KeyRecord | None:
                await refused.wait()
                return await store.lookup(key, before_query=refuse_now)

            results = await asyncio.gather(
                store.lookup(key, before_query=refuse_and_wake),
                late(),
                return_exceptions=True,
            )
            outcome.extend(results)

    thread = threading.Thread(target=lambda: asyncio.run(scenario()), daemon=True)
    thread.start()
    thread.join(timeout=20)
    assert not thread.is_alive(), "look-ups spun after their hooks refused"
    assert len(outcome) == 2
    assert all(isinstance(result, RuntimeError) for result in outcome), outcome


async def refuse_now() -> None:
    """A hook over budget, refusing without an await (as a cached refusal would)."""
    raise RuntimeError("over budget")
