"""The real clients read our refusals: TikTokLive 6.6 and its EulerStream SDK, over loopback.

A tiny aiohttp server on 127.0.0.1 answers with bodies and headers built by `accounts.ratelimit`
from real decisions of the limiter; the installed TikTokLive (typed `Any`: it ships no type
information) talks to it over real HTTP.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from redis.asyncio import Redis

from accounts.ratelimit import (
    RateDecision,
    RateLimiter,
    RateLimitSettings,
    caller_for,
)
from api.ratelimit_headers import eulerstream_limit_body, rate_limit_headers, rate_limits_body
from tests.redis_server import private_redis

DAY0 = 20_000 * 86_400  # 2024-10-04 00:00:00 UTC
T = DAY0 + 5 * 3600 + 7 * 60  # 05:07:00
ROOM_ID = 7312345678901234567
CHROME_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
# TikTokLive 6.6 imports websockets' deprecated legacy API: not ours to fix.
pytestmark = [
    pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:websockets.exceptions.InvalidStatusCode:DeprecationWarning"),
]


def _module(name: str) -> Any:
    return importlib.import_module(name)


@dataclass
class Answers:
    """What the loopback server answers, and the requests it saw."""

    refused: RateDecision
    peeked: RateDecision
    seen: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with private_redis() as url:
        yield url


@pytest.fixture
async def answers(redis_url: str) -> AsyncIterator[Answers]:
    redis = Redis.from_url(redis_url)
    try:
        limiter = RateLimiter(redis, f"test-{uuid.uuid4().hex[:8]}")
        budgets = RateLimitSettings(anonymous_per_minute=3)
        caller = caller_for(budgets, client_ip="192.0.2.10")
        for _ in range(3):
            assert (await limiter.hit(caller, T + 10)).allowed
        refused = await limiter.hit(caller, T + 17.5)
        assert not refused.allowed
        yield Answers(refused, await limiter.peek(caller, T + 18))
    finally:
        await redis.aclose()


@pytest.fixture
async def server(answers: Answers) -> AsyncIterator[str]:
    """Base URL of a loopback server refusing `/webcast/*` as the API will."""

    async def refuse(request: web.Request) -> web.Response:
        answers.seen.append(f"{request.method} {request.path_qs}")
        return web.json_response(
            eulerstream_limit_body(answers.refused),
            status=429,
            headers=rate_limit_headers(answers.refused),
        )

    async def limits(request: web.Request) -> web.Response:
        answers.seen.append(f"{request.method} {request.path_qs}")
        return web.json_response(
            rate_limits_body(answers.peeked), headers=rate_limit_headers(answers.peeked)
        )

    app = web.Application()
    app.router.add_get("/webcast/fetch", refuse)
    app.router.add_post("/webcast/sign_url", refuse)
    app.router.add_get("/webcast/rate_limits", limits)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
def clean_sign_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A user's own SIGN_API_URL / SIGN_API_KEY must not send these tests anywhere else.
    monkeypatch.delenv("SIGN_API_URL", raising=False)
    monkeypatch.delenv("SIGN_API_KEY", raising=False)


async def test_tiktoklive_raises_its_rate_limit_error_with_our_values(
    server: str, answers: Answers, clean_sign_env: None
) -> None:
    errors = _module("TikTokLive.client.errors")
    platform = _module("TikTokLive.client.web.routes.fetch_signed_websocket").WebcastPlatform
    client = _module("TikTokLive.client.web.web_client").TikTokWebClient(
        signer_kwargs={"sign_api_base": server}
    )
    try:
        with pytest.raises(errors.SignatureRateLimitError) as caught:
            await client.fetch_signed_websocket(platform=platform.WEB, room_id=ROOM_ID)
    finally:
        await client.close()
        await client.signer.client.aclose()

    assert len(answers.seen) == 1
    assert answers.seen[0].startswith("GET /webcast/fetch?client=ttlive-python&room_id=")
    error = caught.value
    assert error.reason == errors.SignAPIError.ErrorReason.RATE_LIMIT
    assert answers.refused.retry_after == 43  # 42.5 s to the end of the minute, rounded up
    assert error.retry_after == 43
    assert error.reset_time == 43
    text = str(error)
    assert "(rate_limit_ip_minute) Too many connections started, try again in 43 seconds." in text
    assert str(eulerstream_limit_body(answers.refused)["message"]) in text


async def test_tiktoklive_sign_route_reports_the_refusal(
    server: str, answers: Answers, clean_sign_env: None
) -> None:
    # The sign route has no rate-limit handling of its own: its generic error, not a crash.
    errors = _module("TikTokLive.client.errors")
    signer = _module("TikTokLive.client.web.web_signer").TikTokSigner(sign_api_base=server)
    try:
        with pytest.raises(errors.UnexpectedSignatureError) as caught:
            await signer.webcast_sign(
                url=f"https://webcast.tiktok.com/webcast/room/info/?aid=1988&room_id={ROOM_ID}",
                method="GET",
                sign_url_type="xhr",
                payload="",
                user_agent=CHROME_UA,
            )
    finally:
        await signer.client.aclose()

    assert answers.seen == ["POST /webcast/sign_url?client=ttlive-other"]
    response = caught.value.response
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "43"
    assert response.json()["limit_label"] == "rate_limit_ip_minute"


async def test_eulerstream_sdk_parses_our_rate_limits(server: str, answers: Answers) -> None:
    client_class = _module("EulerApiSdk").Client
    get_rate_limits = _module("EulerApiSdk.api.tik_tok_live.get_rate_limits")
    async with client_class(base_url=server) as client:
        limits = await get_rate_limits.asyncio(client=client)

    assert answers.seen == ["GET /webcast/rate_limits"]
    assert (limits.code, limits.load_shedding.chance) == (200, 0)
    assert (limits.minute.max_, limits.minute.remaining) == (3, 0)
    assert limits.minute.reset_at == "2024-10-04T05:08:00.000Z"
    assert (limits.hour.max_, limits.hour.reset_at) == (None, None)
    assert (limits.day.max_, limits.day.remaining) == (1000, 997)
