"""The rate limiter against a real Redis: exact windows, shared budgets, one round trip.

Every request passes `now` so that windows are placed exactly; each test uses callers of
its own, and the module a key prefix of its own.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, cast

import pytest
from redis.asyncio import Redis

from accounts.ratelimit import (
    Caller,
    CallerKind,
    RateDecision,
    RateLimiter,
    RateLimitSettings,
    Window,
    WindowState,
    caller_for,
    ip_identity,
    limit_message,
)
from api.errors import rate_limit_error
from api.ratelimit_headers import eulerstream_limit_body, rate_limit_headers, rate_limits_body
from tests.redis_server import private_redis

DAY0 = 20_000 * 86_400  # 2024-10-04 00:00:00 UTC
T = DAY0 + 5 * 3600 + 7 * 60  # 05:07:00, the start of a minute
INTEGER = re.compile(r"^\d+$")


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with private_redis() as url:
        yield url


@pytest.fixture(scope="module")
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def limiter(redis: Redis, prefix: str) -> RateLimiter:
    return RateLimiter(redis, prefix)


def settings(**budgets: int | None) -> RateLimitSettings:
    return RateLimitSettings.model_validate(budgets)


def unique_ip() -> str:
    number = uuid.uuid4().int
    return f"10.{number % 256}.{number // 256 % 256}.{number // 65536 % 256}"


def unique_id() -> str:
    return uuid.uuid4().hex


async def hits(limiter: RateLimiter, caller: Caller, count: int, now: float) -> list[RateDecision]:
    return [await limiter.hit(caller, now) for _ in range(count)]


def window_of(decision: RateDecision, name: Window) -> WindowState:
    state = decision.window(name)
    assert state is not None, f"no {name} window in {decision}"
    return state


def assert_integer_headers(headers: dict[str, str]) -> None:
    for name, value in headers.items():
        assert INTEGER.match(value), f"{name}: {value!r}"


async def test_anonymous_minute_limit_is_exact(limiter: RateLimiter) -> None:
    caller = caller_for(settings(anonymous_per_minute=5), client_ip=unique_ip())
    assert caller.kind == "ip"
    passed = await hits(limiter, caller, 5, T + 10)
    assert all(d.allowed for d in passed)
    assert [window_of(d, "minute").remaining for d in passed] == [4, 3, 2, 1, 0]

    refused = await limiter.hit(caller, T + 17.5)
    assert not refused.allowed
    assert refused.limit_label == "rate_limit_ip_minute"
    assert refused.retry_after == 43  # 42.5 s to the minute's end, rounded up
    assert rate_limit_headers(refused) == {
        "RateLimit-Limit": "5",
        "RateLimit-Remaining": "43",  # TikTokLive's retry_after: see rate_limit_headers
        "RateLimit-Reset": "43",
        "X-RateLimit-Reset": str(T + 60),
        "Retry-After": "43",
    }
    assert eulerstream_limit_body(refused) == {
        "code": 429,
        "message": "Rate limit reached: 5 requests per minute for this IP address. "
        "Try again in 43 seconds (2024-10-04 05:08:00 UTC).",
        "limit_label": "rate_limit_ip_minute",
    }


async def test_window_resets_exactly_at_the_boundary(limiter: RateLimiter) -> None:
    caller = caller_for(settings(anonymous_per_minute=2), client_ip=unique_ip())
    await hits(limiter, caller, 2, T)
    last_moment = await limiter.hit(caller, T + 59.999)
    assert not last_moment.allowed
    assert last_moment.retry_after == 1

    next_minute = await limiter.hit(caller, T + 60)
    assert next_minute.allowed
    minute, day = window_of(next_minute, "minute"), window_of(next_minute, "day")
    assert (minute.used, minute.reset_at) == (1, T + 120)
    assert day.used == 3  # the refused request was not counted in the day either


async def test_refused_requests_consume_nothing(limiter: RateLimiter) -> None:
    caller = caller_for(settings(anonymous_per_minute=3), client_ip=unique_ip())
    await hits(limiter, caller, 3, T)
    refused = await hits(limiter, caller, 20, T + 1)
    assert not any(d.allowed for d in refused)
    state = await limiter.peek(caller, T + 2)
    minute, day = window_of(state, "minute"), window_of(state, "day")
    assert (minute.used, day.used) == (3, 3)


async def test_free_account_day_limit_shared_by_its_keys(limiter: RateLimiter) -> None:
    user = unique_id()
    budgets = settings(free_per_minute=60, free_per_day=3)
    first_key = caller_for(budgets, client_ip=unique_ip(), tier="free", user_id=user, key_id=1)
    second_key = caller_for(budgets, client_ip=unique_ip(), tier="free", user_id=user, key_id=2)
    assert first_key == second_key
    assert first_key.kind == "account"

    assert (await limiter.hit(first_key, T)).allowed
    assert (await limiter.hit(second_key, T + 3600)).allowed
    assert (await limiter.hit(first_key, T + 7200)).allowed
    refused = await limiter.hit(second_key, T + 7300)
    assert refused.limit_label == "rate_limit_account_day"
    assert refused.retry_after == DAY0 + 86_400 - (T + 7300)
    assert rate_limit_headers(refused)["X-RateLimit-Reset"] == str(DAY0 + 86_400)

    assert (await limiter.hit(first_key, DAY0 + 86_400)).allowed  # the next UTC day


async def test_free_account_minute_label(limiter: RateLimiter) -> None:
    caller = caller_for(settings(free_per_minute=2), client_ip="1.2.3.4", tier="free", user_id=7)
    caller = Caller(caller.kind, unique_id(), caller.per_minute, caller.per_hour, caller.per_day)
    await hits(limiter, caller, 2, T)
    assert (await limiter.hit(caller, T)).limit_label == "rate_limit_account_minute"


async def test_longest_full_window_is_reported(limiter: RateLimiter) -> None:
    caller = caller_for(
        settings(anonymous_per_minute=2, anonymous_per_day=2), client_ip=unique_ip()
    )
    await hits(limiter, caller, 2, T)
    refused = await limiter.hit(caller, T + 1)
    assert refused.limit_label == "rate_limit_ip_day"
    assert refused.retry_after == DAY0 + 86_400 - (T + 1)
    # Waiting for the minute alone does not help.
    assert not (await limiter.hit(caller, T + 61)).allowed


async def test_hour_window(limiter: RateLimiter) -> None:
    caller = caller_for(
        settings(anonymous_per_minute=None, anonymous_per_hour=2, anonymous_per_day=None),
        client_ip=unique_ip(),
    )
    await hits(limiter, caller, 2, T)
    refused = await limiter.hit(caller, T + 600)
    assert refused.limit_label == "rate_limit_ip_hour"
    assert refused.retry_after == DAY0 + 6 * 3600 - (T + 600)
    assert (await limiter.hit(caller, DAY0 + 6 * 3600)).allowed


async def test_api_key_limits_of_its_own(limiter: RateLimiter) -> None:
    per_minute = caller_for(
        settings(), client_ip="1.2.3.4", tier="api_key", key_id=unique_id(), key_per_minute=2
    )
    assert (per_minute.per_minute, per_minute.per_hour, per_minute.per_day) == (2, None, None)
    await hits(limiter, per_minute, 2, T)
    assert (await limiter.hit(per_minute, T)).limit_label == "rate_limit_key_minute"

    per_day = caller_for(
        settings(), client_ip="1.2.3.4", tier="api_key", key_id=unique_id(), key_per_day=3
    )
    await hits(limiter, per_day, 3, T)
    refused = await limiter.hit(per_day, T + 120)
    assert refused.limit_label == "rate_limit_key_day"
    assert [w.window for w in refused.windows] == ["day"]


async def test_unlimited_api_key_never_asks_redis(limiter: RateLimiter, redis: Redis) -> None:
    caller = caller_for(settings(), client_ip="1.2.3.4", tier="api_key", key_id=unique_id())
    assert caller.unlimited
    calls = count_commands(redis)
    decisions = await hits(limiter, caller, 100, T)
    peeked = await limiter.peek(caller, T)
    assert calls == []
    assert all(d.allowed and d.retry_after == 0 for d in decisions)
    assert rate_limit_headers(decisions[-1]) == {}
    body = rate_limits_body(peeked)
    assert body["message"] == "No rate limits apply to this caller."
    for window in ("minute", "hour", "day"):
        assert body[window] == {"max": None, "remaining": None, "reset_at": None}


def test_switched_off_limits_nobody() -> None:
    off = RateLimitSettings(enabled=False)
    anonymous = caller_for(off, client_ip="1.2.3.4")
    free = caller_for(off, client_ip="1.2.3.4", tier="free", user_id=5)
    assert anonymous == Caller("ip", "1.2.3.4")
    assert free.unlimited


async def test_two_processes_share_the_budget_exactly(redis_url: str, prefix: str) -> None:
    # Two clients with their own connection pools stand in for two API replicas.
    first, second = Redis.from_url(redis_url), Redis.from_url(redis_url)
    try:
        limiters = [RateLimiter(first, prefix), RateLimiter(second, prefix)]
        caller = caller_for(
            settings(free_per_minute=60, free_per_day=None),
            client_ip="1.2.3.4",
            tier="free",
            user_id=unique_id(),
        )
        decisions = await asyncio.gather(*(limiters[i % 2].hit(caller, T + 30) for i in range(100)))
        assert sum(d.allowed for d in decisions) == 60
        refused = [d for d in decisions if not d.allowed]
        assert {d.limit_label for d in refused} == {"rate_limit_account_minute"}
        state = await limiters[0].peek(caller, T + 31)
        assert window_of(state, "minute").used == 60
    finally:
        await first.aclose()
        await second.aclose()


async def test_peek_consumes_nothing(limiter: RateLimiter) -> None:
    caller = caller_for(settings(anonymous_per_minute=4), client_ip=unique_ip())
    fresh = await limiter.peek(caller, T)
    assert fresh.allowed
    minute = window_of(fresh, "minute")
    assert (minute.used, minute.remaining) == (0, 4)

    await hits(limiter, caller, 3, T)
    for _ in range(10):
        peeked = await limiter.peek(caller, T + 1)
    assert window_of(peeked, "minute").remaining == 1
    assert (await limiter.hit(caller, T + 2)).allowed
    full = await limiter.peek(caller, T + 3)
    assert not full.allowed  # a request now would be refused
    assert full.limit_label == "rate_limit_ip_minute"


async def test_a_weighted_request_counts_its_cost_or_nothing(limiter: RateLimiter) -> None:
    caller = caller_for(settings(anonymous_per_minute=5), client_ip=unique_ip())
    first = await limiter.hit(caller, T, cost=3)
    assert first.allowed
    assert window_of(first, "minute").used == 3
    # 3 + 3 would overfill the window: refused, and nothing counted.
    refused = await limiter.hit(caller, T + 1, cost=3)
    assert not refused.allowed
    assert refused.limit_label == "rate_limit_ip_minute"
    assert window_of(await limiter.peek(caller, T + 1), "minute").used == 3
    # Two requests of cost 1 still fit.
    assert (await limiter.hit(caller, T + 2)).allowed
    assert (await limiter.hit(caller, T + 2)).allowed
    assert not (await limiter.hit(caller, T + 3)).allowed
    with pytest.raises(ValueError, match="at least 1"):
        await limiter.hit(caller, T, cost=0)


async def test_one_round_trip_each(limiter: RateLimiter, redis: Redis) -> None:
    caller = caller_for(settings(anonymous_per_hour=100), client_ip=unique_ip())
    await limiter.hit(caller, T)  # loads the script when this Redis has not seen it
    calls = count_commands(redis)
    await limiter.hit(caller, T)
    assert [c[0] for c in calls] == ["EVALSHA"]
    await limiter.peek(caller, T)
    assert [c[0] for c in calls] == ["EVALSHA", "EVALSHA"]


async def test_script_reloaded_after_script_flush(limiter: RateLimiter, redis: Redis) -> None:
    caller = caller_for(settings(anonymous_per_minute=2), client_ip=unique_ip())
    assert (await limiter.hit(caller, T)).allowed
    await redis.script_flush()
    assert (await limiter.hit(caller, T)).allowed
    assert not (await limiter.hit(caller, T)).allowed


async def test_counters_expire_with_their_window(limiter: RateLimiter, redis: Redis) -> None:
    caller = caller_for(settings(anonymous_per_minute=5), client_ip=unique_ip())
    await limiter.hit(caller, T + 10)
    base = limiter.key_base(caller)
    minute_key = f"{base}:minute:{T // 60}"
    day_key = f"{base}:day:{T // 86_400}"
    assert sorted(k.decode() for k in await redis.keys(f"{base}:*")) == [day_key, minute_key]
    # The window's rest, plus five seconds for replicas whose clocks lag.
    assert 54_000 < await redis.pttl(minute_key) <= 55_000
    day_rest = (DAY0 + 86_400 - (T + 10)) * 1000 + 5000
    assert day_rest - 1000 < await redis.pttl(day_key) <= day_rest


async def test_redis_clock_when_no_time_is_given(limiter: RateLimiter) -> None:
    caller = caller_for(settings(anonymous_per_minute=10), client_ip=unique_ip())
    before = time.time()
    decision = await limiter.hit(caller)
    assert abs(decision.now - before) < 5
    minute = window_of(decision, "minute")
    assert minute.reset_at % 60 == 0
    assert 0 < minute.reset_at - decision.now <= 60


async def test_headers_are_integers_of_the_tightest_window(limiter: RateLimiter) -> None:
    caller = caller_for(
        settings(anonymous_per_minute=10, anonymous_per_day=3), client_ip=unique_ip()
    )
    decision = await limiter.hit(caller, T + 0.25)
    headers = rate_limit_headers(decision)
    assert_integer_headers(headers)
    # The day has 2 left, the minute 9: the day is the one to report.
    assert headers == {
        "RateLimit-Limit": "3",
        "RateLimit-Remaining": "2",
        "RateLimit-Reset": str(DAY0 + 86_400 - T),
        "X-RateLimit-Reset": str(DAY0 + 86_400),
    }
    await hits(limiter, caller, 2, T + 1)
    refused = await limiter.hit(caller, T + 2)
    assert_integer_headers(rate_limit_headers(refused))
    assert int(rate_limit_headers(refused)["Retry-After"]) >= 1


async def test_rate_limits_body(limiter: RateLimiter) -> None:
    caller = caller_for(settings(anonymous_per_minute=30), client_ip=unique_ip())
    await hits(limiter, caller, 4, T + 5)
    body = rate_limits_body(await limiter.peek(caller, T + 6))
    assert body == {
        "code": 200,
        "message": "Rate limits for this IP address, in fixed UTC windows.",
        "load_shedding": {"at": 0, "chance": 0},
        "minute": {"max": 30, "remaining": 26, "reset_at": "2024-10-04T05:08:00.000Z"},
        "hour": {"max": None, "remaining": None, "reset_at": None},
        "day": {"max": 1000, "remaining": 996, "reset_at": "2024-10-05T00:00:00.000Z"},
    }


async def test_rate_limit_error_for_structured_routes(limiter: RateLimiter) -> None:
    caller = caller_for(settings(anonymous_per_minute=1), client_ip=unique_ip())
    allowed = await limiter.hit(caller, T)
    with pytest.raises(ValueError, match="not refused"):
        eulerstream_limit_body(allowed)
    error = rate_limit_error(await limiter.hit(caller, T + 59))
    assert (error.status, error.type, error.retry_after) == (429, "RATE_LIMIT_ERROR", 1)
    assert error.limit_label == "rate_limit_ip_minute"
    assert "Try again in 1 second (" in error.message


async def test_ipv6_clients_are_counted_by_their_64(limiter: RateLimiter) -> None:
    assert ip_identity("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert ip_identity("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert ip_identity("::ffff:192.0.2.7") == "192.0.2.7"
    assert ip_identity(" 192.0.2.7 ") == "192.0.2.7"
    assert ip_identity("not-an-ip") == "not-an-ip"

    network = f"2001:db8:{uuid.uuid4().int % 65_536:x}:1"
    budgets = settings(anonymous_per_minute=1)
    first = caller_for(budgets, client_ip=f"{network}::1")
    second = caller_for(budgets, client_ip=f"{network}:abcd::2")
    assert (await limiter.hit(first, T)).allowed
    assert not (await limiter.hit(second, T)).allowed


def test_caller_needs_its_identity() -> None:
    with pytest.raises(ValueError, match="user id"):
        caller_for(RateLimitSettings(), client_ip="1.2.3.4", tier="free")
    with pytest.raises(ValueError, match="key id"):
        caller_for(RateLimitSettings(), client_ip="1.2.3.4", tier="api_key")
    with pytest.raises(ValueError, match="unknown tier"):
        caller_for(RateLimitSettings(), client_ip="1.2.3.4", tier="gold")
    with pytest.raises(ValueError, match="negative"):
        Caller("key", "k", per_day=-1)


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = RateLimitSettings()
    assert (defaults.anonymous_per_minute, defaults.anonymous_per_day) == (30, 1000)
    assert (defaults.free_per_minute, defaults.free_per_day) == (60, 5000)
    assert defaults.enabled
    monkeypatch.setenv("SIGNER_LIMIT_ENABLED", "false")
    monkeypatch.setenv("SIGNER_LIMIT_ANONYMOUS_PER_DAY", "none")
    monkeypatch.setenv("SIGNER_LIMIT_FREE_PER_HOUR", "500")
    configured = RateLimitSettings()
    assert not configured.enabled
    assert configured.anonymous_per_day is None
    assert configured.free_per_hour == 500
    for name, field in RateLimitSettings.model_fields.items():
        assert field.description, name


def count_commands(redis: Redis) -> list[tuple[Any, ...]]:
    """Record the commands `redis` sends from now on (each one is a round trip)."""
    calls: list[tuple[Any, ...]] = []
    original = cast(Callable[..., Awaitable[Any]], redis.execute_command)

    async def recording(*args: Any, **options: Any) -> Any:
        calls.append(args)
        return await original(*args, **options)

    redis.execute_command = recording  # type: ignore[method-assign]
    return calls


async def test_the_lookup_and_admin_budgets_say_what_they_count(limiter: RateLimiter) -> None:
    # Issue 9: the look-up budget's refusal read like the anonymous request budget's, so a
    # caller with an unlimited key was told it had sent too many requests.
    ip = unique_ip()
    cases: tuple[tuple[CallerKind, str], ...] = (
        ("key_lookups", "Too many look-ups of unknown API keys from this address"),
        ("admin_auth", "Too many failed admin authentications from this address"),
    )
    for kind, words in cases:
        caller = Caller(kind, ip, per_minute=1)
        assert (await limiter.hit(caller, now=T)).allowed
        refused = await limiter.hit(caller, now=T + 17.5)
        assert refused.limit_label == f"rate_limit_{kind}_minute"
        assert limit_message(refused) == (
            f"{words} (1 per minute). Try again in 43 seconds (2024-10-04 05:08:00 UTC)."
        )
        assert "Rate limit reached" not in rate_limit_error(refused).message
    # Each budget is its own: the address's anonymous requests are untouched.
    anonymous = Caller("ip", ip, per_minute=1)
    assert (await limiter.hit(anonymous, now=T)).allowed
