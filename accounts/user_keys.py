"""One user's own API keys, named by the key's id and always within that user.

What the console does with keys: every function takes the signed-in user's id, and a key
id of someone else's is simply not found (None or False), never an error that says it
exists.
"""

from __future__ import annotations

import uuid

from .errors import InvalidInput, UnknownUser
from .people import Database, connection_of
from .users import _KEY_SELECT, ApiKeyInfo, _key, create_key

__all__ = ["create_user_key", "get_user_key", "list_user_keys", "revoke_user_key"]


async def list_user_keys(conn: Database, user_id: uuid.UUID) -> list[ApiKeyInfo]:
    """The user's keys, active ones first, newest first."""
    rows = await conn.fetch(
        f"{_KEY_SELECT} WHERE k.user_id = $1 ORDER BY k.is_active DESC, k.created_at DESC, k.id",
        user_id,
    )
    return [_key(row) for row in rows]


async def get_user_key(conn: Database, user_id: uuid.UUID, key_id: uuid.UUID) -> ApiKeyInfo | None:
    row = await conn.fetchrow(f"{_KEY_SELECT} WHERE k.user_id = $1 AND k.id = $2", user_id, key_id)
    return _key(row) if row is not None else None


async def create_user_key(
    conn: Database,
    user_id: uuid.UUID,
    name: str,
    per_minute: int | None,
    per_day: int | None,
    *,
    most_per_minute: int | None,
    most_per_day: int | None,
    key_secret: str,
) -> tuple[ApiKeyInfo, str]:
    """Issue the user a key; its own limits may not exceed the tier's (`most_*`, None:
    the tier has no such limit)."""
    for label, value, most in (
        ("per minute", per_minute, most_per_minute),
        ("per day", per_day, most_per_day),
    ):
        if value is not None and most is not None and value > most:
            raise InvalidInput(f"the limit {label} can be at most {most}, the tier's own")
    async with connection_of(conn) as held:
        email = await held.fetchval("SELECT email FROM users WHERE id = $1", user_id)
        if email is None:
            raise UnknownUser("no such user")
        return await create_key(held, email, name, per_minute, per_day, key_secret=key_secret)


async def revoke_user_key(conn: Database, user_id: uuid.UUID, key_id: uuid.UUID) -> bool:
    """Revoke the user's key; False when the user has no key with this id."""
    revoked = await conn.fetchval(
        "UPDATE api_keys SET is_active = false WHERE user_id = $1 AND id = $2 RETURNING id",
        user_id,
        key_id,
    )
    return revoked is not None
