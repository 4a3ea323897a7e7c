"""Passwords of the console's users: argon2id hashes (argon2-cffi), checked in the same
time whether or not the address exists.

Hashing takes tens of milliseconds of CPU on purpose, so it runs in a thread: the event
loop keeps serving signatures meanwhile.
"""

from __future__ import annotations

import asyncio
import uuid
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from .errors import InvalidInput
from .people import Database, Person, find_person

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "authenticate",
    "check_password_rules",
    "hash_password",
    "set_password",
    "verify_password",
]

MIN_PASSWORD_LENGTH = 10
# argon2 takes any length, but a megabyte of "password" is a way to burn our CPU.
MAX_PASSWORD_LENGTH = 1024

# argon2-cffi's defaults are RFC 9106's second recommendation (argon2id, 64 MiB, t=3).
_HASHER = PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A hash to check against when the address is unknown, so that answer takes as long."""
    return _HASHER.hash("no such user: this hash only spends the same time")


def check_password_rules(password: object) -> str:
    """`password` if it may be used, else `InvalidInput` saying why."""
    if not isinstance(password, str):
        raise InvalidInput("the password must be text")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")
    if "\x00" in password:
        raise InvalidInput("the password cannot hold a NUL character")
    return password


async def hash_password(password: str) -> str:
    """The argon2id PHC string of `password` (after `check_password_rules`)."""
    checked = check_password_rules(password)
    return await asyncio.to_thread(_HASHER.hash, checked)


def _matches(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` is the one `stored` was made from; a missing hash spends the
    same time and says no."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    if stored is None:
        await asyncio.to_thread(_matches, _dummy_hash(), password)
        return False
    return await asyncio.to_thread(_matches, stored, password)


async def set_password(conn: Database, user_id: uuid.UUID, password: str) -> None:
    """Store a new password for the user."""
    hashed = await hash_password(password)
    await conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, hashed)


async def authenticate(conn: Database, email: str, password: str) -> Person | None:
    """The active user with this address and password; None otherwise, in about the same
    time whichever part was wrong. A hash made with weaker parameters is renewed."""
    person = await find_person(conn, email)
    stored = None
    if person is not None:
        stored = await conn.fetchval("SELECT password_hash FROM users WHERE id = $1", person.id)
    if not await verify_password(stored, password):
        return None
    assert person is not None
    assert stored is not None
    if not person.is_active:
        return None
    if _HASHER.check_needs_rehash(stored):
        await set_password(conn, person.id, password)
    return person
