"""The people who sign in to the console: their addresses, roles and state, in plain SQL.

`accounts.users` serves the admin commands, which name a user by email; the console names
the signed-in person by id, so every function here takes the user's id (or finds it by
address) and never returns a password hash (`accounts.passwords` alone reads those).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from .errors import DuplicateUser, InvalidInput, UnknownUser
from .tiers import Tier, as_tier
from .users import MAX_EMAIL_LENGTH, Connection, _email

__all__ = [
    "MAX_SEARCH_RESULTS",
    "Database",
    "Person",
    "checked_email",
    "connection_of",
    "create_person",
    "find_person",
    "get_person",
    "mark_verified",
    "note_login",
    "search_people",
    "set_active",
    "set_admin",
    "set_email",
    "set_person_tier",
]

MAX_SEARCH_RESULTS = 100

# A connection, or a pool for what runs as one statement (the console passes its pool).
Database: TypeAlias = "Connection | asyncpg.Pool[Any]"


@asynccontextmanager
async def connection_of(database: Database) -> AsyncIterator[Connection]:
    """A connection of `database`: itself, or one held from the pool meanwhile."""
    if isinstance(database, asyncpg.Pool):
        async with database.acquire() as conn:
            yield conn
    else:
        yield database


_COLUMNS = """
    u.id, u.email, u.tier, u.is_admin, u.is_active, u.email_verified_at,
    u.password_hash IS NOT NULL AS has_password, u.created_at, u.last_login,
    (SELECT count(*) FROM api_keys AS k WHERE k.user_id = u.id AND k.is_active) AS active_keys
"""


@dataclass(frozen=True, slots=True)
class Person:
    """A user as the console sees them."""

    id: uuid.UUID
    email: str
    tier: Tier
    is_admin: bool
    is_active: bool
    email_verified_at: datetime | None
    has_password: bool
    created_at: datetime
    last_login: datetime | None
    active_keys: int

    @property
    def verified(self) -> bool:
        return self.email_verified_at is not None


def checked_email(value: object) -> str:
    """`value` as an email address (stripped), or `InvalidInput`."""
    return _email(value)


def _person(row: asyncpg.Record) -> Person:
    tier = as_tier(row["tier"])
    if tier is None:
        raise InvalidInput(f"unknown tier {row['tier']!r} in the database")
    return Person(
        id=row["id"],
        email=row["email"],
        tier=tier,
        is_admin=row["is_admin"],
        is_active=row["is_active"],
        email_verified_at=row["email_verified_at"],
        has_password=row["has_password"],
        created_at=row["created_at"],
        last_login=row["last_login"],
        active_keys=row["active_keys"],
    )


def _maybe(row: asyncpg.Record | None) -> Person | None:
    return _person(row) if row is not None else None


async def get_person(conn: Database, user_id: uuid.UUID) -> Person | None:
    """The user with this id; None when there is none."""
    return _maybe(
        await conn.fetchrow(f"SELECT {_COLUMNS} FROM users AS u WHERE u.id = $1", user_id)
    )


async def find_person(conn: Database, email: str) -> Person | None:
    """The user with this address in any letter case; None when there is none (or when
    `email` is no address at all: nobody has it)."""
    try:
        address = _email(email)
    except InvalidInput:
        return None
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM users AS u WHERE lower(u.email) = lower($1)", address
    )
    return _maybe(row)


async def create_person(
    conn: Database, email: str, *, tier: str = "free", admin: bool = False
) -> Person:
    """Add a user without a password (one is set through a mailed link)."""
    address = _email(email)
    checked = as_tier(tier)
    if checked is None:
        raise InvalidInput(f"unknown tier {tier!r}")
    try:
        row = await conn.fetchrow(
            f"INSERT INTO users AS u (email, tier, is_admin) VALUES ($1, $2, $3) "
            f"RETURNING {_COLUMNS}",
            address,
            checked,
            admin,
        )
    except asyncpg.UniqueViolationError:
        raise DuplicateUser(f"a user with email {address} already exists") from None
    assert row is not None
    return _person(row)


async def _update(conn: Database, user_id: uuid.UUID, assignment: str, *args: Any) -> Person:
    row = await conn.fetchrow(
        f"UPDATE users AS u SET {assignment} WHERE u.id = $1 RETURNING {_COLUMNS}", user_id, *args
    )
    if row is None:
        raise UnknownUser("no such user")
    return _person(row)


async def set_admin(conn: Database, user_id: uuid.UUID, admin: bool) -> Person:
    return await _update(conn, user_id, "is_admin = $2", admin)


async def set_active(conn: Database, user_id: uuid.UUID, active: bool) -> Person:
    """Deactivate (or reactivate) a user: a deactivated user's keys stop working (the key
    store joins on `users.is_active`) and the console refuses their sessions."""
    return await _update(conn, user_id, "is_active = $2", active)


async def set_person_tier(conn: Database, user_id: uuid.UUID, tier: str) -> Person:
    checked = as_tier(tier)
    if checked is None:
        raise InvalidInput(f"unknown tier {tier!r}")
    return await _update(conn, user_id, "tier = $2", checked)


async def mark_verified(conn: Database, user_id: uuid.UUID) -> Person:
    return await _update(conn, user_id, "email_verified_at = now()")


async def set_email(conn: Database, user_id: uuid.UUID, email: str) -> Person:
    """Move the user to a new address, proven by the link just followed."""
    address = _email(email)
    try:
        return await _update(conn, user_id, "email = $2, email_verified_at = now()", address)
    except asyncpg.UniqueViolationError:
        raise DuplicateUser(f"a user with email {address} already exists") from None


async def note_login(conn: Database, user_id: uuid.UUID) -> None:
    await conn.execute("UPDATE users SET last_login = now() WHERE id = $1", user_id)


async def search_people(
    conn: Database, query: str = "", limit: int = MAX_SEARCH_RESULTS
) -> list[Person]:
    """Users whose address holds `query` (any case), newest first; every user without one."""
    text = query.strip()[:MAX_EMAIL_LENGTH].replace("\x00", "")
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM users AS u WHERE u.email ILIKE $1 "
        "ORDER BY u.created_at DESC, u.id LIMIT $2",
        pattern,
        max(1, min(limit, MAX_SEARCH_RESULTS)),
    )
    return [_person(row) for row in rows]
