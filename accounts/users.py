"""Users, API keys and usage reports in Postgres, in plain SQL: what the admin commands
and the `/admin/...` routes do.

Every function takes a connection (or a pool, for the single-statement ones) and raises
an `AccountError` subclass for anything the caller got wrong; Postgres's own errors pass
through. Keys are returned without their hash: the whole key exists only in the return
value of `create_key`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from migrations import migration_files

from .apikeys import generate_key, hash_key, prefix_named_by
from .errors import (
    AccountError,
    DuplicateUser,
    InvalidInput,
    SchemaNotReady,
    UnknownKey,
    UnknownUser,
)
from .tiers import TIERS, Tier, as_tier

__all__ = [
    "EMAIL_PATTERN",
    "MAX_REPORT_DAYS",
    "TIERS",
    "AccountError",
    "ApiKeyInfo",
    "Connection",
    "DuplicateUser",
    "InvalidInput",
    "SchemaNotReady",
    "UnknownKey",
    "UnknownUser",
    "UsageDay",
    "User",
    "check_schema",
    "create_key",
    "create_user",
    "get_user",
    "list_keys",
    "list_users",
    "revoke_key",
    "set_tier",
    "usage_report",
]

Connection: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"

MAX_REPORT_DAYS = 366
MAX_EMAIL_LENGTH = 254
MAX_KEY_NAME_LENGTH = 200
# Stricter than the table's own check: one @, something on each side, no spaces and no
# control characters (Postgres text cannot hold a NUL: it would fail as a database error).
EMAIL_PATTERN = r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+"
_EMAIL = re.compile(EMAIL_PATTERN)
_PREFIX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class User:
    """A user as listed: `active_keys` counts keys not revoked."""

    id: uuid.UUID
    email: str
    tier: Tier
    is_active: bool
    created_at: datetime
    last_login: datetime | None
    active_keys: int

    def to_json(self) -> dict[str, object]:
        return {
            "id": str(self.id),
            "email": self.email,
            "tier": self.tier,
            "is_active": self.is_active,
            "created_at": _iso(self.created_at),
            "last_login": _iso(self.last_login),
            "active_keys": self.active_keys,
        }


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """A key as listed: everything but its hash."""

    id: uuid.UUID
    prefix: str
    name: str
    user_email: str
    tier: Tier
    created_at: datetime
    last_used: datetime | None
    is_active: bool
    per_minute: int | None
    per_day: int | None

    def to_json(self) -> dict[str, object]:
        return {
            "id": str(self.id),
            "prefix": self.prefix,
            "name": self.name,
            "user": self.user_email,
            "tier": self.tier,
            "created_at": _iso(self.created_at),
            "last_used": _iso(self.last_used),
            "is_active": self.is_active,
            "per_minute": self.per_minute,
            "per_day": self.per_day,
        }


@dataclass(frozen=True, slots=True)
class UsageDay:
    """One UTC day of usage; rates and latencies are None on a day without requests."""

    day: date
    requests: int
    successes: int
    p50_ms: float | None
    p95_ms: float | None

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.requests if self.requests else None

    def to_json(self) -> dict[str, object]:
        return {
            "day": self.day.isoformat(),
            "requests": self.requests,
            "successes": self.successes,
            "success_rate": self.success_rate,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
        }


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _tier(value: object) -> Tier:
    tier = as_tier(value)
    if tier is not None:
        return tier
    raise InvalidInput(f"tier must be one of {', '.join(TIERS)}, not {value!r}")


def _email(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInput("email must be a string")
    email = value.strip()
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.fullmatch(email):
        raise InvalidInput(f"{value!r} is not an email address")
    return email


def _limit(name: str, value: object) -> int | None:
    # bool is an int to Python, but `true` as a limit is a caller's mistake.
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{name} must be a whole number")
    if not 0 < value <= 2**31 - 1:
        raise InvalidInput(f"{name} must be between 1 and {2**31 - 1}")
    return value


async def check_schema(conn: Connection) -> None:
    """Raise `SchemaNotReady` unless every migration of this release has been applied."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    applied: set[str] = set()
    if exists:
        applied = {row["name"] for row in await conn.fetch("SELECT name FROM schema_migrations")}
    missing = [file.name for file in migration_files() if file.name not in applied]
    if missing:
        raise SchemaNotReady(
            f"the database schema is not up to date ({', '.join(missing)} not applied): "
            "run `signer migrate`"
        )


_USER_COLUMNS = """
    u.id, u.email, u.tier, u.is_active, u.created_at, u.last_login,
    (SELECT count(*) FROM api_keys AS k WHERE k.user_id = u.id AND k.is_active) AS active_keys
"""


def _user(row: asyncpg.Record) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        tier=_tier(row["tier"]),
        is_active=row["is_active"],
        created_at=row["created_at"],
        last_login=row["last_login"],
        active_keys=row["active_keys"],
    )


async def create_user(conn: Connection, email: str, tier: str = "free") -> User:
    """Add a user; `DuplicateUser` when the email is taken in any letter case."""
    address, checked_tier = _email(email), _tier(tier)
    try:
        row = await conn.fetchrow(
            f"INSERT INTO users AS u (email, tier) VALUES ($1, $2) RETURNING {_USER_COLUMNS}",
            address,
            checked_tier,
        )
    except asyncpg.UniqueViolationError:
        raise DuplicateUser(f"a user with email {address} already exists") from None
    assert row is not None
    return _user(row)


async def get_user(conn: Connection, email: str) -> User | None:
    """The user with this email, whatever its letter case; None when there is none."""
    row = await conn.fetchrow(
        f"SELECT {_USER_COLUMNS} FROM users AS u WHERE lower(u.email) = lower($1)",
        _email(email),
    )
    return _user(row) if row is not None else None


async def _require_user(conn: Connection, email: str) -> User:
    user = await get_user(conn, email)
    if user is None:
        raise UnknownUser(f"no user with email {email.strip()}")
    return user


async def list_users(conn: Connection) -> list[User]:
    """Every user, oldest first."""
    rows = await conn.fetch(f"SELECT {_USER_COLUMNS} FROM users AS u ORDER BY u.created_at, u.id")
    return [_user(row) for row in rows]


async def set_tier(conn: Connection, email: str, tier: str) -> User:
    """Move a user to another tier; `UnknownUser` when there is no such user."""
    checked_tier = _tier(tier)
    row = await conn.fetchrow(
        f"UPDATE users AS u SET tier = $2 WHERE lower(u.email) = lower($1) "
        f"RETURNING {_USER_COLUMNS}",
        _email(email),
        checked_tier,
    )
    if row is None:
        raise UnknownUser(f"no user with email {email.strip()}")
    return _user(row)


_KEY_SELECT = """
SELECT k.id, k.prefix, k.name, u.email, u.tier, k.created_at, k.last_used, k.is_active,
       k.per_minute, k.per_day
FROM api_keys AS k JOIN users AS u ON u.id = k.user_id
"""


def _key(row: asyncpg.Record) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row["id"],
        prefix=row["prefix"],
        name=row["name"],
        user_email=row["email"],
        tier=_tier(row["tier"]),
        created_at=row["created_at"],
        last_used=row["last_used"],
        is_active=row["is_active"],
        per_minute=row["per_minute"],
        per_day=row["per_day"],
    )


async def create_key(
    conn: Connection,
    user_email: str,
    name: str,
    per_minute: int | None = None,
    per_day: int | None = None,
    *,
    key_secret: str = "",
) -> tuple[ApiKeyInfo, str]:
    """Issue a key to a user; return it as listed and the whole key, shown this once.

    `key_secret` must be the API's `SIGNER_KEY_SECRET`, or the key will not be recognised.
    Limits left None mean the user's tier decides.
    """
    if not isinstance(name, str) or len(name) > MAX_KEY_NAME_LENGTH:
        raise InvalidInput(f"name must be a string of at most {MAX_KEY_NAME_LENGTH} characters")
    if "\x00" in name:
        raise InvalidInput("name cannot hold a NUL character")
    minute, day = _limit("per_minute", per_minute), _limit("per_day", per_day)
    user = await _require_user(conn, user_email)
    for _ in range(_PREFIX_ATTEMPTS):
        new = generate_key()
        try:
            # A savepoint when the caller holds a transaction, so a clash leaves it usable.
            async with conn.transaction():
                key_id = await conn.fetchval(
                    "INSERT INTO api_keys (user_id, key_hash, prefix, name, per_minute, per_day)"
                    " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                    user.id,
                    hash_key(new.key, key_secret),
                    new.prefix,
                    name,
                    minute,
                    day,
                )
        except asyncpg.UniqueViolationError:
            continue  # 48 random bits of prefix met another key's: draw again
        row = await conn.fetchrow(f"{_KEY_SELECT} WHERE k.id = $1", key_id)
        assert row is not None
        return _key(row), new.key
    raise RuntimeError(f"no free key prefix found in {_PREFIX_ATTEMPTS} draws")


async def list_keys(conn: Connection, user_email: str | None = None) -> list[ApiKeyInfo]:
    """Every key, or one user's (`UnknownUser` when there is none), oldest first."""
    if user_email is None:
        rows = await conn.fetch(f"{_KEY_SELECT} ORDER BY k.created_at, k.id")
    else:
        user = await _require_user(conn, user_email)
        rows = await conn.fetch(
            f"{_KEY_SELECT} WHERE k.user_id = $1 ORDER BY k.created_at, k.id", user.id
        )
    return [_key(row) for row in rows]


async def revoke_key(conn: Connection, prefix: str) -> bool:
    """Revoke the key with this prefix (a whole key is accepted too); False when no key
    has it. Revoking twice is harmless. API processes notice within their cache TTL."""
    named = prefix_named_by(prefix.strip())
    if named is None:
        raise InvalidInput(f"{prefix!r} is not a key prefix (like sk_AbCd1234)")
    revoked = await conn.fetchval(
        "UPDATE api_keys SET is_active = false WHERE prefix = $1 RETURNING id", named
    )
    return revoked is not None


async def usage_report(
    conn: Connection, *, user_email: str | None, days: int, today: date | None = None
) -> list[UsageDay]:
    """Requests per UTC day for the last `days` days up to `today` (default: now's UTC
    date), all users' or one user's; days without requests are included, as zeros."""
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_REPORT_DAYS:
        raise InvalidInput(f"days must be between 1 and {MAX_REPORT_DAYS}")
    last = today or datetime.now(UTC).date()
    first = last - timedelta(days=days - 1)
    start = datetime.combine(first, time(), tzinfo=UTC)
    end = datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC)
    user_id = None if user_email is None else (await _require_user(conn, user_email)).id
    rows = await conn.fetch(
        """
        SELECT (created_at AT TIME ZONE 'UTC')::date AS day,
               count(*) AS requests,
               count(*) FILTER (WHERE success) AS successes,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY response_time_ms) AS p50,
               percentile_cont(0.95) WITHIN GROUP (ORDER BY response_time_ms) AS p95
        FROM usage_logs
        WHERE created_at >= $1 AND created_at < $2 AND ($3::uuid IS NULL OR user_id = $3)
        GROUP BY day
        """,
        start,
        end,
        user_id,
    )
    found = {row["day"]: row for row in rows}
    report = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        row = found.get(day)
        if row is None:
            report.append(UsageDay(day, 0, 0, None, None))
        else:
            report.append(UsageDay(day, row["requests"], row["successes"], row["p50"], row["p95"]))
    return report
