"""What every request needs, whatever its route (admin sub-app included), in one place.

Outermost first:

- `routing`: what the route table cannot say (merged slashes served in place, CORS
  preflight);
- `observe`: the request id, CORS headers, rate-limit headers, the request metrics, the
  usage row of a metered route and the request's one log line;
- `errors`: every failure answered in the route's dialect (never a bare 500), 404 and
  405 for what no route takes;
- `admission`: a metered (signing) route's API key read once, looked up and counted.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import cast
from urllib.parse import urlsplit

import structlog
from aiohttp import web
from structlog.typing import FilteringBoundLogger
from yarl import URL

from accounts.admission import admit
from accounts.apikeys import key_prefix
from accounts.errors import Refused
from accounts.usage import UsageRow

from .context import (
    ACCOUNTING,
    METRICS,
    ROUTES,
    SETTINGS,
    TRACE,
    UNKNOWN_ROUTE,
    Dialect,
    Handler,
    RequestTrace,
    RouteInfo,
    client_ip,
)
from .errors import (
    ApiError,
    api_error_from_refusal,
    eulerstream_error_body,
    structured_error_body,
)
from .jsontext import json_text
from .metrics import ApiMetrics
from .parsing import MAX_BODY_BYTES, parse_api_key
from .ratelimit_headers import rate_limit_headers

__all__ = [
    "CORS_HEADERS",
    "MIDDLEWARES",
    "error_response",
    "routing",
    "target_of",
]

log = logging.getLogger(__name__)
requests_log = cast(FilteringBoundLogger, structlog.get_logger("api.requests"))

MAX_LOGGED_MESSAGE = 500
MAX_LOGGED_PATH = 200
_REPEATED_SLASHES = re.compile(r"/{2,}")
# Admission's refusals: no key, a bad key, a limit, a premium route.
_REFUSED_STATUSES = frozenset({401, 402, 403, 429})

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, X-Api-Key, Authorization, x-cookie-header",
    "Access-Control-Max-Age": "86400",
    # So browser clients can read them.
    "Access-Control-Expose-Headers": "X-Request-Id, Retry-After, RateLimit-Limit, "
    "RateLimit-Remaining, RateLimit-Reset, X-RateLimit-Reset, X-Set-TT-Cookie, X-Room-Id, "
    "X-Connect-Strategy",
}


def error_response(
    error: ApiError, dialect: Dialect, fields: Mapping[str, object] | None = None
) -> web.Response:
    """`error` as an answer in `dialect`, with its `Retry-After` and own headers; `fields`
    are the route's own additions to an EulerStream body (`RouteInfo.error_fields`)."""
    if dialect == "eulerstream":
        body = {**(fields or {}), **eulerstream_error_body(error)}
    else:
        body = structured_error_body(error, datetime.now(UTC))
    response = web.json_response(body, status=error.status, dumps=json_text)
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    response.headers.update(error.headers)
    return response


@web.middleware
async def routing(request: web.Request, handler: Handler) -> web.StreamResponse:
    """What the route table cannot say: merged slashes and CORS preflight.

    TikTok-Live-Connector 2.x joins `SIGN_API_URL=http://host/` and `/tiktok/sign_url`
    into `//tiktok/sign_url`. A redirect would turn a client's POST into a GET (or lose
    its body), so the request is served in place on the merged path instead: aiohttp
    resolves the route again for the clone (its `_handle`, as `normalize_path_middleware`
    resolves a candidate path, but answering rather than redirecting).
    """
    path = request.rel_url.raw_path
    if "//" in path:
        merged = URL.build(
            path=_REPEATED_SLASHES.sub("/", path),
            query_string=request.rel_url.raw_query_string,
            encoded=True,
        )
        return await request.app._handle(request.clone(rel_url=merged))
    if request.method == "OPTIONS":
        return web.Response(status=204, headers=CORS_HEADERS)
    return await handler(request)


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Headers, metrics, usage row and log line of every answer (see the module docstring)."""
    app = request.app
    metrics = app[METRICS]
    started = time.perf_counter()
    route = app[ROUTES].get(request.match_info.handler, UNKNOWN_ROUTE)
    trace = RequestTrace(
        route=route, client_ip=client_ip(request, app[SETTINGS].trust_forwarded_for)
    )
    request[TRACE] = trace
    metrics.in_flight.inc()
    try:
        response = await handler(request)
    finally:
        metrics.in_flight.dec()
    error = trace.error
    if error is not None:
        if error.limit_label is not None:
            metrics.rate_limited.labels(error.limit_label).inc()
    elif trace.access.decision is not None:
        response.headers.update(rate_limit_headers(trace.access.decision))
    response.headers.update(CORS_HEADERS)
    response.headers["X-Request-Id"] = trace.request_id
    elapsed = time.perf_counter() - started
    status = response.status
    metrics.requests.labels(
        route.name, route.dialect, str(status), error.type if error else ""
    ).inc()
    metrics.duration.labels(route.name).observe(elapsed)
    if trace.outcome is not None:
        metrics.observe_outcome(trace.outcome)
    if route.connect:
        _count_connect(metrics, trace)
    usage = app[ACCOUNTING].usage
    if route.metered and usage is not None:
        usage.add(_usage_row(trace, status, elapsed, _cost(app, route)))
    _log_request(request, trace, status, elapsed)
    return response


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure as an answer in the route's dialect, noted on the request's trace."""
    trace = request[TRACE]
    try:
        if request.match_info.http_exception is not None:
            _unrouted(request)
        return await handler(request)
    except ApiError as refused:
        error = refused
    except Refused as refused:
        error = api_error_from_refusal(refused)
    except web.HTTPRequestEntityTooLarge:
        error = ApiError(
            413, "VALIDATION_ERROR", f"request body is over the {MAX_BODY_BYTES}-byte limit"
        )
    except Exception:  # a bug of ours: say so plainly and log it, never a bare 500
        log.exception("unhandled error on %s", trace.route.name)
        error = ApiError(500, "INTERNAL_ERROR", "internal error; it has been logged")
    trace.error = error
    return error_response(error, trace.route.dialect, trace.route.error_fields)


@web.middleware
async def admission(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A signing route's key looked up and its request counted before (or, for a caller
    far from its limits, while) it is signed."""
    trace = request[TRACE]
    if not trace.route.metered:
        return await handler(request)
    trace.raw_key = parse_api_key(request.query, request.headers)
    counting = await admit(
        request.app[ACCOUNTING],
        trace.raw_key,
        trace.client_ip,
        trace.access,
        ahead=True,
        cost=_cost(request.app, trace.route),
    )
    if counting is None:
        return await handler(request)
    try:
        return await handler(request)
    finally:
        # Counted while it was signed: the count has the last word (a refusal found there
        # replaces the answer, as it would have stopped it before).
        await asyncio.shield(counting)


MIDDLEWARES = (routing, observe, errors, admission)


def _cost(app: web.Application, route: RouteInfo) -> int:
    """Requests one call of `route` counts as: a connect's weight, else one."""
    return app[SETTINGS].connect_weight if route.connect else 1


def _unrouted(request: web.Request) -> None:
    """A request no route takes: 405 with `Allow` when the path exists, else 404."""
    unrouted = request.match_info.http_exception
    if isinstance(unrouted, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted({*unrouted.allowed_methods, "OPTIONS"}))
        error = ApiError(
            405,
            "VALIDATION_ERROR",
            f"{request.path} does not take {request.method}; it takes {allowed}",
        )
        error.headers["Allow"] = allowed
        raise error
    raise ApiError(404, "VALIDATION_ERROR", f"no route {request.method} {request.path}")


def _log_request(request: web.Request, trace: RequestTrace, status: int, elapsed: float) -> None:
    """The request's one log line. A key appears only as its prefix, and only when it is
    shaped like one of ours (a refused key's prefix included: it says whose it was)."""
    key = trace.access.key
    error = trace.error
    route = trace.route
    # /health's 503 reports a state (no worker yet), polled by `signer up` and probes
    # while workers warm: not a failure to warn about.
    failed = status >= 500 and route.name != "health"
    emit = requests_log.warning if failed else requests_log.info
    raw_key = trace.raw_key
    emit(
        "request",
        request_id=trace.request_id,
        method=request.method,
        route=route.name,
        dialect=route.dialect,
        path=request.path[:MAX_LOGGED_PATH],
        status=status,
        error_type=error.type if error is not None else None,
        latency_ms=round(elapsed * 1000, 3),
        queue_wait_ms=trace.queue_wait_ms,
        worker_id=trace.worker_id,
        profile=trace.profile,
        key_prefix=key.prefix if key is not None else key_prefix(raw_key) if raw_key else None,
        client_ip=trace.client_ip or None,
        **_connect_fields(trace),
    )


def _connect_fields(trace: RequestTrace) -> dict[str, object]:
    """A connect's own fields of the log line (never the caller's cookies)."""
    connect = trace.connect
    if connect is None:
        return {}
    return {
        "room_id": connect.room_id,
        "strategy": connect.strategy,
        "upstream_status": connect.upstream_status,
        "upstream_ms": round(connect.upstream_ms, 3) if connect.upstream_ms is not None else None,
    }


def _count_connect(metrics: ApiMetrics, trace: RequestTrace) -> None:
    """A connect's line in `signer_connects_total` (and TikTok's time, when it answered)."""
    connect = trace.connect
    if connect is not None:
        outcome = connect.outcome
    else:  # refused before the handler: by admission, or its input was unreadable
        refused = trace.error is not None and trace.error.status in _REFUSED_STATUSES
        outcome = "refused" if refused else "client_error"
    strategy = connect.strategy if connect is not None and connect.strategy else "none"
    metrics.connect.connects.labels(trace.route.name, strategy, outcome).inc()
    if connect is not None and connect.upstream_ms is not None:
        metrics.connect.upstream.labels(strategy).observe(connect.upstream_ms / 1000)


def _usage_row(trace: RequestTrace, status: int, elapsed: float, cost: int) -> UsageRow:
    key = trace.access.key
    error = trace.error
    connect = trace.connect
    return UsageRow(
        created_at=datetime.now(UTC),
        request_id=trace.request_id,
        route=trace.route.name,
        dialect=trace.route.dialect,
        target=trace.target,
        success=status == 200,
        status_code=status,
        response_time_ms=elapsed * 1000,
        user_id=key.user_id if key is not None else None,
        api_key_id=key.key_id if key is not None else None,
        key_prefix=key.prefix if key is not None else None,
        client_ip=trace.client_ip or None,
        error_type=error.type if error is not None else None,
        error_message=error.message[:MAX_LOGGED_MESSAGE] if error is not None else None,
        queue_wait_ms=trace.queue_wait_ms,
        worker_id=trace.worker_id,
        profile=trace.profile,
        room_id=connect.room_id if connect is not None else None,
        strategy=connect.strategy if connect is not None else None,
        upstream_status=connect.upstream_status if connect is not None else None,
        upstream_ms=connect.upstream_ms if connect is not None else None,
        cost=cost,
    )


def target_of(url: str) -> str:
    """The signed URL's host and path: enough to tell rooms and endpoints apart, no query.
    Never raises: it runs on whatever the caller sent, before the core has judged it."""
    try:
        parts = urlsplit(url)
        target = f"{parts.hostname or ''}{parts.path}"
    except ValueError:  # e.g. `https://[www.tiktok.com]/`
        target = url.partition("?")[0]
    return target[:MAX_LOGGED_MESSAGE]
