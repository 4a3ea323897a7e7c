"""The `/admin/...` routes over real HTTP on loopback, on a real Postgres."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from structlog.testing import capture_logs

from accounts.admission import Accounting
from accounts.keystore import KeyStore
from accounts.ratelimit import RateLimiter
from accounts.settings import AccountSettings
from api.app import AppServices, AppSettings, create_app
from api.metrics import ApiMetrics
from tests.postgres_server import PostgresServer
from tests.redis_server import private_redis
from workers import QueueSettings, SignQueue

TOKEN = "admin-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Backend:
    """What the API's `Accounting` and settings offer the routes."""

    database: asyncpg.Pool | None
    keystore: KeyStore | None
    limiter: RateLimiter | None = None
    trust_forwarded_for: bool = False


@pytest.fixture
async def pool(migrated_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(migrated_url, min_size=0, max_size=4) as created:
        yield created


def account_settings(token: str = TOKEN) -> AccountSettings:
    return AccountSettings(
        key_secret="hmac-secret",
        key_cache_ttl=600,  # long: only forget() can make a revocation visible here
        key_negative_ttl=600,
        key_lookup_timeout=2,
        admin_token=token,
    )


Client = TestClient[web.Request, web.Application]


@asynccontextmanager
async def serving(
    backend: Backend, settings: AccountSettings, registry: CollectorRegistry | None = None
) -> AsyncIterator[Client]:
    # The whole API, as the admin sub-app is served: its middlewares come first.
    accounting = Accounting(
        keystore=backend.keystore, limiter=backend.limiter, database=backend.database
    )
    services = AppServices(
        # Never started: no admin route signs (the gauge refresher finds no Redis).
        queue=SignQueue(QueueSettings(REDIS_URL="redis://127.0.0.1:1/0")),
        accounting=accounting,
        metrics=ApiMetrics(registry),
    )
    app_settings = AppSettings(accounts=settings, trust_forwarded_for=backend.trust_forwarded_for)
    app = create_app(app_settings, services)
    async with TestClient(TestServer(app)) as client:
        yield client


@pytest.fixture
async def keystore(pool: asyncpg.Pool) -> KeyStore:
    return KeyStore(pool, account_settings())


@pytest.fixture
async def client(pool: asyncpg.Pool, keystore: KeyStore) -> AsyncIterator[Client]:
    async with serving(Backend(pool, keystore), account_settings()) as served:
        yield served


async def error_of(response: Any, status: int) -> dict[str, Any]:
    """The structured error of `response`, checked for shape and status."""
    assert response.status == status, await response.text()
    body = await response.json()
    assert body["status"] == "error"
    error: dict[str, Any] = body["error"]
    assert error["code"] == status
    assert set(error) >= {"type", "message", "code", "timestamp"}
    datetime.fromisoformat(error["timestamp"])
    return error


async def data_of(response: Any, status: int = 200) -> Any:
    assert response.status == status, await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.json()
    assert body["status"] == "success"
    return body["data"]


ROUTES = [
    ("POST", "/admin/users"),
    ("GET", "/admin/users"),
    ("PATCH", "/admin/users/ada@example.com"),
    ("POST", "/admin/keys"),
    ("GET", "/admin/keys"),
    ("DELETE", "/admin/keys/sk_AbCd1234"),
    ("GET", "/admin/usage"),
]


async def test_every_route_wants_the_token(client: Client) -> None:
    wrong = [
        {},
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"X-Admin-Token": TOKEN[:-1]},
        {"X-Admin-Token": "tökén"},
    ]
    for method, path in ROUTES:
        for headers in wrong:
            response = await client.request(method, path, headers=headers, json={})
            error = await error_of(response, 401)
            assert error["type"] == "AUTHENTICATION_ERROR"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_both_headers_carry_the_token(client: Client) -> None:
    for headers in (AUTH, {"authorization": f"bearer  {TOKEN}"}, {"X-Admin-Token": TOKEN}):
        assert await data_of(await client.get("/admin/users", headers=headers)) == []


async def test_without_a_configured_token_admin_is_disabled(
    pool: asyncpg.Pool, keystore: KeyStore
) -> None:
    async with serving(Backend(pool, keystore), account_settings(token="")) as client:
        for method, path in ROUTES:
            for headers in ({}, AUTH, {"Authorization": "Bearer "}):
                response = await client.request(method, path, headers=headers)
                error = await error_of(response, 403)
                assert "disabled" in error["message"]
                assert "SIGNER_ADMIN_TOKEN" in error["message"]


def test_a_short_admin_token_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        account_settings(token="short")


async def test_users(client: Client) -> None:
    created = await data_of(
        await client.post("/admin/users", headers=AUTH, json={"email": "Ada@example.com"}), 201
    )
    assert (created["email"], created["tier"], created["active_keys"]) == (
        "Ada@example.com",
        "free",
        0,
    )
    await data_of(
        await client.post(
            "/admin/users", headers=AUTH, json={"email": "bob@example.com", "tier": "api_key"}
        ),
        201,
    )
    listed = await data_of(await client.get("/admin/users", headers=AUTH))
    assert [(user["email"], user["tier"]) for user in listed] == [
        ("Ada@example.com", "free"),
        ("bob@example.com", "api_key"),
    ]
    changed = await data_of(
        await client.patch("/admin/users/ADA@example.com", headers=AUTH, json={"tier": "api_key"})
    )
    assert changed["tier"] == "api_key"


async def test_user_errors(client: Client) -> None:
    await client.post("/admin/users", headers=AUTH, json={"email": "ada@example.com"})
    duplicate = await client.post("/admin/users", headers=AUTH, json={"email": "ADA@example.com"})
    assert "already exists" in (await error_of(duplicate, 409))["message"]
    bad_bodies: list[Any] = [
        {"email": "not-an-email"},
        {"email": "x@example.com", "tier": "gold"},
        {"email": 5},
        {},
        {"email": "x@example.com", "plan": "free"},
        ["x@example.com"],
        "x@example.com",
    ]
    for body in bad_bodies:
        response = await client.post("/admin/users", headers=AUTH, json=body)
        assert (await error_of(response, 400))["type"] == "VALIDATION_ERROR"
    for raw in (b"{", b"\xff\xfe", b"null"):
        response = await client.post("/admin/users", headers=AUTH, data=raw)
        await error_of(response, 400)
    missing = await client.patch(
        "/admin/users/nobody@example.com", headers=AUTH, json={"tier": "free"}
    )
    await error_of(missing, 404)


async def test_keys_are_issued_once_listed_without_secrets_and_revoked_at_once(
    client: Client, pool: asyncpg.Pool, keystore: KeyStore
) -> None:
    await client.post("/admin/users", headers=AUTH, json={"email": "ada@example.com"})
    issued = await data_of(
        await client.post(
            "/admin/keys",
            headers=AUTH,
            json={"user": "ada@example.com", "name": "laptop", "per_minute": 5, "per_day": None},
        ),
        201,
    )
    key, record = issued["key"], issued["record"]
    assert "not be shown again" in issued["notice"]
    assert key.startswith(record["prefix"] + "_")
    assert (record["per_minute"], record["per_day"], record["name"]) == (5, None, "laptop")
    found = await keystore.lookup(key)  # the routes hash with the configured secret
    assert found is not None
    assert found.per_minute == 5

    listed = await client.get("/admin/keys", headers=AUTH, params={"user": "ada@example.com"})
    text = await listed.text()
    stored_hash = await pool.fetchval("SELECT key_hash FROM api_keys")
    assert key not in text
    assert key.split("_")[2] not in text
    assert stored_hash not in text
    assert [k["prefix"] for k in await data_of(listed)] == [record["prefix"]]
    assert len(await data_of(await client.get("/admin/keys", headers=AUTH))) == 1

    revoked = await client.delete(f"/admin/keys/{record['prefix']}", headers=AUTH)
    assert await data_of(revoked) == {"revoked": record["prefix"]}
    # Cached for ten minutes, yet refused now: the route emptied the cache.
    assert await keystore.lookup(key) is None
    listed_after = await data_of(await client.get("/admin/keys", headers=AUTH))
    assert [k["is_active"] for k in listed_after] == [False]


async def test_key_errors(client: Client) -> None:
    await client.post("/admin/users", headers=AUTH, json={"email": "ada@example.com"})
    unknown = await client.post("/admin/keys", headers=AUTH, json={"user": "x@example.com"})
    await error_of(unknown, 404)
    for body in (
        {"user": "ada@example.com", "per_minute": 0},
        {"user": "ada@example.com", "per_minute": "5"},
        {"user": "ada@example.com", "per_day": True},
        {"user": "ada@example.com", "per_day": 1.5},
        {"user": "ada@example.com", "name": 7},
        {"user": "ada@example.com", "secret": "mine"},
        {"name": "no user"},
    ):
        await error_of(await client.post("/admin/keys", headers=AUTH, json=body), 400)
    listed = await client.get("/admin/keys", headers=AUTH, params={"user": "x@example.com"})
    await error_of(listed, 404)
    await error_of(await client.delete("/admin/keys/sk_00000000", headers=AUTH), 404)
    await error_of(await client.delete("/admin/keys/nonsense", headers=AUTH), 400)


async def test_usage_report(client: Client, pool: asyncpg.Pool) -> None:
    await client.post("/admin/users", headers=AUTH, json={"email": "ada@example.com"})
    user_id = await pool.fetchval("SELECT id FROM users")
    await pool.executemany(
        "INSERT INTO usage_logs (request_id, user_id, route, dialect, target, success,"
        " status_code, response_time_ms) VALUES ('r', $1, '/signature', 'structured', 't', $2,"
        " 200, $3)",
        [(user_id, True, 10.0), (user_id, False, 30.0)],
    )
    days = await data_of(
        await client.get("/admin/usage", headers=AUTH, params={"user": "ada@example.com"})
    )
    assert len(days) == 7
    assert days[-1] == {
        "day": datetime.now(UTC).date().isoformat(),
        "requests": 2,
        "successes": 1,
        "success_rate": 0.5,
        "p50_ms": 20.0,
        "p95_ms": 29.0,
    }
    assert len(await data_of(await client.get("/admin/usage?days=2", headers=AUTH))) == 2
    for query in ("days=abc", "days=0", "days=100000", "user=not-an-email"):
        await error_of(await client.get(f"/admin/usage?{query}", headers=AUTH), 400)
    await error_of(await client.get("/admin/usage?user=x@example.com", headers=AUTH), 404)


async def test_no_database_means_503(migrated_url: str) -> None:
    async with serving(Backend(None, None), account_settings()) as client:
        error = await error_of(await client.get("/admin/users", headers=AUTH), 503)
        assert error["type"] == "SERVICE_UNAVAILABLE"
    closed = await asyncpg.create_pool(migrated_url, min_size=0, max_size=1)
    await closed.close()
    async with serving(Backend(closed, None), account_settings()) as client:
        await error_of(await client.get("/admin/users", headers=AUTH), 503)
        await error_of(await client.get("/admin/usage", headers=AUTH), 503)


async def test_a_database_without_the_schema_says_to_migrate(postgres: PostgresServer) -> None:
    async with (
        postgres.database() as url,
        asyncpg.create_pool(url, min_size=0, max_size=1) as bare,
        serving(Backend(bare, None), account_settings()) as client,
    ):
        error = await error_of(await client.get("/admin/keys", headers=AUTH), 503)
        assert "signer migrate" in error["message"]


async def test_oversized_bodies_and_undecodable_tokens_are_refused_cleanly(client: Client) -> None:
    huge = b'{"email": "' + b"a" * 2_000_000 + b'@example.com"}'
    response = await client.post("/admin/users", headers=AUTH, data=huge)
    await error_of(response, 413)
    assert response.headers["Cache-Control"] == "no-store"
    # Bytes no client library would send: a token that is not UTF-8 at all.
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        b"GET /admin/users HTTP/1.1\r\nHost: x\r\nX-Admin-Token: \xff\xfe\xfd-0123456789abcdef"
        b"\r\nConnection: close\r\n\r\n"
    )
    await writer.drain()
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 401 ")


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNER_KEY_SECRET", "from-env")
    monkeypatch.setenv("SIGNER_KEY_CACHE_TTL", "12.5")
    monkeypatch.setenv("SIGNER_KEY_NEGATIVE_TTL", "1")
    monkeypatch.setenv("SIGNER_KEY_LOOKUP_TIMEOUT", "0.5")
    monkeypatch.setenv("SIGNER_ADMIN_TOKEN", TOKEN)
    settings = AccountSettings()
    assert settings.key_secret.get_secret_value() == "from-env"
    assert (settings.key_cache_ttl, settings.key_negative_ttl) == (12.5, 1.0)
    assert settings.key_lookup_timeout == 0.5
    assert settings.admin_token.get_secret_value() == TOKEN
    assert TOKEN not in repr(settings)
    assert all(field.description for field in AccountSettings.model_fields.values())


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with private_redis() as url:
        yield url


@pytest.fixture
async def limiter(redis_url: str) -> AsyncIterator[RateLimiter]:
    client = Redis.from_url(redis_url)
    yield RateLimiter(client, prefix=f"test-{uuid.uuid4().hex[:8]}")
    await client.aclose()


def failures(registry: CollectorRegistry, status: str) -> float:
    value = registry.get_sample_value("signer_api_admin_auth_failures_total", {"status": status})
    return value or 0.0


async def test_wrong_tokens_are_limited_per_address_then_even_the_right_one_waits(
    pool: asyncpg.Pool,
    keystore: KeyStore,
    limiter: RateLimiter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Issue 15 item 13: over 6,000 wrong tokens were tried without a trace or a limit.
    settings = account_settings().model_copy(update={"admin_auth_failures_per_minute": 10})
    backend = Backend(pool, keystore, limiter, trust_forwarded_for=True)
    registry = CollectorRegistry()
    guesser = {"X-Forwarded-For": "198.51.100.7"}
    async with serving(backend, settings, registry) as client:
        with caplog.at_level(logging.WARNING, logger="api.admin"):
            statuses = []
            for n in range(13):
                headers = guesser | {"Authorization": f"Bearer guess-{n:04d}-0123456789"}
                statuses.append((await client.get("/admin/users", headers=headers)).status)
        assert statuses == [401] * 10 + [429] * 3
        # Blocked: the right token from that address waits too (it may be the guess that
        # came true), and says for how long.
        blocked = await client.get("/admin/users", headers=guesser | AUTH)
        error = await error_of(blocked, 429)
        assert error["type"] == "RATE_LIMIT_ERROR"
        assert "failed admin authentications" in error["message"]
        assert error["limit_label"] == "rate_limit_admin_auth_minute"
        assert 1 <= int(blocked.headers["Retry-After"]) <= 60
        assert blocked.headers["Cache-Control"] == "no-store"
        # Another address is not blocked, and the right token costs no budget.
        for _ in range(15):
            headers = {"X-Forwarded-For": "198.51.100.8"} | AUTH
            assert await data_of(await client.get("/admin/users", headers=headers)) == []
        missing = await client.get("/admin/users", headers={"X-Forwarded-For": "198.51.100.8"})
        await error_of(missing, 401)
    assert failures(registry, "401") == 11
    assert failures(registry, "429") == 4
    # Logged, but not a line per guess: the burst came within a second.
    lines = [
        r.getMessage() for r in caplog.records if "admin authentication failed" in r.getMessage()
    ]
    assert 1 <= len(lines) < 13
    assert "198.51.100.7" in lines[0]
    assert "guess-" not in " ".join(lines)  # a guess may be a real token mistyped


async def test_without_redis_the_token_alone_decides(
    pool: asyncpg.Pool, keystore: KeyStore
) -> None:
    closed = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    backend = Backend(pool, keystore, RateLimiter(closed))
    async with serving(backend, account_settings()) as client:
        await error_of(await client.get("/admin/users", headers={"X-Admin-Token": "x" * 20}), 401)
        assert await data_of(await client.get("/admin/users", headers=AUTH)) == []
    await closed.aclose()


async def test_admin_answers_carry_the_request_id_and_are_counted_and_logged(
    pool: asyncpg.Pool, keystore: KeyStore
) -> None:
    """The admin sub-app goes through the API's middlewares like every other route."""
    registry = CollectorRegistry()
    async with serving(Backend(pool, keystore), account_settings(), registry) as client:
        with capture_logs() as logs:
            refused = await client.get("/admin/users")
            listed = await client.get("/admin/users", headers=AUTH)
        await error_of(refused, 401)
        await data_of(listed)
    for response in (refused, listed):
        assert len(response.headers["X-Request-Id"]) == 32
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert response.headers["Cache-Control"] == "no-store"
    for status, error_type in (("401", "AUTHENTICATION_ERROR"), ("200", "")):
        counted = registry.get_sample_value(
            "signer_api_requests_total",
            {
                "route": "admin_list_users",
                "dialect": "structured",
                "status": status,
                "error_type": error_type,
            },
        )
        assert counted == 1
    lines = [line for line in logs if line.get("event") == "request"]
    assert [(line["route"], line["status"]) for line in lines] == [
        ("admin_list_users", 401),
        ("admin_list_users", 200),
    ]
    assert lines[0]["request_id"] == refused.headers["X-Request-Id"]
