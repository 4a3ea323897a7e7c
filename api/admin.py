"""`/admin/...`: users, API keys and usage over HTTP, behind `SIGNER_ADMIN_TOKEN`.

Every route wants the token as `Authorization: Bearer <token>` or `X-Admin-Token`
(401 without it or with another; 403 on every route while no token is configured).
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
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Protocol

import asyncpg
from aiohttp import web

from . import accounts
from .account_settings import AccountSettings
from .apikeys import SHOWN_ONCE, prefix_named_by
from .errors import ApiError, ErrorType, structured_error_body
from .keystore import KeyStore

__all__ = ["AccountsBackend", "admin_routes"]

log = logging.getLogger(__name__)

# Seconds to wait for a free connection before answering 503.
ACQUIRE_TIMEOUT = 5.0
DEFAULT_REPORT_DAYS = 7

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Route = Callable[[web.Request, asyncpg.Pool], Awaitable[web.Response]]

_STATUS: dict[type[accounts.AccountError], int] = {
    accounts.InvalidInput: 400,
    accounts.UnknownUser: 404,
    accounts.UnknownKey: 404,
    accounts.DuplicateUser: 409,
    accounts.SchemaNotReady: 503,
}


class AccountsBackend(Protocol):
    """Where the routes find Postgres and the key cache when a request comes (the API's
    `Accounting` is one); either may be None, Postgres meaning 503."""

    @property
    def database(self) -> asyncpg.Pool | None: ...

    @property
    def keystore(self) -> KeyStore | None: ...


def _error(status: int, type_: ErrorType, message: str) -> web.Response:
    # 404 and 409 go out as VALIDATION_ERROR, as the app's own 404 does: the caller named
    # something that is not there, or already is.
    error = ApiError(status, type_, message)
    response = web.json_response(structured_error_body(error, datetime.now(UTC)), status=status)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="signer admin"'
    return response


def _ok(data: object, status: int = 200) -> web.Response:
    return web.json_response({"status": "success", "data": data}, status=status)


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


def _refusal(expected: str, headers: Mapping[str, str]) -> web.Response | None:
    """The answer for a request without the right token; None when it may go on."""
    if not expected:
        return _error(
            403,
            "AUTHENTICATION_ERROR",
            "admin routes are disabled: set SIGNER_ADMIN_TOKEN to enable them",
        )
    given = _presented_token(headers)
    if given is None:
        return _error(
            401,
            "AUTHENTICATION_ERROR",
            "admin token required (Authorization: Bearer <token> or X-Admin-Token)",
        )
    # Bytes, since compare_digest refuses non-ASCII str; aiohttp keeps undecodable header
    # bytes as surrogates, which only surrogateescape turns back into bytes.
    if not hmac.compare_digest(_bytes(given), _bytes(expected)):
        return _error(401, "AUTHENTICATION_ERROR", "invalid admin token")
    return None


@asynccontextmanager
async def _connection(pool: asyncpg.Pool) -> AsyncIterator[accounts.Connection]:
    async with pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
        yield conn


async def _json_object(request: web.Request, allowed: set[str]) -> dict[str, object]:
    raw = await request.read()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
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


def _forget(backend: AccountsBackend) -> None:
    if backend.keystore is not None:
        backend.keystore.forget()


async def _answer(request: web.Request, route: Route, backend: AccountsBackend) -> web.Response:
    """What `route` answers, with every failure turned into a structured error."""
    pool = backend.database
    if pool is None:
        return _error(
            503, "SERVICE_UNAVAILABLE", "admin needs the accounts database (DATABASE_URL)"
        )
    try:
        return await route(request, pool)
    except accounts.AccountError as error:
        status = _STATUS.get(type(error), 400)
        kind: ErrorType = "SERVICE_UNAVAILABLE" if status == 503 else "VALIDATION_ERROR"
        return _error(status, kind, str(error))
    except web.HTTPRequestEntityTooLarge:
        return _error(413, "VALIDATION_ERROR", "the body is too large")
    except asyncpg.UndefinedTableError:
        return _error(
            503, "SERVICE_UNAVAILABLE", "the accounts schema is missing: run `signer migrate`"
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        log.warning("admin %s %s: database error %r", request.method, request.path, error)
        return _error(503, "SERVICE_UNAVAILABLE", "the accounts database is unreachable")
    except Exception:
        log.exception("admin %s %s failed", request.method, request.path)
        return _error(500, "INTERNAL_ERROR", "internal error; it has been logged")


def admin_routes(backend: AccountsBackend, settings: AccountSettings) -> list[web.RouteDef]:
    """The `/admin/...` routes; add them before any catch-all route of the app."""
    token = settings.admin_token.get_secret_value()

    def guarded(route: Route) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            # Not `or`: an aiohttp response is a mapping, falsy while it holds no state.
            response = _refusal(token, request.headers)
            if response is None:
                response = await _answer(request, route, backend)
            # Keys and account data must not linger in a proxy's or browser's cache.
            response.headers["Cache-Control"] = "no-store"
            return response

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
        _forget(backend)  # cached keys carry the old tier
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
        _forget(backend)
        return _ok({"revoked": prefix})

    async def usage(request: web.Request, pool: asyncpg.Pool) -> web.Response:
        days = _days(request.query)
        async with _connection(pool) as conn:
            report = await accounts.usage_report(
                conn, user_email=request.query.get("user"), days=days
            )
        return _ok([day.to_json() for day in report])

    return [
        web.post("/admin/users", guarded(create_user)),
        web.get("/admin/users", guarded(list_users)),
        web.patch("/admin/users/{email}", guarded(set_tier)),
        web.post("/admin/keys", guarded(create_key)),
        web.get("/admin/keys", guarded(list_keys)),
        web.delete("/admin/keys/{prefix}", guarded(revoke_key)),
        web.get("/admin/usage", guarded(usage)),
    ]
