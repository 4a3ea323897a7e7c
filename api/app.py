"""The aiohttp application: every client dialect's routes, wired to the signing queue.

Each route answers in its own client's dialect, errors included: EulerStream routes say
`{code, message}`, the others `{status: "error", error: {...}}`. Nothing a caller sends
can produce a 500 or an empty 200.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Literal

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from signer import SignError, SignResult
from workers import SignQueue

from .dialects import (
    eulerstream_v1_response,
    eulerstream_v2_response,
    own_response,
    signature_response,
)
from .errors import (
    ApiError,
    api_error_from_sign_error,
    eulerstream_error_body,
    structured_error_body,
)
from .metrics import ApiMetrics
from .openapi import docs_html, openapi_document
from .parsing import (
    MAX_BODY_BYTES,
    ParsedSign,
    eulerstream_v1_request,
    eulerstream_v2_request,
    own_request,
    parse_sign_body,
    signature_request,
)

__all__ = ["QUEUE", "create_app"]

log = logging.getLogger(__name__)

QUEUE = web.AppKey("queue", SignQueue)
METRICS = web.AppKey("metrics", ApiMetrics)
VERSION = "0.1.0"

Dialect = Literal["eulerstream", "structured"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, X-Api-Key, Authorization, x-cookie-header",
    "Access-Control-Max-Age": "86400",
}


def _error_response(error: ApiError, dialect: Dialect) -> web.Response:
    if dialect == "eulerstream":
        body = eulerstream_error_body(error)
    else:
        body = structured_error_body(error, datetime.now(UTC))
    response = web.json_response(body, status=error.status)
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _route(name: str, dialect: Dialect, handler: Handler) -> Handler:
    """Wrap a handler with its dialect's errors, CORS and metrics."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        metrics = request.app[METRICS]
        started = time.perf_counter()
        error_type = ""
        metrics.in_flight.inc()
        try:
            response = await handler(request)
        except ApiError as error:
            error_type = error.type
            response = _error_response(error, dialect)
        except web.HTTPRequestEntityTooLarge:
            error_type = "VALIDATION_ERROR"
            too_large = ApiError(
                413, "VALIDATION_ERROR", f"request body is over the {MAX_BODY_BYTES}-byte limit"
            )
            response = _error_response(too_large, dialect)
        except Exception:  # a bug of ours: say so plainly and log it, never a bare 500
            log.exception("unhandled error on %s", name)
            error_type = "INTERNAL_ERROR"
            internal = ApiError(500, "INTERNAL_ERROR", "internal error; it has been logged")
            response = _error_response(internal, dialect)
        finally:
            metrics.in_flight.dec()
        response.headers.update(_CORS_HEADERS)
        metrics.requests.labels(name, dialect, str(response.status), error_type).inc()
        metrics.duration.labels(name).observe(time.perf_counter() - started)
        return response

    return wrapped


async def _signed(request: web.Request, parsed: ParsedSign) -> SignResult:
    try:
        return await request.app[QUEUE].sign(parsed.request)
    except SignError as error:
        raise api_error_from_sign_error(error) from None


async def _body(request: web.Request) -> bytes:
    return await request.read()


async def sign_url_get(request: web.Request) -> web.Response:
    parsed = eulerstream_v1_request(request.query, request.headers)
    return web.json_response(eulerstream_v1_response(await _signed(request, parsed)))


async def sign_url_post(request: web.Request) -> web.Response:
    fields = parse_sign_body(request.headers.get("Content-Type", ""), await _body(request))
    parsed = eulerstream_v2_request(fields, request.query, request.headers)
    return web.json_response(eulerstream_v2_response(await _signed(request, parsed)))


async def signature(request: web.Request) -> web.Response:
    raw = await _body(request)
    parsed = signature_request(
        request.headers.get("Content-Type", ""), raw, request.query, request.headers
    )
    return web.json_response(signature_response(await _signed(request, parsed)))


async def own_signature(request: web.Request) -> web.Response:
    started = time.perf_counter()
    fields = parse_sign_body(request.headers.get("Content-Type", ""), await _body(request))
    parsed = own_request(fields, request.query, request.headers)
    result = await _signed(request, parsed)
    elapsed_ms = (time.perf_counter() - started) * 1000
    return web.json_response(own_response(result, elapsed_ms))


async def health(request: web.Request) -> web.Response:
    queue = request.app[QUEUE]
    metrics = request.app[METRICS]
    try:
        workers = await queue.workers_alive()
        depth = await queue.depth()
        redis_ok = True
    except Exception:
        workers, depth, redis_ok = 0, 0, False
    metrics.workers.set(workers)
    metrics.queue_depth.set(depth)
    healthy = redis_ok and workers > 0
    body = {
        "status": "healthy" if healthy else "unhealthy",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "signature_generator_ready": workers > 0,
        "database_connected": False,  # Postgres arrives with accounts and usage
        "redis_connected": redis_ok,
        "workers": workers,
        "queue_depth": depth,
    }
    return web.json_response(body, status=200 if healthy else 503)


async def metrics_text(request: web.Request) -> web.Response:
    registry = request.app[METRICS].registry
    return web.Response(
        body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(VERSION))


async def docs(request: web.Request) -> web.Response:
    return web.Response(text=docs_html("/openapi.json"), content_type="text/html")


async def preflight(request: web.Request) -> web.Response:
    return web.Response(status=204, headers=_CORS_HEADERS)


async def not_found(request: web.Request) -> web.Response:
    raise ApiError(404, "VALIDATION_ERROR", f"no route {request.method} {request.path}")


def create_app(queue: SignQueue) -> web.Application:
    """The application, signing through `queue` (started and closed by the caller)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[QUEUE] = queue
    app[METRICS] = ApiMetrics()
    routes = [
        ("GET", "/webcast/sign_url", "sign_url_v1", "eulerstream", sign_url_get),
        ("POST", "/webcast/sign_url", "sign_url_v2", "eulerstream", sign_url_post),
        ("POST", "/webcast/sign_url/", "sign_url_v2", "eulerstream", sign_url_post),
        ("POST", "/tiktok/sign_url", "sign_url_v2", "eulerstream", sign_url_post),
        ("POST", "/signature", "signature", "structured", signature),
        ("POST", "/api/signature", "api_signature", "structured", own_signature),
        ("GET", "/health", "health", "structured", health),
        ("GET", "/metrics", "metrics", "structured", metrics_text),
        ("GET", "/openapi.json", "openapi", "structured", openapi_json),
        ("GET", "/docs", "docs", "structured", docs),
    ]
    for method, path, name, dialect, handler in routes:
        app.router.add_route(method, path, _route(name, dialect, handler))  # type: ignore[arg-type]
    app.router.add_route("OPTIONS", "/{tail:.*}", preflight)
    app.router.add_route("*", "/{tail:.*}", _route("unknown", "structured", not_found))
    return app
