"""The connect and room-id routes over real HTTP: app -> TikTok client -> the sandbox,
signatures from a real worker through the Redis queue."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from accounts.admission import Accounting
from accounts.ratelimit import RateLimiter
from accounts.settings import RateLimitSettings
from api.app import AppServices, AppSettings, create_app
from api.connect import queue_signer
from sandbox import DEFAULT_ROOM_ID, Sandbox
from signer import SignRequest, SignResult
from tests.redis_server import private_redis
from tests.tiktok.conftest import settings_for
from tests.tiktok.upstreams import ForwardProxy
from tests.workers.conftest import running_worker
from tiktok import TikTokClient
from tiktok.proto import ProtoMessageFetchResult
from tiktok.proxies import parse_proxies
from workers import QueueSettings, SignQueue


@dataclass
class Stack:
    base: str
    tiktok: Sandbox
    client: TikTokClient
    http: aiohttp.ClientSession


@pytest.fixture(scope="module")
def redis_for_connect() -> Iterator[str]:
    with private_redis() as url:
        yield url


@contextlib.asynccontextmanager
async def connect_stack(
    redis_url: str,
    mode: str = "fetch",
    *,
    app_settings: AppSettings | None = None,
    per_minute: int | None = None,
    **overrides: Any,
) -> AsyncIterator[Stack]:
    settings = QueueSettings(REDIS_URL=redis_url, prefix=f"connect-{uuid.uuid4().hex[:8]}")
    queue = SignQueue(settings)
    await queue.start()
    async with Sandbox(mode=mode) as sandbox:  # type: ignore[arg-type]
        client = TikTokClient(
            settings_for(sandbox, **overrides),
            sign=queue_signer(queue),
            redis_client=queue.redis,
            key_prefix=f"{settings.prefix}:tiktok:",
        )
        await client.start()
        accounting = Accounting()
        if per_minute is not None:  # anonymous callers limited, as a deployment has them
            accounting = Accounting(
                limiter=RateLimiter(queue.redis, settings.prefix),
                limits=RateLimitSettings(anonymous_per_minute=per_minute),
            )
        services = AppServices(queue, accounting=accounting, tiktok=client)
        app = create_app(app_settings or AppSettings(), services)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            async with running_worker(settings), aiohttp.ClientSession() as http:
                yield Stack(str(server.make_url("")).rstrip("/"), sandbox, client, http)
        finally:
            await server.close()
            await client.close()
            await queue.close()


@pytest.fixture
async def stack(redis_for_connect: str) -> AsyncIterator[Stack]:
    async with connect_stack(redis_for_connect, connect_strategy="fetch") as made:
        yield made


def _fetch_result(body: bytes) -> ProtoMessageFetchResult:
    result = ProtoMessageFetchResult()
    result.ParseFromString(body)
    return result


async def _get(stack: Stack, path: str, **params: str) -> tuple[int, Any, bytes]:
    async with stack.http.get(f"{stack.base}{path}", params=params) as response:
        return response.status, response.headers, await response.read()


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/webcast/fetch", {"room_id": DEFAULT_ROOM_ID, "client": "ttlive-python"}),
        ("/webcast/fetch/", {"unique_id": "@sandbox", "aid": "1988", "msToken": "x"}),
        (f"/webcast/rooms/{DEFAULT_ROOM_ID}/connect", {"cursor": "", "client": "ttlive-node"}),
        ("/webcast/fetch", {"unique_id": "Sandbox", "client_enter": "true", "platform": "web"}),
    ],
)
async def test_connect_relays_tiktoks_answer(
    stack: Stack, path: str, params: dict[str, str]
) -> None:
    ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0"
    status, headers, body = await _get(stack, path, user_agent=ua, **params)
    assert status == 200, body
    assert headers["Content-Type"] == "application/protobuf"
    assert headers["X-Set-TT-Cookie"].startswith("ttwid=")
    assert headers["X-Room-Id"] == DEFAULT_ROOM_ID
    assert headers["X-Connect-Strategy"] == "fetch"
    assert headers["X-Request-Id"]
    result = _fetch_result(body)
    assert result.cursor
    assert result.push_server.startswith("ws://")
    fetched = stack.tiktok.requests.of("im_fetch")
    # The sandbox accepted our signature (X-Bogus and X-Gnarly for the UA we sent).
    assert [r.outcome for r in fetched] == ["ok"]
    assert fetched[0].header("User-Agent") == ua


@pytest.mark.parametrize(("mode", "strategy"), [("socket", "auto"), ("socket", "socket")])
async def test_socket_strategy_points_at_the_push_server(
    redis_for_connect: str, mode: str, strategy: str
) -> None:
    async with connect_stack(redis_for_connect, mode, connect_strategy=strategy) as stack:
        status, headers, body = await _get(stack, "/webcast/fetch", unique_id="sandbox")
        assert status == 200, body
        assert headers["X-Connect-Strategy"] == "socket"
        assert headers["X-Set-TT-Cookie"].startswith("ttwid=")
        result = _fetch_result(body)
        assert result.is_first
        assert result.push_server == stack.tiktok.push_url
        assert result.route_params["cursor"] == result.cursor
        # auto tried im/fetch first (answered empty in socket mode); socket never asks it.
        tried = stack.tiktok.requests.count("im_fetch")
        assert tried == (1 if strategy == "auto" else 0)


async def test_room_id_routes(stack: Stack) -> None:
    for path, params in (
        ("/webcast/anchors/sandbox/room_id", {}),
        ("/webcast/room_id", {"uniqueId": "@sandbox"}),
    ):
        async with stack.http.get(f"{stack.base}{path}", params=params) as response:
            assert response.status == 200
            body = await response.json()
        assert body["code"] == 200
        assert body["ok"] is True
        assert body["room_id"] == DEFAULT_ROOM_ID
        assert body["is_live"] is True
        assert isinstance(body["routes_attempted"], list)
    async with stack.http.get(f"{stack.base}/webcast/anchors/nobody_here/room_id") as response:
        assert response.status == 404
        missing = await response.json()
    assert missing["ok"] is False
    assert missing["code"] == 404
    assert len(missing["message"]) >= 19
    assert missing["routes_attempted"]
    async with stack.http.get(f"{stack.base}/webcast/fetch?unique_id=nobody_here") as response:
        assert response.status == 404
        assert (await response.json())["code"] == 404


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/webcast/fetch", {"room_id": "12ab"}),
        ("/webcast/fetch", {"room_id": "1" * 20}),
        ("/webcast/fetch", {"room_id": "0"}),
        ("/webcast/fetch", {}),
        ("/webcast/fetch", {"unique_id": "a/b"}),
        ("/webcast/fetch", {"unique_id": ".."}),
        ("/webcast/fetch", {"unique_id": "a%2Fb"}),
        ("/webcast/fetch", {"unique_id": "a\x01b"}),
        ("/webcast/fetch", {"room_id": DEFAULT_ROOM_ID, "user_agent": "M" * 5000}),
        ("/webcast/fetch", {"room_id": DEFAULT_ROOM_ID, "platform": "playstation"}),
        ("/webcast/rooms/12ab/connect", {}),
        ("/webcast/anchors/a..b/room_id", {}),
        ("/webcast/anchors/a%2Fb/room_id", {}),
        ("/webcast/room_id", {}),
    ],
)
async def test_bad_input_is_a_400_and_nothing_goes_upstream(
    stack: Stack, path: str, params: dict[str, str]
) -> None:
    async with stack.http.get(f"{stack.base}{path}", params=params) as response:
        assert response.status == 400, await response.text()
        body = await response.json()
    assert body["code"] == 400
    assert body["message"]
    assert len(stack.tiktok.requests) == 0


async def test_a_tampered_signature_is_refused_by_tiktok_and_reported(
    redis_for_connect: str,
) -> None:
    async with connect_stack(redis_for_connect, connect_strategy="fetch") as stack:
        real = stack.client._fetcher._sign

        async def tampered(request: SignRequest) -> SignResult:
            result = await real(request)
            url = result.signed_url.replace("X-Bogus=", "X-Bogus=A", 1)
            return dataclasses.replace(result, signed_url=url)

        stack.client._fetcher._sign = tampered
        status, _, body = await _get(stack, "/webcast/fetch", room_id=DEFAULT_ROOM_ID)
        assert status == 502
        assert b"TikTok" in body
        assert b"empty" in body
        assert stack.tiktok.requests.outcomes("im_fetch")[-1] != "ok"


async def test_tiktok_down_opens_the_breaker_then_recovers(redis_for_connect: str) -> None:
    async with connect_stack(
        redis_for_connect,
        connect_strategy="fetch",
        tiktok_breaker_failures=2,
        tiktok_breaker_cooldown=1.0,
        tiktok_retries=0,
    ) as stack:
        assert (await _get(stack, "/webcast/fetch", room_id=DEFAULT_ROOM_ID))[0] == 200
        await stack.tiktok.close()
        statuses = [
            (await _get(stack, "/webcast/fetch", room_id=DEFAULT_ROOM_ID))[0] for _ in range(2)
        ]
        assert statuses == [502, 502]
        started = time.perf_counter()
        status, headers, body = await _get(stack, "/webcast/fetch", room_id=DEFAULT_ROOM_ID)
        elapsed = time.perf_counter() - started
        assert status == 503
        assert b"TikTok" in body
        assert int(headers["Retry-After"]) >= 1
        # Answered by the open breaker, not by waiting on TikTok: the connect timeout is 1 s.
        assert elapsed < 0.25, elapsed
        async with stack.http.get(f"{stack.base}/health") as response:
            assert (await response.json())["tiktok_upstream"] == "open"
        await stack.tiktok.start()
        await asyncio.sleep(1.1)
        assert (await _get(stack, "/webcast/fetch", room_id=DEFAULT_ROOM_ID))[0] == 200
        async with stack.http.get(f"{stack.base}/health") as response:
            assert (await response.json())["tiktok_upstream"] == "closed"
        async with stack.http.get(f"{stack.base}/metrics") as response:
            text = await response.text()
        assert "signer_tiktok_breaker_opened_total 1.0" in text
        assert 'signer_connects_total{outcome="tiktok_error",route="webcast_fetch"' in text


async def test_100_concurrent_connects_for_one_handle_cost_one_room_lookup(stack: Stack) -> None:
    statuses = await asyncio.gather(
        *(_get(stack, "/webcast/fetch", unique_id="sandbox") for _ in range(100))
    )
    assert [status for status, _, _ in statuses] == [200] * 100
    assert stack.tiktok.requests.count("live_page", "api_live_room") == 1


async def test_every_upstream_request_goes_through_the_proxy(redis_for_connect: str) -> None:
    async with (
        ForwardProxy() as proxy,
        connect_stack(
            redis_for_connect,
            connect_strategy="fetch",
            upstream_proxy=parse_proxies(proxy.url),
        ) as stack,
    ):
        status, _, _ = await _get(stack, "/webcast/fetch", unique_id="sandbox")
        assert status == 200
        upstream = len(stack.tiktok.requests)
        assert upstream >= 3  # the live page, the ttwid visit, im/fetch
        assert len(proxy.seen) == upstream


async def test_callers_cookie_header_reaches_tiktok(stack: Stack) -> None:
    async with stack.http.get(
        f"{stack.base}/webcast/fetch",
        params={"room_id": DEFAULT_ROOM_ID},
        headers={"x-cookie-header": "sessionid=secret-session; tt-target-idc=useast1a"},
    ) as response:
        assert response.status == 200
    sent = stack.tiktok.requests.of("im_fetch")[-1].header("Cookie") or ""
    assert "sessionid=secret-session" in sent


async def test_without_a_tiktok_client_connects_are_a_clear_503(
    redis_for_connect: str,
) -> None:
    settings = QueueSettings(REDIS_URL=redis_for_connect, prefix=f"c-{uuid.uuid4().hex[:8]}")
    queue = SignQueue(settings)
    await queue.start()
    server = TestServer(create_app(AppSettings(), AppServices(queue)), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            url = f"{str(server.make_url('')).rstrip('/')}/webcast/fetch?room_id=1"
            async with http.get(url) as response:
                assert response.status == 503
                assert "TikTok client" in (await response.json())["message"]
    finally:
        await server.close()
        await queue.close()


async def test_a_connect_counts_its_weight_and_a_429_every_client_survives(
    redis_for_connect: str,
) -> None:
    async with connect_stack(
        redis_for_connect,
        connect_strategy="fetch",
        app_settings=AppSettings(connect_weight=2),
        per_minute=5,
    ) as stack:
        first = await _get(stack, "/webcast/fetch", room_id=DEFAULT_ROOM_ID)
        second = await _get(stack, f"/webcast/rooms/{DEFAULT_ROOM_ID}/connect")
        assert (first[0], second[0]) == (200, 200)
        assert second[1]["RateLimit-Remaining"] == "1"
        async with stack.http.get(
            f"{stack.base}/webcast/fetch", params={"room_id": DEFAULT_ROOM_ID}
        ) as response:
            assert response.status == 429
            body = await response.json()  # JSON, as TLC requires
            headers = response.headers
        assert len(body["message"]) >= 19  # TLC's box drawing needs 19 characters
        assert body["limit_label"] == "rate_limit_ip_minute"
        for name in ("Retry-After", "X-RateLimit-Reset", "RateLimit-Remaining", "RateLimit-Reset"):
            assert int(headers[name]) >= 1, name
        # One im/fetch per admitted connect; the refused one sent nothing upstream.
        assert stack.tiktok.requests.count("im_fetch") == 2
        async with stack.http.get(f"{stack.base}/metrics") as response:
            text = await response.text()
        assert (
            'signer_connects_total{outcome="refused",route="webcast_fetch",strategy="none"} 1.0'
            in text
        )
        assert (
            'signer_connects_total{outcome="ok",route="rooms_connect",strategy="fetch"} 1.0' in text
        )


async def test_sign_url_pointed_at_a_local_tiktok_signs_its_urls(redis_for_connect: str) -> None:
    """TikTok-Live-Connector 1.x fetches im/fetch itself with the URL sign_url returns."""
    async with Sandbox(mode="fetch") as sandbox:
        local = sandbox.webcast_url
        async with connect_stack(
            redis_for_connect, app_settings=AppSettings(webcast_url=local)
        ) as stack:
            query = f"aid=1988&app_name=tiktok_web&cursor=&internal_ext=&room_id={DEFAULT_ROOM_ID}"
            for given in (
                f"{local}/webcast/im/fetch/?{query}",  # configured for the local TikTok
                f"https://webcast.tiktok.com/webcast/im/fetch/?{query}",  # left at TikTok's
            ):
                async with stack.http.get(
                    f"{stack.base}/webcast/sign_url", params={"url": given}
                ) as response:
                    assert response.status == 200, await response.text()
                    signed = await response.json()
                assert signed["signedUrl"].startswith(f"{local}/webcast/im/fetch/?")
                async with stack.http.get(
                    signed["signedUrl"], headers={"User-Agent": signed["User-Agent"]}
                ) as fetched:
                    assert fetched.status == 200
                    assert await fetched.read()  # signed for the query it carries
            assert sandbox.requests.outcomes("im_fetch") == ["ok", "ok"]
