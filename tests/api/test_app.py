"""The whole path over real HTTP on loopback: app -> Redis queue -> worker -> signer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from api.app import AppServices, AppSettings, create_app
from signer.xbogus import verify_xbogus
from signer.xgnarly import verify_xgnarly
from tests.redis_server import private_redis
from tests.signer.conftest import FETCH_URL, TIKTOK_UA_WINDOWS
from tests.workers.conftest import running_worker
from workers import QueueSettings, SignQueue


@pytest.fixture(scope="module")
def redis_for_api() -> Iterator[str]:
    with private_redis() as url:
        yield url


@pytest.fixture
async def service(redis_for_api: str) -> AsyncIterator[tuple[str, QueueSettings]]:
    settings = QueueSettings(REDIS_URL=redis_for_api, prefix=f"api-{uuid.uuid4().hex[:8]}")
    queue = SignQueue(settings)
    await queue.start()
    server = TestServer(create_app(AppSettings(), AppServices(queue)), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), settings
    finally:
        await server.close()
        await queue.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _check_signed_url(signed_url: str, user_agent: str) -> None:
    query = urlsplit(signed_url).query
    params = dict(parse_qsl(query, keep_blank_values=True))
    covered = query[: query.index("&X-Bogus=")]
    assert "msToken" in params
    assert verify_xbogus(params["X-Bogus"], covered, user_agent)
    assert verify_xgnarly(params["X-Gnarly"], covered, user_agent)


async def test_every_sign_route_answers_in_its_dialect(
    service: tuple[str, QueueSettings], http: aiohttp.ClientSession
) -> None:
    base, settings = service
    async with running_worker(settings):
        async with http.get(
            f"{base}/webcast/sign_url",
            params={"url": FETCH_URL, "client": "ttlive-node", "uuc": "1", "apiKey": "None"},
        ) as response:
            assert response.status == 200
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            v1 = await response.json()
        assert v1["code"] == 200
        _check_signed_url(v1["signedUrl"], v1["User-Agent"])
        assert v1["X-Bogus"] in v1["signedUrl"]

        for path in ("/webcast/sign_url", "/webcast/sign_url/", "/tiktok/sign_url"):
            body = {"url": FETCH_URL, "userAgent": TIKTOK_UA_WINDOWS, "method": "GET"}
            async with http.post(f"{base}{path}?client=ttlive-node", json=body) as response:
                assert response.status == 200, await response.text()
                v2 = await response.json()
            assert v2["code"] == 200
            assert v2["response"]["userAgent"] == TIKTOK_UA_WINDOWS
            _check_signed_url(v2["response"]["signedUrl"], TIKTOK_UA_WINDOWS)
            assert v2["response"]["tokens"]

        form = {"url": FETCH_URL, "userAgent": TIKTOK_UA_WINDOWS, "type": "xhr"}
        async with http.post(f"{base}/webcast/sign_url/", data=form) as response:
            assert response.status == 200
            _check_signed_url((await response.json())["response"]["signedUrl"], TIKTOK_UA_WINDOWS)

        async with http.post(f"{base}/signature", data=FETCH_URL) as response:
            assert response.status == 200
            legacy = await response.json()
        assert legacy["status"] == "ok"
        nav = legacy["data"]["navigator"]
        _check_signed_url(legacy["data"]["signed_url"], nav["user_agent"])
        assert legacy["data"]["x-bogus"] == legacy["data"]["X-Bogus"]

        async with http.post(f"{base}/api/signature", json={"roomUrl": FETCH_URL}) as response:
            assert response.status == 200
            own = await response.json()
        assert own["status"] == "success"
        assert own["response_time_ms"] > 0
        _check_signed_url(own["data"]["signed_url"], own["data"]["navigator"]["user_agent"])


@pytest.mark.parametrize(
    ("path", "kwargs", "status"),
    [
        (
            "/webcast/sign_url",
            {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
            400,
        ),
        ("/webcast/sign_url", {"data": b"url=x", "headers": {"Content-Type": "image/png"}}, 415),
        ("/webcast/sign_url", {"json": {"userAgent": "x"}}, 400),
        ("/webcast/sign_url", {"json": {"url": "https://example.com/x"}}, 400),
        ("/webcast/sign_url", {"json": {"url": "x" * 70_000}}, 413),
        (
            "/api/signature",
            {"data": b"[1, 2]", "headers": {"Content-Type": "application/json"}},
            400,
        ),
        ("/api/signature", {"json": {"url": "ftp://www.tiktok.com/"}}, 400),
        ("/signature", {"data": b"", "headers": {"Content-Type": "text/plain"}}, 400),
    ],
)
async def test_bad_input_gets_a_structured_4xx(
    service: tuple[str, QueueSettings],
    http: aiohttp.ClientSession,
    path: str,
    kwargs: dict[str, object],
    status: int,
) -> None:
    base, settings = service
    async with running_worker(settings), http.post(f"{base}{path}", **kwargs) as response:  # type: ignore[arg-type]
        assert response.status == status, await response.text()
        body = await response.json()
    if path.startswith("/webcast"):
        assert body["code"] == status
        assert body["message"]
    else:
        assert body["status"] == "error"
        assert body["error"]["code"] == status
        assert body["error"]["type"] == "VALIDATION_ERROR"
        assert body["error"]["message"]


async def test_missing_url_on_get_and_unknown_route(
    service: tuple[str, QueueSettings], http: aiohttp.ClientSession
) -> None:
    base, _ = service
    async with http.get(f"{base}/webcast/sign_url") as response:
        assert response.status == 400
        assert (await response.json())["code"] == 400
    async with http.get(f"{base}/nope") as response:
        assert response.status == 404
        assert (await response.json())["status"] == "error"


async def test_cors_preflight(
    service: tuple[str, QueueSettings], http: aiohttp.ClientSession
) -> None:
    base, _ = service
    async with http.options(f"{base}/webcast/sign_url") as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "X-Api-Key" in response.headers["Access-Control-Allow-Headers"]


async def test_health_follows_the_workers(
    service: tuple[str, QueueSettings], http: aiohttp.ClientSession
) -> None:
    base, settings = service
    async with http.get(f"{base}/health") as response:
        assert response.status == 503
        body = await response.json()
    assert body["status"] == "unhealthy"
    assert body["workers"] == 0
    assert body["redis_connected"] is True
    async with running_worker(settings):
        await _first_heartbeat(http, base)
        async with http.get(f"{base}/health") as response:
            assert response.status == 200
            body = await response.json()
    assert body["status"] == "healthy"
    assert body["workers"] == 1
    assert body["signature_generator_ready"] is True


async def _first_heartbeat(http: aiohttp.ClientSession, base: str) -> None:
    # The worker says it is alive on its first look at the queue; one signature ensures it.
    async with http.post(f"{base}/api/signature", json={"url": FETCH_URL}) as response:
        assert response.status == 200


async def test_no_worker_is_a_503_within_the_deadline(
    service: tuple[str, QueueSettings], http: aiohttp.ClientSession
) -> None:
    base, _ = service
    timeout = aiohttp.ClientTimeout(total=10)
    async with http.get(
        f"{base}/webcast/sign_url", params={"url": FETCH_URL}, timeout=timeout
    ) as response:
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        assert (await response.json())["code"] == 503


async def test_metrics_openapi_and_docs(
    service: tuple[str, QueueSettings], http: aiohttp.ClientSession
) -> None:
    base, settings = service
    async with running_worker(settings):
        await _first_heartbeat(http, base)
    async with http.get(f"{base}/metrics") as response:
        text = await response.text()
    labels = 'dialect="structured",error_type="",route="api_signature",status="200"'
    assert f"signer_api_requests_total{{{labels}}} 1.0" in text
    async with http.get(f"{base}/openapi.json") as response:
        document = json.loads(await response.text())
    assert "/webcast/sign_url" in document["paths"]
    async with http.get(f"{base}/docs") as response:
        assert response.status == 200
        assert "openapi.json" in await response.text()


async def test_full_queue_is_a_503_at_once(redis_for_api: str, http: aiohttp.ClientSession) -> None:
    settings = QueueSettings(
        REDIS_URL=redis_for_api, prefix=f"full-{uuid.uuid4().hex[:8]}", max_depth=1
    )
    queue = SignQueue(settings)
    await queue.start()
    server = TestServer(create_app(AppSettings(), AppServices(queue)), host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    # No worker: the first request's job waits in the queue until its deadline (5 s).
    first = asyncio.create_task(http.post(f"{base}/api/signature", json={"url": FETCH_URL}))
    try:
        await asyncio.sleep(0.3)
        started = time.monotonic()
        async with http.post(f"{base}/api/signature", json={"url": FETCH_URL}) as response:
            assert response.status == 503
            assert response.headers["Retry-After"] == "1"
            body = await response.json()
        # At once, not at the deadline (the bound is loose: a busy machine is slow).
        assert time.monotonic() - started < 2.5
        assert body["error"]["type"] == "SERVICE_UNAVAILABLE"
    finally:
        # The first answer released (or its request given up) before the server closes,
        # which would otherwise wait forever for the connection that answer holds.
        first.cancel()
        with contextlib.suppress(BaseException):
            (await first).release()
        await server.close()
        await queue.close()
