"""`/admin/...`: users, API keys and usage over HTTP, behind `SIGNER_ADMIN_TOKEN`.

Every route wants the token as `Authorization: Bearer <token>` or `X-Admin-Token`
(401 without it or with another; 403 on every route while no token is configured).
Failed authentications are counted per client address in Redis: past
`SIGNER_ADMIN_AUTH_FAILURES_PER_MINUTE` the address gets 429 with `Retry-After` on every
admin route, the right token included, until the UTC minute ends, so a token cannot be
guessed online; each failure is counted in `signer_api_admin_auth_failures_total` and
logged (one line a second at most, the rest summed into the next).
Bodies are JSON; errors take the structured shape `{status: "error", error: {...}}`:
400 bad input, 404 unknown user or key, 409 duplicate user, 503 database unreachable.

    POST   /admin/users          {"email", "tier"?}         -> 201 the user
    GET    /admin/users                                     -> every user
    PATCH  /admin/users/{email}  {"tier"}                   -> the user
    POST   /admin/keys           {"user", "name"?, "per_minute"?, "per_day"?}
                                                            -> 201 the key, shown once
    GET    /admin/keys[?user=]                              -> keys, never their hashes
    DELETE /admin/keys/{prefix}                             -> revoked
    GET    /admin/usage[?user=&days=]                       -> per UTC day
"""

from __future__ import annotations

import hmac
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager

import asyncpg
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from accounts import users as accounts
from accounts.admission import Accounting
from accounts.apikeys import SHOWN_ONCE, prefix_named_by
from accounts.ratelimit import Caller, RateDecision, RateLimiter, ip_identity
from accounts.settings import AccountSettings

from .context import ACCOUNTING, TRACE, Handler, RouteInfo
from .errors import ApiError, ErrorType, rate_limit_error
from .jsontext import json_text
from .parsing import parse_json

__all__ = ["admin_app"]

log = logging.getLogger(__name__)

# Seconds to wait for a free connection before answering 503.
ACQUIRE_TIMEOUT = 5.0
DEFAULT_REPORT_DAYS = 7
FAILURE_LOG_INTERVAL = 1.0  # seconds between log lines about failed authentications
MAX_LOGGED_PATH = 200

Route = Callable[[web.Request, asyncpg.Pool], Awaitable[web.Response]]

_STATUS: dict[type[accounts.AccountError], int] = {
    accounts.InvalidInput: 400,
    accounts.UnknownUser: 404,
    accounts.UnknownKey: 404,
    accounts.DuplicateUser: 409,
    accounts.SchemaNotReady: 503,
}


def _error(status: int, type_: ErrorType, message: str) -> ApiError:
    # 404 and 409 go out as VALIDATION_ERROR, as the app's own 404 does: the caller named
    # something that is not there, or already is.
    error = ApiError(status, type_, message)
    if status == 401:
        error.headers["WWW-Authenticate"] = 'Bearer realm="signer admin"'
    return error


def _ok(data: object, status: int = 200) -> web.Response:
    return web.json_response({"status": "success", "data": data}, status=status, dumps=json_text)


def _presented_token(headers: Mapping[str, str]) -> str | None:
    given = headers.get("X-Admin-Token")
    if given:
        return given.strip()
    scheme, _, credentials = headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _right_token(expected: str, given: str) -> bool:
    # Bytes, since compare_digest refuses non-ASCII str; aiohttp keeps undecodable header
    # bytes as surrogates, which only surrogateescape turns back into bytes.
    return hmac.compare_digest(_bytes(given), _bytes(expected))


class _FailureLog:
    """A warning per failed authentication, at most one per `FAILURE_LOG_INTERVAL`: the
    others are summed into the next line, so a flood of guesses cannot flood the log."""

    def __init__(self) -> None:
        self._last = -math.inf
        self._unlogged = 0

    def failed(self, request: web.Request, ip: str, reason: str) -> None:
        now = time.monotonic()
        if now - self._last < FAILURE_LOG_INTERVAL:
            self._unlogged += 1
            return
        more = f" (and {self._unlogged} more since the last line)" if self._unlogged else ""
        log.warning(
            "admin authentication failed: %s, from %s on %s %s%s",
            reason,
            ip or "an unknown address",
            request.method,
            request.path[:MAX_LOGGED_PATH],
            more,
        )
        self._last = now
        self._unlogged = 0


class _Guard:
    """Who may use the admin routes: the right token, from an address not blocked for
    too many wrong ones (see the module docstring)."""

    def __init__(self, settings: AccountSettings, registry: CollectorRegistry | None) -> None:
        self._token = settings.admin_token.get_secret_value()
        self._per_minute = settings.admin_auth_failures_per_minute
        self._log = _FailureLog()
        self.failures = Counter(
            "signer_api_admin_auth_failures",
            "Admin requests refused for their token: 401 (missing or wrong) or 429 (from an "
            "address past its budget of failures, the right token included).",
            ["status"],
            registry=registry,
        )

    async def check(self, request: web.Request) -> None:
        """Raises the answer for a request that may not go on."""
        if not self._token:
            raise _error(
                403,
                "AUTHENTICATION_ERROR",
                "admin routes are disabled: set SIGNER_ADMIN_TOKEN to enable them",
            )
        ip = request[TRACE].client_ip
        limiter = request.config_dict[ACCOUNTING].limiter
        caller = Caller("admin_auth", ip_identity(ip), per_minute=self._per_minute)
        given = _presented_token(request.headers)
        if given is not None and _right_token(self._token, given):
            # Read, not counted: the right token costs nothing, but is refused while the
            # address is blocked (it may be the guess that just came true).
            decision = await self._ask(limiter, caller, count=False)
            if decision is None or decision.allowed:
                return
            self._log.failed(request, ip, "right token from a blocked address")
            raise self._blocked(decision)
        # Counted whatever the answer: a refused count counts nothing and says "blocked".
        decision = await self._ask(limiter, caller, count=True)
        reason = "no token" if given is None else "wrong token"
        self._log.failed(request, ip, reason)
        if decision is not None and not decision.allowed:
            raise self._blocked(decision)
        self.failures.labels("401").inc()
        if given is None:
            raise _error(
                401,
                "AUTHENTICATION_ERROR",
                "admin token required (Authorization: Bearer <token> or X-Admin-Token)",
            )
        raise _error(401, "AUTHENTICATION_ERROR", "invalid admin token")

    async def _ask(
        self, limiter: RateLimiter | None, caller: Caller, *, count: bool
    ) -> RateDecision | None:
        """The caller's failures budget; None when it cannot be asked (no Redis here, or
        Redis away: the token alone decides then, as it did before there was a budget)."""
        if limiter is None:
            return None
        try:
            return await (limiter.hit(caller) if count else limiter.peek(caller))
        except Exception as error:
            log.warning("admin authentication failures cannot be counted: %r", error)
            return None

    def _blocked(self, decision: RateDecision) -> ApiError:
        self.failures.labels("429").inc()
        return rate_limit_error(decision)


@asynccontextmanager
async def _connection(pool: asyncpg.Pool) -> AsyncIterator[accounts.Connection]:
    async with pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
        yield conn


async def _json_object(request: web.Request, allowed: set[str]) -> dict[str, object]:
    raw = await request.read()
    try:
        body = parse_json(raw) if raw.strip() else {}
    except (UnicodeDecodeError, ValueError):  # ValueError: JsonRefused, deep or giant too
        raise accounts.InvalidInput("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise accounts.InvalidInput("the body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise accounts.InvalidInput(f"unknown field {unknown[0]!r}; expected {sorted(allowed)}")
    return body


def _string(body: Mapping[str, object], name: str, default: str | None = None) -> str:
    value = body.get(name, default)
    if value is None:
        raise accounts.InvalidInput(f"field {name!r} is required")
    if not isinstance(value, str):
        raise accounts.InvalidInput(f"field {name!r} must be a string")
    return value


def _limit(body: Mapping[str, object], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    # bool is an int to Python, but `true` as a limit is a caller's mistake.
    if isinstance(value, bool) or not isinstance(value, int):
        raise accounts.InvalidInput(f"field {name!r} must be a whole number or null")
    return value


def _days(query: Mapping[str, str]) -> int:
    text = query.get("days", str(DEFAULT_REPORT_DAYS))
    try:
        return int(text)
    except ValueError:
        raise accounts.InvalidInput(f"days must be a whole number, not {text!r}") from None


def _forget(request: web.Request) -> None:
    keystore = request.config_dict[ACCOUNTING].keystore
    if keystore is not None:
        keystore.forget()


async def _answer(request: web.Request, route: Route) -> web.Response:
    """What `route` answers, with every failure raised as a structured error."""
    accounting: Accounting = request.config_dict[ACCOUNTING]
    pool = accounting.database
    if pool is None:
        raise _error(503, "SERVICE_UNAVAILABLE", "admin needs the accounts database (DATABASE_URL)")
    try:
        return await route(request, pool)
    except accounts.AccountError as error:
        status = _STATUS.get(type(error), 400)
        kind: ErrorType = "SERVICE_UNAVAILABLE" if status == 503 else "VALIDATION_ERROR"
        raise _error(status, kind, str(error)) from None
    except web.HTTPRequestEntityTooLarge:
        raise _error(413, "VALIDATION_ERROR", "the body is too large") from None
    except asyncpg.DataError as error:  # a value Postgres cannot hold (a NUL, say): ours to check
        log.warning(
            "admin %s %s: value refused by Postgres %r", request.method, request.path, error
        )
        raise _error(400, "VALIDATION_ERROR", "a value in the request cannot be stored") from None
    except asyncpg.UndefinedTableError:
        raise _error(
            503, "SERVICE_UNAVAILABLE", "the accounts schema is missing: run `signer migrate`"
        ) from None
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        log.warning("admin %s %s: database error %r", request.method, request.path, error)
        raise _error(503, "SERVICE_UNAVAILABLE", "the accounts database is unreachable") from None


def admin_app(
    settings: AccountSettings, registry: CollectorRegistry | None = None
) -> tuple[web.Application, dict[Handler, RouteInfo]]:
    """The admin sub-app, to mount at `/admin/` under the API (whose middlewares give it
    the request id, CORS, metrics, the log line and its error answers), and its routes'
    names. Its own middleware checks the token; its metrics go to `registry`."""
    guard = _Guard(settings, registry)

    @web.middleware
    async def token(request: web.Request, handler: Handler) -> web.StreamResponse:
        # Keys and account data must not linger in a proxy's or browser's cache.
        try:
            await guard.check(request)
            response = await handler(request)
        except ApiError as error:
            error.headers["Cache-Control"] = "no-store"
            raise
        response.headers["Cache-Control"] = "no-store"
        return response

    def guarded(route: Route) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            return await _answer(request, route)

        return handler

    async def create_user(request: web.Request, pool: asyncpg.Pool) -> web.Response:
        body = await _json_object(request, {"email", "tier"})
        async with _connection(pool) as conn:
            user = await accounts.create_user(
                conn, _string(body, "email"), _string(body, "tier", "free")
            )
        return _ok(user.to_json(), 201)

    async def list_users(request: web.Request, pool: asyncpg.Pool) -> web.Response:
        async with _connection(pool) as conn:
            users = await accounts.list_users(conn)
        return _ok([user.to_json() for user in users])

    async def set_tier(request: web.Request, pool: asyncpg.Pool) -> web.Response:
        body = await _json_object(request, {"tier"})
        async with _connection(pool) as conn:
            user = await accounts.set_tier(conn, request.match_info["email"], _string(body, "tier"))
        _forget(request)  # cached keys carry the old tier
        return _ok(user.to_json())

    async def create_key(request: web.Request, pool: asyncpg.Pool) -> web.Response:
        body = await _json_object(request, {"user", "name", "per_minute", "per_day"})
        async with _connection(pool) as conn:
            info, key = await accounts.create_key(
                conn,
                _string(body, "user"),
                _string(body, "name", ""),
                _limit(body, "per_minute"),
                _limit(body, "per_day"),
                key_secret=settings.key_secret.get_secret_value(),
            )
        return _ok({"key": key, "notice": SHOWN_ONCE, "record": info.to_json()}, 201)

    async def list_keys(request: web.Request, pool: asyncpg.Pool) -> web.Response:
        async with _connection(pool) as conn:
            keys = await accounts.list_keys(conn, request.query.get("user"))
        return _ok([key.to_json() for key in keys])

    async def revoke_key(request: web.Request, pool: asyncpg.Pool) -> web.Response:
        # A whole key is accepted too; only its prefix is ever echoed.
        prefix = prefix_named_by(request.match_info["prefix"])
        if prefix is None:
            raise accounts.InvalidInput("not a key prefix (like sk_AbCd1234)")
        async with _connection(pool) as conn:
            found = await accounts.revoke_key(conn, prefix)
        if not found:
            raise accounts.UnknownKey(f"no key with prefix {prefix}")
        _forget(request)
        return _ok({"revoked": prefix})

    async def usage(request: web.Request, pool: asyncpg.Pool) -> web.Response:
        days = _days(request.query)
        async with _connection(pool) as conn:
            report = await accounts.usage_report(
                conn, user_email=request.query.get("user"), days=days
            )
        return _ok([day.to_json() for day in report])

    admin = web.Application(middlewares=[token])
    names: dict[Handler, RouteInfo] = {}
    for method, path, name, route in [
        ("POST", "/users", "admin_create_user", create_user),
        ("GET", "/users", "admin_list_users", list_users),
        ("PATCH", "/users/{email}", "admin_set_tier", set_tier),
        ("POST", "/keys", "admin_create_key", create_key),
        ("GET", "/keys", "admin_list_keys", list_keys),
        ("DELETE", "/keys/{prefix}", "admin_revoke_key", revoke_key),
        ("GET", "/usage", "admin_usage", usage),
    ]:
        handler = guarded(route)
        if method == "GET":  # and HEAD, as aiohttp's `web.get` route table has it
            admin.router.add_get(path, handler)
        else:
            admin.router.add_route(method, path, handler)
        names[handler] = RouteInfo(name, "structured")
    return admin, names
