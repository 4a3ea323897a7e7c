"""The aiohttp application: every client dialect's routes, wired to the signing queue.

Each route answers in its own client's dialect, errors included: EulerStream routes say
`{code, message}`, the others `{status: "error", error: {...}}`. Nothing a caller sends
can produce a 500 or an empty 200. What every request needs (request id, CORS, metrics,
the log line, errors, admission, the usage row) is in `api.middlewares`; the `/admin/...`
routes are a sub-app with their own token check (`api.admin`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib.metadata import version

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from accounts.admission import Accounting, admit
from signer import SignError, SignResult
from tiktok import BreakerState, TikTokClient
from tiktok.hosts import WEBCAST_ORIGIN, rebase
from workers import SignQueue

from .admin import admin_app
from .connect import (
    ROOM_ID_ERROR_FIELDS,
    anchor_room_id,
    room_id_by_query,
    rooms_connect,
    webcast_fetch,
)
from .context import (
    ACCOUNTING,
    DIALECTS,
    METRICS,
    QUEUE,
    ROUTES,
    SETTINGS,
    TIKTOK,
    TRACE,
    AppSettings,
    Handler,
    RouteInfo,
)
from .dialects import (
    eulerstream_v1_response,
    eulerstream_v2_response,
    own_response,
    signature_response,
)
from .errors import ApiError, api_error_from_sign_error
from .jsontext import json_text
from .metrics import ApiMetrics
from .middlewares import CORS_HEADERS, MIDDLEWARES, error_response, target_of
from .openapi import openapi_document
from .parsing import (
    MAX_BODY_BYTES,
    ParsedSign,
    eulerstream_v1_request,
    eulerstream_v2_request,
    own_request,
    parse_api_key,
    parse_sign_body,
    signature_request,
)
from .ratelimit_headers import rate_limits_body
from .reference import REFERENCE_ASSETS, REFERENCE_HEADERS, reference_html

__all__ = [
    "ACCOUNTING",
    "QUEUE",
    "VERSION",
    "AppServices",
    "AppSettings",
    "create_app",
    "unrouted_error_response",
]

# The package's own version, as installed: one definition (pyproject.toml).
VERSION = version("tiktok-signer")
# Seconds between reads of the queue's depth and workers for the gauges: three Redis
# commands in one round trip, about 0.6 commands a second for an idle API.
QUEUE_REFRESH_SECONDS = 5.0


@dataclass(slots=True)
class AppServices:
    """What the application signs and counts with; the caller starts and closes them.
    Keys, limits and usage are off when `accounting` is left empty; the connect routes
    answer 503 without `tiktok`."""

    queue: SignQueue
    accounting: Accounting = field(default_factory=Accounting)
    metrics: ApiMetrics = field(default_factory=ApiMetrics)
    tiktok: TikTokClient | None = None


def unrouted_error_response(
    app: web.Application, path: str | None, error: ApiError
) -> web.Response:
    """The answer to a request refused before routing (by the HTTP parser): in the dialect
    of the route `path` names, structured when it names none or could not be read."""
    response = error_response(error, app[DIALECTS].get(path or "", "structured"))
    response.headers.update(CORS_HEADERS)
    return response


async def _signed(request: web.Request, parsed: ParsedSign) -> SignResult:
    trace = request[TRACE]
    trace.target = target_of(parsed.request.url)
    outcome = await request.app[QUEUE].submit(parsed.request)
    trace.outcome = outcome
    if isinstance(outcome.result, SignError):
        raise api_error_from_sign_error(outcome.result)
    return outcome.result


# Pointed at a TikTok of its own (`AppSettings.webcast_url`: the sandbox), the EulerStream
# sign routes take that TikTok's webcast URLs as TikTok's (the tokens cover the query, not
# the host) and answer every webcast URL on it, since their clients then fetch it:
# TikTok-Live-Connector 1.x configured for the sandbox signs im/fetch through us.


def _from_local(request: web.Request, url: object) -> str | None:
    """`url` moved from the local TikTok onto TikTok's webcast host; None when it is not
    one of the local TikTok's URLs (or there is none)."""
    base = request.app[SETTINGS].webcast_url
    if base is None or not isinstance(url, str) or not url.startswith(base + "/"):
        return None
    return rebase(url, base, WEBCAST_ORIGIN)


def _fetchable(request: web.Request, result: SignResult) -> SignResult:
    """`result` with its webcast URL moved onto the local TikTok, when there is one."""
    base = request.app[SETTINGS].webcast_url
    if base is None or not result.signed_url.startswith(WEBCAST_ORIGIN + "/"):
        return result
    return replace(result, signed_url=rebase(result.signed_url, WEBCAST_ORIGIN, base))


async def _body(request: web.Request) -> bytes:
    return await request.read()


async def sign_url_get(request: web.Request) -> web.Response:
    query: Mapping[str, str] = request.query
    moved = _from_local(request, query.get("url"))
    if moved is not None:
        query = {**query, "url": moved}
    parsed = eulerstream_v1_request(query, request.headers)
    result = _fetchable(request, await _signed(request, parsed))
    return web.json_response(eulerstream_v1_response(result), dumps=json_text)


async def sign_url_post(request: web.Request) -> web.Response:
    fields = parse_sign_body(request.headers.get("Content-Type", ""), await _body(request))
    moved = _from_local(request, fields.get("url"))
    if moved is not None:
        fields = {**fields, "url": moved}
    parsed = eulerstream_v2_request(fields, request.query, request.headers)
    result = _fetchable(request, await _signed(request, parsed))
    return web.json_response(eulerstream_v2_response(result), dumps=json_text)


async def signature(request: web.Request) -> web.Response:
    raw = await _body(request)
    parsed = signature_request(
        request.headers.get("Content-Type", ""), raw, request.query, request.headers
    )
    return web.json_response(signature_response(await _signed(request, parsed)), dumps=json_text)


async def own_signature(request: web.Request) -> web.Response:
    started = time.perf_counter()
    fields = parse_sign_body(request.headers.get("Content-Type", ""), await _body(request))
    parsed = own_request(fields, request.query, request.headers)
    result = await _signed(request, parsed)
    elapsed_ms = (time.perf_counter() - started) * 1000
    return web.json_response(own_response(result, elapsed_ms), dumps=json_text)


async def rate_limits(request: web.Request) -> web.Response:
    """`GET /webcast/rate_limits`: the caller's windows, read without counting."""
    trace = request[TRACE]
    trace.raw_key = parse_api_key(request.query, request.headers)
    await admit(request.app[ACCOUNTING], trace.raw_key, trace.client_ip, trace.access, count=False)
    assert trace.access.decision is not None
    return web.json_response(rate_limits_body(trace.access.decision), dumps=json_text)


async def health(request: web.Request) -> web.Response:
    state = await request.app[METRICS].refresh_queue(request.app[QUEUE])
    redis_ok = state is not None
    workers, depth = (state.workers, state.ready) if state is not None else (0, 0)
    expected = state.expected if state is not None else 0
    database_ok = await request.app[ACCOUNTING].database_connected()
    # Signing goes on without Postgres (usage rows wait, cached keys still pass), so a
    # database outage shows here but does not make the service unhealthy.
    healthy = redis_ok and workers > 0 and request.app[QUEUE].listening
    tiktok = request.app.get(TIKTOK)
    breaker = tiktok.breaker_state if tiktok is not None else None
    # Fewer workers than their supervisors run (one died and is being restarted), or
    # TikTok failing (the breaker open), is "degraded" with a 200: this API still signs,
    # so a load balancer must keep it.
    degraded = workers < expected or breaker == BreakerState.OPEN
    status = "unhealthy" if not healthy else "degraded" if degraded else "healthy"
    body = {
        "status": status,
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "signature_generator_ready": workers > 0,
        "database_connected": database_ok,
        "redis_connected": redis_ok,
        "workers": workers,
        "workers_expected": expected,
        "queue_depth": depth,
        # closed | half_open | open; null when this server opens no LIVE rooms.
        "tiktok_upstream": breaker.value if breaker is not None else None,
    }
    return web.json_response(body, status=200 if healthy else 503, dumps=json_text)


async def metrics_text(request: web.Request) -> web.Response:
    registry = request.app[METRICS].registry
    return web.Response(
        body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(VERSION), dumps=json_text)


async def docs(request: web.Request) -> web.Response:
    """`/docs`: the API reference, drawn on the server from the OpenAPI document."""
    page = reference_html(openapi_document(VERSION), f"{request.scheme}://{request.host}")
    return web.Response(text=page, content_type="text/html", headers=REFERENCE_HEADERS)


async def docs_asset(request: web.Request) -> web.Response:
    """The reference's stylesheet and script."""
    found = REFERENCE_ASSETS.get(request.match_info["name"])
    if found is None:
        raise ApiError(404, "VALIDATION_ERROR", f"no route GET {request.path}")
    content_type, text = found
    return web.Response(text=text, content_type=content_type, headers=REFERENCE_HEADERS)


async def _queue_gauges(app: web.Application) -> AsyncIterator[None]:
    """Keep the queue gauges fresh between scrapes, off the request path."""

    stopping = asyncio.Event()

    async def refresh() -> None:
        # Told to stop by the event as well as by cancelling: redis-py can swallow a
        # cancellation that lands inside a command (seen at start-up under uvloop), and
        # the loop would then go on, with the clean-up waiting for it forever.
        while not stopping.is_set():
            await app[METRICS].refresh_queue(app[QUEUE])
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(QUEUE_REFRESH_SECONDS):
                    await stopping.wait()

    task = asyncio.create_task(refresh(), name="queue-gauges")
    yield
    stopping.set()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def create_app(settings: AppSettings, services: AppServices) -> web.Application:
    """The application, signing through `services.queue`; keys, limits and usage as
    `services.accounting` says. It starts (and stops) only its own gauge refresher."""
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=MIDDLEWARES)
    app[SETTINGS] = settings
    app[QUEUE] = services.queue
    app[METRICS] = services.metrics
    app[ACCOUNTING] = services.accounting
    app[DIALECTS] = {}
    app[ROUTES] = {}
    if services.tiktok is not None:
        app[TIKTOK] = services.tiktok
        services.metrics.connect.watch(services.tiktok.stats)
    routes: list[tuple[str, str, Handler, RouteInfo]] = [
        ("GET", "/webcast/sign_url", sign_url_get, RouteInfo("sign_url_v1", "eulerstream", True)),
        ("POST", "/webcast/sign_url", sign_url_post, _SIGN_URL_V2),
        ("POST", "/webcast/sign_url/", sign_url_post, _SIGN_URL_V2),
        ("POST", "/tiktok/sign_url", sign_url_post, _SIGN_URL_V2),
        ("POST", "/signature", signature, RouteInfo("signature", "structured", True)),
        ("POST", "/api/signature", own_signature, RouteInfo("api_signature", "structured", True)),
        ("GET", "/webcast/fetch", webcast_fetch, _CONNECT_FETCH),
        ("GET", "/webcast/fetch/", webcast_fetch, _CONNECT_FETCH),
        ("GET", "/webcast/rooms/{room_id}/connect", rooms_connect, _CONNECT_ROOMS),
        ("GET", "/webcast/anchors/{unique_id}/room_id", anchor_room_id, _ROOM_ID_ANCHOR),
        ("GET", "/webcast/room_id", room_id_by_query, _ROOM_ID_QUERY),
        ("GET", "/webcast/rate_limits", rate_limits, RouteInfo("rate_limits", "eulerstream")),
        ("GET", "/health", health, RouteInfo("health", "structured")),
        ("GET", "/metrics", metrics_text, RouteInfo("metrics", "structured")),
        ("GET", "/openapi.json", openapi_json, RouteInfo("openapi", "structured")),
        ("GET", "/docs", docs, RouteInfo("docs", "structured")),
        ("GET", "/docs/{name}", docs_asset, RouteInfo("docs", "structured")),
    ]
    for method, path, handler, info in routes:
        app.router.add_route(method, path, handler)
        app[ROUTES][handler] = info
        app[DIALECTS][path] = info.dialect
    # No catch-all route: the middlewares answer OPTIONS, unknown paths (404) and
    # unserved methods (405 with `Allow`). The admin sub-app's routes are named in the
    # parent's table, whose middlewares run first for them too.
    admin, admin_routes = admin_app(settings.accounts, services.metrics.registry)
    app.add_subapp("/admin/", admin)
    app[ROUTES].update(admin_routes)
    app.cleanup_ctx.append(_queue_gauges)
    return app


_SIGN_URL_V2 = RouteInfo("sign_url_v2", "eulerstream", True)
_CONNECT_FETCH = RouteInfo("webcast_fetch", "eulerstream", True, connect=True)
_CONNECT_ROOMS = RouteInfo("rooms_connect", "eulerstream", True, connect=True)
_ROOM_ID_ANCHOR = RouteInfo(
    "anchor_room_id", "eulerstream", True, error_fields=ROOM_ID_ERROR_FIELDS
)
_ROOM_ID_QUERY = RouteInfo("room_id", "eulerstream", True, error_fields=ROOM_ID_ERROR_FIELDS)
