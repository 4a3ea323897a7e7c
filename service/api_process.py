"""Running the API process: `signer api`, and the guards on its connections.

The guards live here, with the process that serves through them, rather than in `api/`:
they are about sockets and file descriptors, not about any route, and they log through
the redaction that `service.logs` sets up.

aiohttp's server at its defaults trusts every client: it keeps a connection open for as
long as the client dribbles its request head (no deadline for the head, an hour's idle
timeout), accepts connections until the process runs out of file descriptors (and asyncio
then logs every failed `accept()`), refuses request lines over 8,190 bytes, shorter than
the URLs we sign, with a plain-text 400, and logs every malformed request as a traceback
quoting its raw bytes, API key included. `GuardedHandler` is aiohttp's `RequestHandler`
with those four things changed:

- a deadline for the complete request head (`SIGNER_API_HEAD_TIMEOUT`, from the
  connection's start or from a later request's first byte), then a 408 and close; idle
  keep-alive connections close after `SIGNER_API_KEEPALIVE_TIMEOUT`;
- at most `SIGNER_API_MAX_CONNECTIONS` open connections (never more than the file
  descriptors allow, with room kept for Redis, Postgres and logs): one more gets a 503 and
  is closed at once, so the listening socket keeps working for the next;
- parser limits that fit `SIGNER_MAX_URL_LENGTH`, and an over-limit or malformed request
  answered in JSON, in the dialect of the route its path names: 414 for the request line,
  431 for a header, 400 for anything else;
- one log line for a malformed request, naming what was wrong, never its bytes.
"""

from __future__ import annotations

import asyncio
import errno
import json
import re
import resource
import signal
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from accounts.runtime import AccountingRuntime
from api.app import AppServices, AppSettings, create_app, unrouted_error_response
from api.connect import queue_signer
from api.errors import ApiError, structured_error_body
from api.metrics import ApiMetrics
from console.app import console_app, mount_console
from tiktok import TikTokClient
from tiktok.hosts import WEBCAST_ORIGIN
from workers import SignQueue

from .api_settings import ApiSettings
from .environment import Environment
from .logs import configure_logging, get_logger, redact_secrets

__all__ = [
    "ApiSettings",
    "GuardedHandler",
    "ParserLimits",
    "app_settings_of",
    "connection_cap",
    "serve",
]

log = get_logger("service.api_process")
connections_log = get_logger("api.connections")

# A URL sent in a query parameter is percent-encoded: at worst three bytes for each of
# its own. The room covers the method, path, version and the other parameters (apiKey...).
URL_ENCODING_GROWTH = 3
REQUEST_LINE_ROOM = 2048
# A header may carry a URL too (a Referer, the cookies of `x-cookie-header`).
HEADER_ROOM = 1024
# File descriptors kept for what is not a client connection: Redis and Postgres pools,
# the log, the listening sockets, Python's own; a tenth of the limit, at least 64.
RESERVED_FDS_FLOOR = 64
RESERVED_FDS_SHARE = 10
# The first bytes of a request head, kept to read its path should the parser refuse it.
SNIFFED_HEAD_BYTES = 256
_PATH = re.compile(rb"[A-Za-z]{1,16} (/[^ ?#\r\n]*)")
REFUSED_RETRY_AFTER = 1
# Seconds between two log lines saying the connection cap is refusing connections.
CAP_LOG_INTERVAL = 1.0


@dataclass(frozen=True, slots=True)
class ParserLimits:
    """aiohttp's parser limits for URLs up to `max_url_length` bytes."""

    max_url_length: int

    @property
    def line(self) -> int:
        """Longest request line: a GET carrying the longest URL, percent-encoded."""
        return URL_ENCODING_GROWTH * self.max_url_length + REQUEST_LINE_ROOM

    @property
    def field(self) -> int:
        """Longest header (name and value)."""
        return self.max_url_length + HEADER_ROOM


def connection_cap(setting: int, descriptor_limit: int | None = None) -> int:
    """The connections one process may hold: `setting`, at most the soft file-descriptor
    limit less what is reserved for everything else (see `RESERVED_FDS_*`)."""
    if descriptor_limit is None:
        descriptor_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if descriptor_limit == resource.RLIM_INFINITY:
        return setting
    reserved = max(RESERVED_FDS_FLOOR, descriptor_limit // RESERVED_FDS_SHARE)
    return max(1, min(setting, descriptor_limit - reserved))


def _raw_answer(status: int, reason: str, error: ApiError) -> bytes:
    """A whole HTTP response in the structured dialect, for a connection that has no
    request (yet) to answer through aiohttp."""
    body = json.dumps(structured_error_body(error, datetime.now(UTC))).encode()
    retry = f"Retry-After: {error.retry_after}\r\n" if error.retry_after is not None else ""
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n{retry}Connection: close\r\n\r\n"
    )
    return head.encode() + body


class ConnectionGuard:
    """What every connection of one server shares: its settings and the open count."""

    def __init__(
        self, app: web.Application, cap: int, head_timeout: float, limits: ParserLimits
    ) -> None:
        self.app = app
        self.cap = cap
        self.head_timeout = head_timeout
        self.limits = limits
        self.open = 0
        self.refused = 0
        self._refused_logged = 0
        self._last_cap_log = -CAP_LOG_INTERVAL
        self.full_answer = _raw_answer(
            503,
            "Service Unavailable",
            ApiError(
                503,
                "SERVICE_UNAVAILABLE",
                "too many open connections to this API process; retry shortly",
                retry_after=REFUSED_RETRY_AFTER,
            ),
        )
        self.timeout_answer = _raw_answer(
            408,
            "Request Timeout",
            ApiError(
                408,
                "VALIDATION_ERROR",
                f"no complete request head within {head_timeout:g} s; connection closed",
            ),
        )

    def note_refusal(self, now: float) -> None:
        """Count a connection refused at the cap; say so at most once a second."""
        self.refused += 1
        if now - self._last_cap_log >= CAP_LOG_INTERVAL:
            connections_log.warning(
                "connection cap reached: refusing connections",
                cap=self.cap,
                refused=self.refused - self._refused_logged,
            )
            self._last_cap_log, self._refused_logged = now, self.refused

    def parser_error(self, exc: HttpProcessingError) -> ApiError:
        """The answer to a request aiohttp's parser refused, without the request's bytes."""
        if isinstance(exc, LineTooLong) and exc.args[1] == self.limits.line:
            return ApiError(
                414,
                "VALIDATION_ERROR",
                f"request line is over {self.limits.line} bytes (URLs up to "
                f"{self.limits.max_url_length} bytes are accepted; longer ones by POST)",
            )
        if isinstance(exc, LineTooLong) or "Too many headers" in exc.message:
            return ApiError(
                431, "VALIDATION_ERROR", f"a request header is over {self.limits.field} bytes"
            )
        return ApiError(400, "VALIDATION_ERROR", f"malformed HTTP request: {_reason(exc)}")


def _reason(exc: HttpProcessingError) -> str:
    """What the parser said was wrong, without the bytes it quotes after it."""
    said = re.split(r"\n\s*\n|\bb'|\bb\"|bytearray\(", exc.message or "", maxsplit=1)[0]
    said = " ".join(said.split()).rstrip(":") or type(exc).__name__
    return redact_secrets(said)[:160]


class GuardedHandler(RequestHandler):
    """aiohttp's connection handler with a head deadline, a connection cap, and JSON
    answers and one-line logs for malformed requests (see the module docstring)."""

    __slots__ = ("_awaiting_head", "_counted", "_guard", "_head_deadline", "_head_start")

    def __init__(self, manager: web.Server, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._counted = False
        # True from the connection's start and after each answer, until a head is parsed.
        self._awaiting_head = True
        self._head_deadline: asyncio.TimerHandle | None = None
        self._head_start = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        guard = self._guard
        if guard.open >= guard.cap:
            # Closed before aiohttp sees it: no task, no timers, the descriptor freed now.
            guard.note_refusal(self._loop.time())
            # A stream transport (uvloop's is not an `asyncio.Transport` subclass).
            stream = cast(asyncio.Transport, transport)
            stream.write(guard.full_answer)
            stream.close()
            return
        guard.open += 1
        self._counted = True
        super().connection_made(transport)
        # A connection that never sends a byte gets the head deadline too.
        self._arm_head_deadline()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._counted:
            self._guard.open -= 1
            self._counted = False
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._counted:
            return
        if self._awaiting_head and data:
            if len(self._head_start) < SNIFFED_HEAD_BYTES:
                self._head_start += data[: SNIFFED_HEAD_BYTES - len(self._head_start)]
            self._arm_head_deadline()
        parsed_before = self._request_count
        super().data_received(data)
        if self._request_count != parsed_before:  # a whole head arrived (or a bad one)
            self._awaiting_head = False
            self._disarm_head_deadline()

    async def finish_response(
        self, request: BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        answered = await super().finish_response(request, resp, start_time)
        if not self._messages:
            # The next byte starts a new head; until then the keep-alive timeout applies.
            self._awaiting_head = True
            self._head_start = b""
        return answered

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        error = self._guard.parser_error(exc)
        path = _sniffed_path(self._head_start)
        # One line, without the bytes aiohttp would have quoted; non-HTTP traffic on the
        # port (a bad method in the first request) is noise at info level, so debug.
        emit = connections_log.debug if isinstance(exc, BadHttpMethod) else connections_log.info
        emit(
            "malformed request",
            status=error.status,
            reason=_reason(exc),
            path=path,
            client_ip=request.remote,
        )
        if request.writer.output_size > 0:
            raise ConnectionError("an answer was already started; the connection is closed")
        response = unrouted_error_response(self._guard.app, path, error)
        response.force_close()
        return response

    def _arm_head_deadline(self) -> None:
        if self._head_deadline is None:
            self._head_deadline = self._loop.call_later(
                self._guard.head_timeout, self._head_expired
            )

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_expired(self) -> None:
        self._head_deadline = None
        if self.transport is None or not self._awaiting_head:
            return
        connections_log.debug("request head timed out", timeout=self._guard.head_timeout)
        self.transport.write(self._guard.timeout_answer)
        self.force_close()


def _sniffed_path(head: bytes) -> str | None:
    found = _PATH.match(head)
    return found[1].decode("latin-1") if found else None


class GuardedServer(web.Server):
    """aiohttp's `Server` making `GuardedHandler`s."""

    def __init__(self, made: web.Server, guard: ConnectionGuard) -> None:
        super().__init__(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=made._loop,
            **made._kwargs,
        )
        self.guard = guard

    def __call__(self) -> RequestHandler:
        return GuardedHandler(self, self.guard, loop=self._loop, **self._kwargs)


class GuardedRunner(web.AppRunner):
    """`AppRunner` serving through a `GuardedServer`."""

    def __init__(self, app: web.Application, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._guard = guard

    async def _make_server(self) -> web.Server:
        return GuardedServer(await super()._make_server(), self._guard)


def app_settings_of(env: Environment) -> AppSettings:
    """The application's settings, from the environment's settings classes."""
    webcast_url = env.tiktok.tiktok_webcast_url
    return AppSettings(
        accounts=env.accounts,
        trust_forwarded_for=env.api.trust_forwarded_for,
        webcast_url=None if webcast_url == WEBCAST_ORIGIN else webcast_url,
        connect_weight=env.limits.connect_weight,
    )


async def serve(env: Environment, ready: asyncio.Event | None = None) -> int:
    """Serve until SIGTERM or SIGINT, then finish the requests in hand and stop.

    A port already in use is one line on stderr and exit status 1; the exit status is
    returned."""
    configure_logging(env.log)
    settings = env.api
    queue = SignQueue(env.queue)
    await queue.start()
    metrics = ApiMetrics()
    accounting = AccountingRuntime(env.database, env.accounts, env.limits, env.usage)
    tiktok = TikTokClient(
        env.tiktok,
        sign=queue_signer(queue),
        redis_client=queue.redis,
        key_prefix=f"{env.queue.prefix}:tiktok:",
    )
    await tiktok.start()
    services = AppServices(
        queue=queue,
        accounting=await accounting.start(queue.redis, env.queue.prefix, metrics.registry),
        metrics=metrics,
        tiktok=tiktok,
    )
    app_settings = app_settings_of(env)
    app = create_app(app_settings, services)
    secret = env.accounts.key_secret.get_secret_value()
    console = console_app(
        env.console,
        env.mail,
        queue.redis,
        prefix=env.queue.prefix,
        key_secret=secret,
        listen=(settings.host, settings.port),
    )
    mount_console(app, *console)
    limits = ParserLimits(env.signer.max_url_length)
    guard = ConnectionGuard(
        app, connection_cap(settings.max_connections), settings.head_timeout, limits
    )
    runner = GuardedRunner(
        app,
        guard,
        handle_signals=False,
        access_log=None,
        keepalive_timeout=settings.keepalive_timeout,
        max_line_size=limits.line,
        max_field_size=limits.field,
    )
    started = False
    try:
        await runner.setup()
        site = web.TCPSite(runner, settings.host, settings.port)
        try:
            await site.start()
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            print(
                f"signer api: port {settings.port} on {settings.host} is in use; choose "
                "another with --port (or SIGNER_API_PORT)",
                file=sys.stderr,
                flush=True,
            )
            return 1  # after the clean-up below (no SystemExit inside the event loop)
        started = True
        for address in runner.addresses:
            print(f"signer api listening on http://{address[0]}:{address[1]}/", flush=True)
        log.info(
            "api started",
            addresses=[f"{a[0]}:{a[1]}" for a in runner.addresses],
            max_connections=guard.cap,
            head_timeout=settings.head_timeout,
            keepalive_timeout=settings.keepalive_timeout,
            max_request_line=limits.line,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        if started:
            log.info("api stopping")
        # The runner's shutdown waits for in-flight requests (up to its timeout), then
        # the app's clean-up context stops what it started.
        await runner.cleanup()
        await tiktok.close()
        await accounting.close()
        await queue.close()
    return 0
