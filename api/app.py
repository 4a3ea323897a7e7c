"""The aiohttp application: every client dialect's routes, wired to the signing queue.

Each route answers in its own client's dialect, errors included: EulerStream routes say
`{code, message}`, the others `{status: "error", error: {...}}`. Nothing a caller sends
can produce a 500 or an empty 200.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urlsplit

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from yarl import URL

from signer import SignError, SignResult
from workers import SignOutcome, SignQueue
from workers.logs import get_logger

from .access import Access, Accounting, admit, client_ip
from .admin import admin_routes
from .apikeys import key_prefix
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
    parse_api_key,
    parse_sign_body,
    signature_request,
)
from .ratelimit import rate_limits_body
from .usage import UsageRow

__all__ = ["ACCOUNTING", "QUEUE", "create_app", "unrouted_error_response"]

log = logging.getLogger(__name__)
requests_log = get_logger("api.requests")

QUEUE = web.AppKey("queue", SignQueue)
METRICS = web.AppKey("metrics", ApiMetrics)
ACCOUNTING = web.AppKey("accounting", Accounting)
VERSION = "0.1.0"
MAX_LOGGED_MESSAGE = 500
MAX_LOGGED_PATH = 200


@dataclass(slots=True)
class RequestTrace:
    """What one request went through, for its headers and its usage row."""

    # 128 random bits as hex, like uuid4().hex without building a UUID on every request.
    request_id: str = field(default_factory=lambda: os.urandom(16).hex())
    client_ip: str = ""
    access: Access = field(default_factory=Access)
    target: str = ""
    outcome: SignOutcome | None = None

    @property
    def worker_id(self) -> str | None:
        return self.outcome.worker_id if self.outcome is not None else None

    @property
    def queue_wait_ms(self) -> float | None:
        return self.outcome.queue_wait_ms if self.outcome is not None else None

    @property
    def profile(self) -> str | None:
        """The signing profile, when the request was signed."""
        result = self.outcome.result if self.outcome is not None else None
        return result.profile if isinstance(result, SignResult) else None


TRACE = web.RequestKey("trace", RequestTrace)

Dialect = Literal["eulerstream", "structured"]
# Each route's path and dialect, for answers given before routing (see api/server.py).
DIALECTS = web.AppKey("dialects", dict[str, Dialect])
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, X-Api-Key, Authorization, x-cookie-header",
    "Access-Control-Max-Age": "86400",
    # So browser clients can read them.
    "Access-Control-Expose-Headers": "X-Request-Id, Retry-After, RateLimit-Limit, "
    "RateLimit-Remaining, RateLimit-Reset, X-RateLimit-Reset",
}


def _error_response(error: ApiError, dialect: Dialect) -> web.Response:
    if dialect == "eulerstream":
        body = eulerstream_error_body(error)
    else:
        body = structured_error_body(error, datetime.now(UTC))
    response = web.json_response(body, status=error.status)
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    response.headers.update(error.headers)
    return response


def unrouted_error_response(
    app: web.Application, path: str | None, error: ApiError
) -> web.Response:
    """The answer to a request refused before routing (by the HTTP parser): in the dialect
    of the route `path` names, structured when it names none or could not be read."""
    response = _error_response(error, app[DIALECTS].get(path or "", "structured"))
    response.headers.update(_CORS_HEADERS)
    return response


def _route(name: str, dialect: Dialect, handler: Handler, *, metered: bool = False) -> Handler:
    """Wrap a handler with its dialect's errors, CORS and metrics; a metered route (one
    that signs) also checks the caller's key and rate limit and leaves a usage row."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        metrics = request.app[METRICS]
        accounting = request.app[ACCOUNTING]
        started = time.perf_counter()
        trace = RequestTrace(client_ip=client_ip(request, accounting.trust_forwarded_for))
        request[TRACE] = trace
        error: ApiError | None = None
        counting: asyncio.Task[None] | None = None
        raw_key: str | None = None
        metrics.in_flight.inc()
        try:
            if metered:
                raw_key = parse_api_key(request.query, request.headers)
                counting = await admit(
                    accounting, raw_key, trace.client_ip, trace.access, ahead=True
                )
            response = await handler(request)
        except ApiError as refused:
            error = refused
        except web.HTTPRequestEntityTooLarge:
            error = ApiError(
                413, "VALIDATION_ERROR", f"request body is over the {MAX_BODY_BYTES}-byte limit"
            )
        except Exception:  # a bug of ours: say so plainly and log it, never a bare 500
            log.exception("unhandled error on %s", name)
            error = ApiError(500, "INTERNAL_ERROR", "internal error; it has been logged")
        finally:
            metrics.in_flight.dec()
            if counting is not None:
                # Counted while it was signed: the count has the last word (a refusal
                # found there replaces the answer, as it would have stopped it before).
                try:
                    await asyncio.shield(counting)
                except ApiError as refused:
                    error = refused
        if error is not None:
            response = _error_response(error, dialect)
            if error.limit_label is not None:
                metrics.rate_limited.labels(error.limit_label).inc()
        else:
            response.headers.update(trace.access.headers)
        response.headers.update(_CORS_HEADERS)
        response.headers["X-Request-Id"] = trace.request_id
        elapsed = time.perf_counter() - started
        metrics.requests.labels(
            name, dialect, str(response.status), error.type if error else ""
        ).inc()
        metrics.duration.labels(name).observe(elapsed)
        if trace.outcome is not None:
            metrics.observe_outcome(trace.outcome)
        if metered and accounting.usage is not None:
            accounting.usage.add(_usage_row(name, dialect, trace, response.status, error, elapsed))
        _log_request(request, name, dialect, trace, response.status, error, elapsed, raw_key)
        return response

    return wrapped


def _log_request(
    request: web.Request,
    route: str,
    dialect: Dialect,
    trace: RequestTrace,
    status: int,
    error: ApiError | None,
    elapsed: float,
    raw_key: str | None,
) -> None:
    """The request's one log line. A key appears only as its prefix, and only when it is
    shaped like one of ours (a refused key's prefix included: it says whose it was)."""
    key = trace.access.key
    # /health's 503 reports a state (no worker yet), polled by `signer up` and probes
    # while workers warm: not a failure to warn about.
    failed = status >= 500 and route != "health"
    emit = requests_log.warning if failed else requests_log.info
    emit(
        "request",
        request_id=trace.request_id,
        method=request.method,
        route=route,
        dialect=dialect,
        path=request.path[:MAX_LOGGED_PATH],
        status=status,
        error_type=error.type if error is not None else None,
        latency_ms=round(elapsed * 1000, 3),
        queue_wait_ms=trace.queue_wait_ms,
        worker_id=trace.worker_id,
        profile=trace.profile,
        key_prefix=key.prefix if key is not None else key_prefix(raw_key) if raw_key else None,
        client_ip=trace.client_ip or None,
    )


def _usage_row(
    route: str,
    dialect: Dialect,
    trace: RequestTrace,
    status: int,
    error: ApiError | None,
    elapsed: float,
) -> UsageRow:
    key = trace.access.key
    return UsageRow(
        created_at=datetime.now(UTC),
        request_id=trace.request_id,
        route=route,
        dialect=dialect,
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
    )


def _target(url: str) -> str:
    """The signed URL's host and path: enough to tell rooms and endpoints apart, no query.
    Never raises: it runs on whatever the caller sent, before the core has judged it."""
    try:
        parts = urlsplit(url)
        target = f"{parts.hostname or ''}{parts.path}"
    except ValueError:  # e.g. `https://[www.tiktok.com]/`
        target = url.partition("?")[0]
    return target[:MAX_LOGGED_MESSAGE]


async def _signed(request: web.Request, parsed: ParsedSign) -> SignResult:
    trace = request[TRACE]
    trace.target = _target(parsed.request.url)
    outcome = await request.app[QUEUE].submit(parsed.request)
    trace.outcome = outcome
    if isinstance(outcome.result, SignError):
        raise api_error_from_sign_error(outcome.result)
    return outcome.result


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


async def rate_limits(request: web.Request) -> web.Response:
    """`GET /webcast/rate_limits`: the caller's windows, read without counting."""
    trace = request[TRACE]
    raw_key = parse_api_key(request.query, request.headers)
    await admit(request.app[ACCOUNTING], raw_key, trace.client_ip, trace.access, count=False)
    assert trace.access.decision is not None
    return web.json_response(rate_limits_body(trace.access.decision))


async def health(request: web.Request) -> web.Response:
    state = await request.app[METRICS].refresh_queue(request.app[QUEUE])
    redis_ok = state is not None
    workers, depth = (state.workers, state.ready) if state is not None else (0, 0)
    expected = state.expected if state is not None else 0
    database_ok = await request.app[ACCOUNTING].database_connected()
    # Signing goes on without Postgres (usage rows wait, cached keys still pass), so a
    # database outage shows here but does not make the service unhealthy.
    healthy = redis_ok and workers > 0 and request.app[QUEUE].listening
    # Fewer workers than their supervisors run (one died and is being restarted) is
    # "degraded" with a 200: this API still signs, so a load balancer must keep it.
    status = "unhealthy" if not healthy else "degraded" if workers < expected else "healthy"
    body = {
        "status": status,
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "signature_generator_ready": workers > 0,
        "database_connected": database_ok,
        "redis_connected": redis_ok,
        "workers": workers,
        "workers_expected": expected,
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


_UNROUTED = _route("unknown", "structured", not_found)
_REPEATED_SLASHES = re.compile(r"/{2,}")


@web.middleware
async def routing(request: web.Request, handler: Handler) -> web.StreamResponse:
    """What the route table cannot say: merged slashes, CORS preflight, 404 and 405.

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
        return await preflight(request)
    if request.match_info.http_exception is not None:
        return await _UNROUTED(request)
    return await handler(request)


def create_app(
    queue: SignQueue, accounting: Accounting | None = None, metrics: ApiMetrics | None = None
) -> web.Application:
    """The application, signing through `queue`; keys, limits and usage as `accounting`
    says (all off when None). The caller starts and closes what it passes in."""
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[routing])
    app[QUEUE] = queue
    app[METRICS] = metrics or ApiMetrics()
    app[ACCOUNTING] = accounting or Accounting()
    app[DIALECTS] = {}
    signing: list[tuple[str, str, str, Dialect, Handler]] = [
        ("GET", "/webcast/sign_url", "sign_url_v1", "eulerstream", sign_url_get),
        ("POST", "/webcast/sign_url", "sign_url_v2", "eulerstream", sign_url_post),
        ("POST", "/webcast/sign_url/", "sign_url_v2", "eulerstream", sign_url_post),
        ("POST", "/tiktok/sign_url", "sign_url_v2", "eulerstream", sign_url_post),
        ("POST", "/signature", "signature", "structured", signature),
        ("POST", "/api/signature", "api_signature", "structured", own_signature),
    ]
    others: list[tuple[str, str, str, Dialect, Handler]] = [
        ("GET", "/webcast/rate_limits", "rate_limits", "eulerstream", rate_limits),
        ("GET", "/health", "health", "structured", health),
        ("GET", "/metrics", "metrics", "structured", metrics_text),
        ("GET", "/openapi.json", "openapi", "structured", openapi_json),
        ("GET", "/docs", "docs", "structured", docs),
    ]
    for method, path, name, dialect, handler in signing:
        app.router.add_route(method, path, _route(name, dialect, handler, metered=True))
        app[DIALECTS][path] = dialect
    for method, path, name, dialect, handler in others:
        app.router.add_route(method, path, _route(name, dialect, handler))
        app[DIALECTS][path] = dialect
    # The admin handlers write their own bodies and headers. No catch-all route: `routing`
    # answers OPTIONS, unknown paths (404) and unserved methods (405 with `Allow`).
    app.add_routes(admin_routes(app[ACCOUNTING], app[ACCOUNTING].accounts, app[METRICS].registry))
    return app
