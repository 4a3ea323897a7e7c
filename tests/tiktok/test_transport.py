"""Retries, timeouts, the breaker and proxies, against real servers on loopback."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as redis

from sandbox import DEFAULT_ROOM_ID, Sandbox
from signer import Signer
from tiktok import (
    BreakerState,
    TikTokClient,
    TikTokRefused,
    TikTokSettings,
    TikTokTimeout,
    TikTokUnavailable,
    TikTokUnreachable,
    UpstreamProxy,
)
from tiktok.proxies import parse_proxies
from tiktok.stats import UpstreamCounters
from tiktok.transport import Upstream

from .conftest import settings_for
from .upstreams import FlakyUpstream, ForwardProxy

HEADERS = {"User-Agent": "test"}


def _settings(**values: object) -> TikTokSettings:
    defaults: dict[str, object] = {"tiktok_retry_backoff": 0.01, "tiktok_read_timeout": 0.3}
    return TikTokSettings(**{**defaults, **values})  # type: ignore[arg-type]


async def test_5xx_is_retried_a_bounded_number_of_times() -> None:
    async with FlakyUpstream(fail_first=2) as upstream:
        counters = UpstreamCounters()
        transport = Upstream(_settings(tiktok_retries=2), counters)
        await transport.start()
        try:
            answer = await transport.get("page", f"{upstream.url}/x", HEADERS)
            assert answer.status == 200
            assert answer.body == b"ok"
            assert len(upstream.requests) == 3
            assert counters.retries["page"] == 2
            assert counters.requests["page", "503"] == 2
            assert counters.requests["page", "200"] == 1
            upstream.requests.clear()
            upstream.fail_first = 10
            with pytest.raises(TikTokRefused) as refused:
                await transport.get("page", f"{upstream.url}/x", HEADERS)
            assert refused.value.status == 503
            assert len(upstream.requests) == 3
        finally:
            await transport.close()


async def test_4xx_is_not_retried() -> None:
    async with FlakyUpstream(fail_first=5, fail_status=404) as upstream:
        transport = Upstream(_settings(tiktok_retries=2), UpstreamCounters())
        await transport.start()
        try:
            answer = await transport.get("page", f"{upstream.url}/x", HEADERS)
            assert answer.status == 404
            assert len(upstream.requests) == 1
            assert transport.breaker.consecutive_failures == 0  # TikTok answered
        finally:
            await transport.close()


async def test_a_hanging_upstream_times_out_without_retries() -> None:
    async with FlakyUpstream(hang=True) as upstream:
        counters = UpstreamCounters()
        transport = Upstream(_settings(tiktok_retries=2, tiktok_read_timeout=0.2), counters)
        await transport.start()
        try:
            with pytest.raises(TikTokTimeout, match="TikTok did not answer"):
                await transport.get("page", f"{upstream.url}/x", HEADERS)
            assert len(upstream.requests) == 1
            assert counters.requests["page", "timeout"] == 1
        finally:
            await transport.close()


async def test_connection_errors_are_retried_then_reported() -> None:
    counters = UpstreamCounters()
    transport = Upstream(_settings(tiktok_retries=1), counters)
    await transport.start()
    try:
        with pytest.raises(TikTokUnreachable, match="could not reach TikTok"):
            await transport.get("page", "http://127.0.0.1:9/x", HEADERS)  # nothing listens
        assert counters.requests["page", "error"] == 2
        assert counters.retries["page"] == 1
    finally:
        await transport.close()


async def test_breaker_opens_answers_at_once_and_closes_after_recovery(
    tiktok: Sandbox, native_signer: Signer, redis_client: redis.Redis, key_prefix: str
) -> None:
    settings = settings_for(
        tiktok, tiktok_retries=1, tiktok_breaker_failures=3, tiktok_breaker_cooldown=0.5
    )
    async with TikTokClient(
        settings, sign=native_signer.sign, redis_client=redis_client, key_prefix=key_prefix
    ) as client:
        await tiktok.close()  # TikTok down: connections refused
        # Each look-up tries two routes, each an upstream failure: the third opens it.
        with pytest.raises(TikTokUnreachable):
            await client.room("sandbox")
        assert client.stats().breaker_state == "closed"
        with pytest.raises(TikTokUnreachable):  # the failure that opened it, not the refusal
            await client.room("sandbox")
        assert client.breaker_state is BreakerState.OPEN
        assert client.stats().breaker_consecutive_failures == 3
        for call in (client.room("sandbox"), client.fetch(DEFAULT_ROOM_ID)):
            started = time.perf_counter()
            with pytest.raises(TikTokUnavailable) as refused:
                await call
            assert time.perf_counter() - started < 0.05
            assert 0 < refused.value.retry_after <= 0.5
        stats = client.stats()
        assert stats.breaker_state == "open"
        assert stats.breaker_opened_total == 1
        assert stats.breaker_rejections == 3

        await tiktok.start()  # TikTok back, on the same port
        await asyncio.sleep(0.55)
        assert client.stats().breaker_state == "half_open"
        assert await client.live_room_id("sandbox") == DEFAULT_ROOM_ID  # the probe
        assert client.stats().breaker_state == "closed"
        answer = await client.fetch(DEFAULT_ROOM_ID)
        assert answer.status == 200
        assert client.stats().breaker_state == "closed"


async def test_a_failed_probe_opens_the_breaker_again(
    tiktok: Sandbox, native_signer: Signer, redis_client: redis.Redis, key_prefix: str
) -> None:
    settings = settings_for(
        tiktok, tiktok_retries=0, tiktok_breaker_failures=1, tiktok_breaker_cooldown=0.2
    )
    async with TikTokClient(
        settings, sign=native_signer.sign, redis_client=redis_client, key_prefix=key_prefix
    ) as client:
        tiktok.fail(503)
        with pytest.raises(TikTokRefused):
            await client.room("sandbox")
        await asyncio.sleep(0.25)
        with pytest.raises(TikTokRefused):
            await client.room("sandbox")  # the probe, failing
        with pytest.raises(TikTokUnavailable):
            await client.room("sandbox")
        assert client.stats().breaker_opened_total == 2
        assert tiktok.requests.count("live_page") == 2


async def test_every_upstream_request_goes_through_the_proxy(
    tiktok: Sandbox, native_signer: Signer, redis_client: redis.Redis, key_prefix: str
) -> None:
    async with ForwardProxy(username="user", password="pa:ss") as proxy:
        proxies = parse_proxies(f"http://user:pa%3Ass@127.0.0.1:{proxy.port}")
        settings = settings_for(tiktok, upstream_proxy=proxies)
        async with TikTokClient(
            settings, sign=native_signer.sign, redis_client=redis_client, key_prefix=key_prefix
        ) as client:
            room_id = await client.live_room_id("sandbox")
            await client.fetch(room_id)
            await client.fetch(room_id)
        assert len(proxy.seen) == len(tiktok.requests) == 4  # page, ttwid, 2 x im/fetch
        assert proxy.refused == 0
        assert [line.split("?")[0] for line in proxy.seen] == [
            f"GET {tiktok.web_url}/@sandbox/live",
            f"GET {tiktok.web_url}/live",
            f"GET {tiktok.webcast_url}/webcast/im/fetch/",
            f"GET {tiktok.webcast_url}/webcast/im/fetch/",
        ]
        assert tiktok.requests.outcomes("im_fetch") == ["ok", "ok"]


async def test_proxies_are_used_in_turn(
    tiktok: Sandbox, native_signer: Signer, redis_client: redis.Redis, key_prefix: str
) -> None:
    async with ForwardProxy() as first, ForwardProxy() as second:
        settings = settings_for(tiktok, upstream_proxy=f"{first.url}, {second.url}")
        async with TikTokClient(
            settings, sign=native_signer.sign, redis_client=redis_client, key_prefix=key_prefix
        ) as client:
            for handle in ("sandbox", "sandbox_offline"):
                await client.room(handle)
            await client.fetch(DEFAULT_ROOM_ID)
        assert len(first.seen) + len(second.seen) == len(tiktok.requests)
        assert abs(len(first.seen) - len(second.seen)) <= 1


def test_proxy_settings_parse_and_never_show_the_password() -> None:
    settings = TikTokSettings(
        upstream_proxy="http://u:secret@proxy.example:3128, socks5://10.0.0.1, https://h"
    )
    http, socks, https = settings.upstream_proxy
    assert (http.scheme, http.host, http.port, http.username) == (
        "http",
        "proxy.example",
        3128,
        "u",
    )
    assert http.url == "http://proxy.example:3128"
    assert http.headers is not None
    assert (socks.port, https.port) == (1080, 443)
    for text in (str(http), repr(http), repr(settings), str(settings)):
        assert "secret" not in text
    with pytest.raises(ValueError, match="scheme 'ftp'") as refused:
        parse_proxies("ftp://u:secret@h:21")
    assert "secret" not in str(refused.value)
    assert isinstance(http, UpstreamProxy)
