"""Keys, rate limits and usage rows through the running service: `signer api` (two of
them), `signer worker`, real Redis and Postgres, the admin commands as users run them."""

from __future__ import annotations

import asyncio
import importlib
import json
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from service.stack.services import PrivatePostgres
from tests.service_stack import ServiceStack, get_json, run_signer, service_stack
from tests.signer.conftest import FETCH_URL

FREE_PER_MINUTE = 5
ANONYMOUS_PER_MINUTE = 3
KEY_LOOKUPS_PER_MINUTE = 20
CHROME_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
LIMITS = {
    "SIGNER_LIMIT_FREE_PER_MINUTE": str(FREE_PER_MINUTE),
    "SIGNER_LIMIT_FREE_PER_DAY": "none",
    "SIGNER_LIMIT_ANONYMOUS_PER_MINUTE": str(ANONYMOUS_PER_MINUTE),
    "SIGNER_LIMIT_ANONYMOUS_PER_DAY": "none",
    "SIGNER_LIMIT_KEY_LOOKUPS_PER_MINUTE": str(KEY_LOOKUPS_PER_MINUTE),
    "SIGNER_API_TRUST_FORWARDED_FOR": "true",
    "SIGNER_KEY_NEGATIVE_TTL": "60",  # a refused key stays cached for the whole test
    "SIGNER_USAGE_FLUSH_INTERVAL_SECONDS": "0.1",
}
# TikTokLive 6.6 imports websockets' deprecated legacy API: not ours to fix.
pytestmark = [
    pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:websockets.exceptions.InvalidStatusCode:DeprecationWarning"),
]


@pytest.fixture(scope="module")
def stack() -> Iterator[ServiceStack]:
    with service_stack(apis=2, limits=True, env=LIMITS) as running:
        run_signer(running.env, "migrate")
        yield running


def _new_key(stack: ServiceStack, tier: str = "free", *extra: str) -> dict[str, Any]:
    email = f"user-{time.monotonic_ns()}@example.com"
    run_signer(stack.env, "users", "create", email, "--tier", tier)
    created = json.loads(
        run_signer(stack.env, "keys", "create", "--user", email, "--name", "t", "--json", *extra)
    )
    assert isinstance(created, dict)
    return {"key": created["key"], "prefix": created["record"]["prefix"], "email": email}


def _request(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    """GET `url`: status, headers and JSON body, error statuses included."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def _sign_url(base: str, key: str | None = None, url: str = FETCH_URL) -> str:
    query = {"url": url} | ({"apiKey": key} if key is not None else {})
    return f"{base}/webcast/sign_url?{urllib.parse.urlencode(query)}"


def _away_from_minute_edge() -> None:
    # The limits count in fixed UTC minutes: start a counting test well inside one.
    if time.time() % 60 > 45:
        time.sleep(61 - time.time() % 60)


async def _rows(database_url: str, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


def _wait_for_rows(database_url: str, query: str, *args: object, count: int) -> list[Any]:
    deadline = time.monotonic() + 20
    rows: list[Any] = []
    while time.monotonic() < deadline:
        rows = asyncio.run(_rows(database_url, query, *args))
        if len(rows) >= count:
            return rows
        time.sleep(0.2)
    raise AssertionError(f"{len(rows)} rows, expected {count}")


def test_unknown_key_is_refused_in_each_dialect(stack: ServiceStack) -> None:
    status, _, body = _request(_sign_url(stack.base, "sk_AbCdEfGh_" + "x" * 32))
    assert (status, body) == (401, {"code": 401, "message": "The provided API Key is invalid."})

    request = urllib.request.Request(
        f"{stack.base}/api/signature",
        data=json.dumps({"url": FETCH_URL}).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer nonsense"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    error = json.loads(caught.value.read())
    assert caught.value.code == 401
    assert error["status"] == "error"
    assert error["error"]["type"] == "AUTHENTICATION_ERROR"


def test_made_up_keys_meet_the_address_limit_before_the_database(stack: ServiceStack) -> None:
    # Each key not in the cache costs a Postgres query: they are counted per address, in
    # a budget of their own.
    # From an address of its own (the APIs trust X-Forwarded-For here), so the other
    # tests' new keys keep their budget.
    address = {"X-Forwarded-For": "192.0.2.77"}
    _away_from_minute_edge()
    statuses = [
        _request(_sign_url(stack.base, f"sk_Made{n:04d}_" + "y" * 32), address)[0]
        for n in range(KEY_LOOKUPS_PER_MINUTE + 2)
    ]
    assert statuses == [401] * KEY_LOOKUPS_PER_MINUTE + [429, 429]
    _, headers, body = _request(_sign_url(stack.base, "sk_MadeLast_" + "y" * 32), address)
    # Its own label and words: the caller sent too many unknown keys, not too many requests.
    assert body["limit_label"] == "rate_limit_key_lookups_minute"
    assert body["message"].startswith("Too many look-ups of unknown API keys from this address")
    assert 1 <= int(headers["Retry-After"]) <= 60
    # A key already looked up is answered from the cache: no budget needed.
    assert _request(_sign_url(stack.base, "sk_Made0000_" + "y" * 32), address)[0] == 401


def test_free_key_limit_is_exact_and_shared_by_two_apis(stack: ServiceStack) -> None:
    key = _new_key(stack)["key"]
    _away_from_minute_edge()
    for n in range(FREE_PER_MINUTE):
        base = stack.bases[n % 2]  # alternate between the two API processes
        status, headers, body = _request(_sign_url(base, key))
        assert status == 200, body
        assert headers["RateLimit-Limit"] == str(FREE_PER_MINUTE)
        assert headers["RateLimit-Remaining"] == str(FREE_PER_MINUTE - n - 1)
        assert 0 < int(headers["RateLimit-Reset"]) <= 60
    status, headers, body = _request(_sign_url(stack.bases[1], key))
    assert status == 429
    assert body["code"] == 429
    assert body["limit_label"] == "rate_limit_account_minute"
    retry_after = int(headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert int(headers["RateLimit-Reset"]) == retry_after
    assert int(headers["X-RateLimit-Reset"]) == pytest.approx(time.time() + retry_after, abs=2)
    assert headers["RateLimit-Limit"] == str(FREE_PER_MINUTE)

    status, _, limits = _request(f"{stack.base}/webcast/rate_limits?apiKey={key}")
    assert status == 200
    assert (limits["minute"]["max"], limits["minute"]["remaining"]) == (FREE_PER_MINUTE, 0)


def test_limit_stays_exact_when_counted_while_signing(stack: ServiceStack) -> None:
    # 30 a minute leaves room to count most requests while they are signed (Headroom):
    # the 31st must still be refused, and with the headers of the refusing window.
    key = _new_key(stack, "api_key", "--per-minute", "30")["key"]
    _away_from_minute_edge()
    answers = [_request(_sign_url(stack.bases[n % 2], key)) for n in range(31)]
    assert [status for status, _, _ in answers] == [200] * 30 + [429]
    assert [headers["RateLimit-Remaining"] for _, headers, _ in answers[:30]] == [
        str(30 - n - 1) for n in range(30)
    ]
    assert answers[30][2]["limit_label"] == "rate_limit_key_minute"


def test_a_burst_counted_while_signing_gets_exactly_the_limit(stack: ServiceStack) -> None:
    key = _new_key(stack, "api_key", "--per-minute", "30")["key"]
    _away_from_minute_edge()
    assert _request(_sign_url(stack.base, key))[0] == 200  # now 29 left, most go ahead

    async def burst() -> list[int]:
        async with aiohttp.ClientSession() as session:

            async def one(i: int) -> int:
                url = _sign_url(stack.base, key, url=f"{FETCH_URL}&cursor={i}")
                async with session.get(url) as response:
                    await response.read()
                    return response.status

            return await asyncio.gather(*(one(i) for i in range(40)))

    statuses = asyncio.run(burst())
    assert statuses.count(200) == 29
    assert statuses.count(429) == 11


def test_api_key_tier_is_unlimited(stack: ServiceStack) -> None:
    key = _new_key(stack, "api_key")["key"]
    for n in range(FREE_PER_MINUTE + 3):
        status, headers, _ = _request(_sign_url(stack.bases[n % 2], key))
        assert status == 200
        assert "RateLimit-Limit" not in headers


def test_anonymous_callers_are_limited_per_address(stack: ServiceStack) -> None:
    # Both APIs count 127.0.0.1 in one budget; earlier tests sent no anonymous requests.
    _away_from_minute_edge()
    statuses = [_request(_sign_url(stack.bases[n % 2]))[0] for n in range(ANONYMOUS_PER_MINUTE + 1)]
    assert statuses == [200] * ANONYMOUS_PER_MINUTE + [429]
    _, _, body = _request(_sign_url(stack.base))
    assert body["limit_label"] == "rate_limit_ip_minute"


def test_every_request_leaves_a_usage_row(stack: ServiceStack) -> None:
    created = _new_key(stack)
    key = created["key"]
    _away_from_minute_edge()
    # A foreign URL first (400; it counts, as every request let in does), then signatures
    # up to the limit, then one over it (429).
    statuses = [_request(_sign_url(stack.base, key, url="https://example.com/x"))[0]]
    statuses += [_request(_sign_url(stack.bases[n % 2], key))[0] for n in range(FREE_PER_MINUTE)]
    assert statuses == [400] + [200] * (FREE_PER_MINUTE - 1) + [429]

    database_url = stack.env["DATABASE_URL"]
    query = "SELECT * FROM usage_logs WHERE key_prefix = $1 ORDER BY created_at"
    rows = _wait_for_rows(database_url, query, created["prefix"], count=len(statuses))
    assert [row["status_code"] for row in rows] == statuses
    assert len({row["request_id"] for row in rows}) == len(rows)
    invalid, signed, refused = rows[0], rows[1:FREE_PER_MINUTE], rows[FREE_PER_MINUTE]
    assert (invalid["success"], invalid["error_type"]) == (False, "VALIDATION_ERROR")
    assert "not allowed" in invalid["error_message"]
    for row in signed:
        assert row["success"] is True
        assert row["route"] == "sign_url_v1"
        assert row["target"] == "webcast.tiktok.com/webcast/im/fetch/"
        assert row["worker_id"]
        assert row["profile"]
        assert row["queue_wait_ms"] >= 0
        assert row["user_id"] is not None
        assert row["api_key_id"] is not None
        assert str(row["client_ip"]) == "127.0.0.1"
        assert row["error_type"] is None
    assert (refused["success"], refused["error_type"]) == (False, "RATE_LIMIT_ERROR")
    assert refused["worker_id"] is None

    # An unknown key: its row has no user, and its request id is the one answered.
    status, headers, _ = _request(_sign_url(stack.base, "sk_Unknown1_" + "x" * 32))
    assert status == 401
    [row] = _wait_for_rows(
        database_url,
        "SELECT * FROM usage_logs WHERE request_id = $1",
        headers["X-Request-Id"],
        count=1,
    )
    assert (row["error_type"], row["user_id"], row["status_code"]) == (
        "AUTHENTICATION_ERROR",
        None,
        401,
    )

    quota = asyncio.run(
        _rows(
            database_url,
            "SELECT q.request_count FROM quota_usage q JOIN users u ON u.id = q.user_id"
            " WHERE u.email = $1",
            created["email"],
        )
    )
    # What the limiter let in counts (the 400 too); the refusal does not.
    assert [row["request_count"] for row in quota] == [FREE_PER_MINUTE]


def test_tiktoklive_reads_our_429(stack: ServiceStack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIGN_API_URL", raising=False)
    monkeypatch.delenv("SIGN_API_KEY", raising=False)
    key = _new_key(stack, "api_key", "--per-minute", "1")["key"]
    errors = importlib.import_module("TikTokLive.client.errors")
    signer_class = importlib.import_module("TikTokLive.client.web.web_signer").TikTokSigner

    async def sign_twice() -> Any:
        signer = signer_class(sign_api_base=stack.base, sign_api_key=key)
        try:
            answers = []
            for _ in range(2):
                try:
                    answers.append(
                        await signer.webcast_sign(
                            url=FETCH_URL,
                            method="GET",
                            sign_url_type="xhr",
                            payload="",
                            user_agent=CHROME_UA,
                        )
                    )
                except errors.UnexpectedSignatureError as error:
                    answers.append(error)
            return answers
        finally:
            await signer.client.aclose()

    _away_from_minute_edge()
    first, second = asyncio.run(sign_twice())
    assert not isinstance(first, Exception)
    assert "X-Bogus=" in str(first.signed_url)
    assert isinstance(second, errors.UnexpectedSignatureError)
    assert second.response.status_code == 429
    assert second.response.json()["limit_label"] == "rate_limit_key_minute"


def test_postgres_outage_loses_no_signature_and_no_row() -> None:
    folder = Path(tempfile.mkdtemp(prefix="signer-outage-"))
    folder.chmod(0o755)  # Postgres runs as its own user when we are root
    postgres = PrivatePostgres(folder / "pg")
    database_url = postgres.start()
    port = postgres.port
    try:
        env = {"DATABASE_URL": database_url, "SIGNER_USAGE_FLUSH_INTERVAL_SECONDS": "0.1"}
        with service_stack(env=env) as running:
            _wait_for_table(database_url)
            statuses = asyncio.run(_burst_through_outage(running.base, postgres, port))
            assert statuses == [200] * len(statuses)
            rows = _wait_for_rows(
                database_url, "SELECT request_id FROM usage_logs", count=len(statuses)
            )
            assert len(rows) == len(statuses)

            # With no worker left, a request waits out its deadline: 503, and a row says so.
            running.workers.kill()
            running.workers.wait()
            status, headers, body = _request(_sign_url(running.base))
            assert (status, body["code"]) == (503, 503)
            assert int(headers["Retry-After"]) >= 1
            [row] = _wait_for_rows(
                database_url,
                "SELECT * FROM usage_logs WHERE request_id = $1",
                headers["X-Request-Id"],
                count=1,
            )
            assert (row["error_type"], row["status_code"]) == ("SERVICE_UNAVAILABLE", 503)
            assert row["response_time_ms"] >= 4000  # the 5 s default deadline
    finally:
        postgres.stop()


def _wait_for_table(database_url: str) -> None:
    query = "SELECT 1 FROM schema_migrations WHERE name LIKE '0002%'"
    _wait_for_rows(database_url, query, count=1)


async def _burst_through_outage(base: str, postgres: PrivatePostgres, port: int) -> list[int]:
    async with aiohttp.ClientSession() as session:

        async def one(i: int) -> int:
            url = _sign_url(base, url=f"{FETCH_URL}&cursor={i}")
            async with session.get(url) as response:
                await response.read()
                return response.status

        tasks = []
        for i in range(240):
            tasks.append(asyncio.create_task(one(i)))
            if i == 60:
                await asyncio.to_thread(postgres.stop)
            if i == 180:
                await asyncio.to_thread(postgres.start, port)
            await asyncio.sleep(0.01)
        return await asyncio.gather(*tasks)


def test_health_reports_the_database(stack: ServiceStack) -> None:
    status, body = get_json(f"{stack.base}/health")
    assert status == 200
    assert body["database_connected"] is True
