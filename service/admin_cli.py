"""What `signer migrate`, `signer users`, `signer keys` and `signer usage` do.

Each command connects to `DATABASE_URL`, prints an aligned table (or JSON with
`as_json`) and returns the exit status. Anything that goes wrong (unknown user, duplicate
email, Postgres unreachable, schema missing) is one `signer: ...` line on stderr and
status 1. Only `signer migrate` changes the schema: the other commands refuse to run on
a database it has not brought up to date, rather than migrate one pointed at by mistake.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from pydantic import ValidationError

from accounts import users as accounts
from accounts.apikeys import SHOWN_ONCE, prefix_named_by
from accounts.errors import AccountError, UnknownKey
from migrations import MigrationError, migrate

from .environment import Environment

__all__ = [
    "format_table",
    "keys_create",
    "keys_list",
    "keys_revoke",
    "migrate_command",
    "usage",
    "users_create",
    "users_list",
    "users_set_tier",
]

CONNECT_TIMEOUT = 10.0

Work = Callable[["asyncpg.Connection[Any]"], Awaitable[None]]

# What a failed connection or statement can raise; each becomes one line on stderr.
_DATABASE_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class _Failure(Exception):
    """A command failed; the message is the line to print."""


def _fail(message: str) -> int:
    print(f"signer: {message}", file=sys.stderr)
    return 1


def _where(url: str) -> str:
    """The database named by `url`, without its password."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.hostname or 'localhost'}{port}{parts.path or ''}"
    except ValueError:
        return "DATABASE_URL"


def _settings_error(error: ValidationError) -> str:
    first = error.errors()[0]
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"invalid setting {'.'.join(str(part) for part in first['loc'])}: {message}"


async def _on_database(url: str, work: Work, *, check_schema: bool) -> None:
    try:
        conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT)
    except (*_DATABASE_ERRORS, ValueError) as error:
        raise _Failure(f"cannot connect to Postgres at {_where(url)}: {error}") from None
    try:
        if check_schema:
            await accounts.check_schema(conn)
        await work(conn)
    except AccountError as error:
        raise _Failure(str(error)) from None
    except _DATABASE_ERRORS as error:
        raise _Failure(f"database error at {_where(url)}: {error}") from None
    finally:
        await conn.close()


def _run(env: Environment, work: Work, *, check_schema: bool = True) -> int:
    try:
        url = env.database.database_url
        asyncio.run(_on_database(url, work, check_schema=check_schema))
    except _Failure as failure:
        return _fail(str(failure))
    except ValidationError as error:
        return _fail(_settings_error(error))
    return 0


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: Sequence[int] = ()
) -> str:
    """Columns padded to their widest cell, two spaces apart; `right` columns (numbers)
    aligned to the right."""
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(width) if index in right else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers), *(line(row) for row in rows)])


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2))


def _text(value: object) -> str:
    return "-" if value is None else str(value)


def _moment(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def migrate_command(env: Environment) -> int:
    """`signer migrate`: apply what is pending, bring the usage partitions up to date."""
    try:
        settings = env.database
    except ValidationError as error:
        return _fail(_settings_error(error))
    try:
        lines = asyncio.run(migrate(settings))
    except MigrationError as error:
        return _fail(str(error))
    except (*_DATABASE_ERRORS, ValueError) as error:
        return _fail(f"cannot migrate Postgres at {_where(settings.database_url)}: {error}")
    for line in lines:
        print(line)
    if not lines:
        print("nothing to do: the schema is up to date")
    return 0


def _print_users(users: Sequence[accounts.User], *, as_json: bool) -> None:
    if as_json:
        _print_json([user.to_json() for user in users])
        return
    rows = [
        [
            user.email,
            user.tier,
            "yes" if user.is_active else "no",
            str(user.active_keys),
            _moment(user.created_at),
        ]
        for user in users
    ]
    print(format_table(["email", "tier", "active", "keys", "created (UTC)"], rows, right=[3]))


def users_create(
    env: Environment, email: str, tier: str, *, as_json: bool = False, if_missing: bool = False
) -> int:
    """`signer users create EMAIL [--tier T] [--if-missing]`: with `if_missing`, a user
    who already exists is shown as they are (tier unchanged) instead of an error, so
    `make key` can run again for the same email."""

    async def work(conn: asyncpg.Connection[Any]) -> None:
        try:
            user = await accounts.create_user(conn, email, tier)
        except accounts.DuplicateUser:
            existing = await accounts.get_user(conn, email) if if_missing else None
            if existing is None:
                raise
            user = existing
        _print_users([user], as_json=as_json)

    return _run(env, work)


def users_list(env: Environment, *, as_json: bool = False) -> int:
    """`signer users list`."""

    async def work(conn: asyncpg.Connection[Any]) -> None:
        _print_users(await accounts.list_users(conn), as_json=as_json)

    return _run(env, work)


def users_set_tier(env: Environment, email: str, tier: str, *, as_json: bool = False) -> int:
    """`signer users set-tier EMAIL TIER` (running APIs notice within their key cache TTL)."""

    async def work(conn: asyncpg.Connection[Any]) -> None:
        _print_users([await accounts.set_tier(conn, email, tier)], as_json=as_json)

    return _run(env, work)


def _print_keys(keys: Sequence[accounts.ApiKeyInfo], *, as_json: bool) -> None:
    if as_json:
        _print_json([key.to_json() for key in keys])
        return
    rows = [
        [
            key.prefix,
            key.name or "-",
            key.user_email,
            key.tier,
            "active" if key.is_active else "revoked",
            _text(key.per_minute),
            _text(key.per_day),
            _moment(key.created_at),
            _moment(key.last_used),
        ]
        for key in keys
    ]
    headers = ["prefix", "name", "user", "tier", "state", "per min", "per day", "created (UTC)"]
    print(format_table([*headers, "last used (UTC)"], rows, right=[5, 6]))


def keys_create(
    env: Environment,
    user: str,
    name: str,
    per_minute: int | None = None,
    per_day: int | None = None,
    *,
    as_json: bool = False,
) -> int:
    """`signer keys create`: the key alone on stdout (so `$(...)` captures it), the rest
    on stderr; with `as_json`, one object on stdout."""
    try:
        secret = env.accounts.key_secret.get_secret_value()
    except ValidationError as error:
        return _fail(_settings_error(error))

    async def work(conn: asyncpg.Connection[Any]) -> None:
        info, key = await accounts.create_key(
            conn, user, name, per_minute, per_day, key_secret=secret
        )
        if as_json:
            _print_json({"key": key, "notice": SHOWN_ONCE, "record": info.to_json()})
            return
        own = [f"{per_minute}/min"] if per_minute else []
        own += [f"{per_day}/day"] if per_day else []
        limits = f"limits {', '.join(own)}, else the tier's" if own else "the tier's limits"
        print(f"key {info.prefix} for {info.user_email} ({info.tier}, {limits}):", file=sys.stderr)
        print(key)
        print(SHOWN_ONCE, file=sys.stderr)

    return _run(env, work)


def keys_list(env: Environment, user: str | None = None, *, as_json: bool = False) -> int:
    """`signer keys list [--user EMAIL]`: never the hashes."""

    async def work(conn: asyncpg.Connection[Any]) -> None:
        _print_keys(await accounts.list_keys(conn, user), as_json=as_json)

    return _run(env, work)


def keys_revoke(env: Environment, prefix: str) -> int:
    """`signer keys revoke PREFIX`; running APIs stop accepting it within their cache TTL."""

    try:
        ttl = env.accounts.key_cache_ttl
    except ValidationError as error:
        return _fail(_settings_error(error))
    # Only the prefix is ever printed, even when a whole key was given.
    shown = prefix_named_by(prefix.strip()) or prefix

    async def work(conn: asyncpg.Connection[Any]) -> None:
        if not await accounts.revoke_key(conn, prefix):
            raise UnknownKey(f"no key with prefix {shown}")
        print(f"revoked {shown}; running APIs refuse it within {ttl:g} s (their key cache)")

    return _run(env, work)


def usage(
    env: Environment, user: str | None = None, days: int = 7, *, as_json: bool = False
) -> int:
    """`signer usage [--user EMAIL] [--days N]`: one row per UTC day."""

    async def work(conn: asyncpg.Connection[Any]) -> None:
        report = await accounts.usage_report(conn, user_email=user, days=days)
        if as_json:
            _print_json([day.to_json() for day in report])
            return
        rows = [
            [
                day.day.isoformat(),
                str(day.requests),
                "-" if day.success_rate is None else f"{day.success_rate:.1%}",
                "-" if day.p50_ms is None else f"{day.p50_ms:.1f}",
                "-" if day.p95_ms is None else f"{day.p95_ms:.1f}",
            ]
            for day in report
        ]
        headers = ["day (UTC)", "requests", "success", "p50 ms", "p95 ms"]
        print(format_table(headers, rows, right=[1, 2, 3, 4]))

    return _run(env, work)
