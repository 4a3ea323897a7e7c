"""One-time tokens: the links mailed to verify an address, reset a password or accept an
invitation.

A token is 32 random bytes (URL-safe base64); only its SHA-256 is stored. Each is for
one purpose, one user and one address, works once, and for an hour. Issuing a token
voids the user's unused ones of the same purpose, so only the newest link works.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import asyncpg

from .people import Database, connection_of

__all__ = ["TOKEN_LIFETIME", "Purpose", "TokenUse", "issue_token", "peek_token", "redeem_token"]

Purpose = Literal["verify", "reset", "invite"]
TOKEN_LIFETIME = timedelta(hours=1)
MAX_TOKEN_LENGTH = 128


@dataclass(frozen=True, slots=True)
class TokenUse:
    """What a valid token was issued for."""

    user_id: uuid.UUID
    purpose: Purpose
    email: str
    expires_at: datetime


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


async def issue_token(
    conn: Database,
    user_id: uuid.UUID,
    purpose: Purpose,
    email: str,
    lifetime: timedelta = TOKEN_LIFETIME,
) -> str:
    """A new token for `purpose`; the raw token, which only the link will hold."""
    raw = secrets.token_urlsafe(32)
    async with connection_of(conn) as held, held.transaction():
        await held.execute(
            "UPDATE one_time_tokens SET used_at = now() "
            "WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
            user_id,
            purpose,
        )
        await held.execute(
            "INSERT INTO one_time_tokens (token_hash, user_id, purpose, email, expires_at) "
            "VALUES ($1, $2, $3, $4, now() + $5::interval)",
            _digest(raw),
            user_id,
            purpose,
            email,
            lifetime,
        )
    return raw


def _use(row: asyncpg.Record | None, purpose: Purpose) -> TokenUse | None:
    if row is None:
        return None
    return TokenUse(row["user_id"], purpose, row["email"], row["expires_at"])


async def peek_token(conn: Database, raw: str, purpose: Purpose) -> TokenUse | None:
    """What the token is for, if it is still usable, without using it (a form's GET)."""
    if not raw or len(raw) > MAX_TOKEN_LENGTH:
        return None
    row = await conn.fetchrow(
        "SELECT user_id, email, expires_at FROM one_time_tokens "
        "WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now()",
        _digest(raw),
        purpose,
    )
    return _use(row, purpose)


async def redeem_token(conn: Database, raw: str, purpose: Purpose) -> TokenUse | None:
    """Use the token: what it was for, or None when it is unknown, used, expired or for
    another purpose. Two requests racing with one token: only one gets it."""
    if not raw or len(raw) > MAX_TOKEN_LENGTH:
        return None
    row = await conn.fetchrow(
        "UPDATE one_time_tokens SET used_at = now() "
        "WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now() "
        "RETURNING user_id, email, expires_at",
        _digest(raw),
        purpose,
    )
    return _use(row, purpose)
