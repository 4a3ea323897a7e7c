"""Console sessions, kept in Redis: the cookie holds only an opaque random id.

Redis holds each session under the SHA-256 of its id (a copy of Redis opens no
session) as a hash of the user's id and the session's CSRF token, and each user's set of
session digests, so "sign out everywhere" can end them all. A session expires after
`idle` seconds without a request; every request it makes pushes that back.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass

from redis.asyncio import Redis

__all__ = ["Session", "SessionStore"]

MAX_SESSION_ID_LENGTH = 128


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in session: whose, its CSRF token and when it began (unix seconds)."""

    user_id: uuid.UUID
    csrf: str
    created: float


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    """Create, find and end sessions in Redis under `<prefix>:console:`."""

    def __init__(self, redis: Redis, prefix: str, idle_seconds: float) -> None:
        self.redis = redis
        self.prefix = prefix
        self.idle = max(1, int(idle_seconds))

    def _key(self, digest: str) -> str:
        return f"{self.prefix}:console:session:{digest}"

    def _index(self, user_id: uuid.UUID) -> str:
        return f"{self.prefix}:console:sessions-of:{user_id}"

    async def create(self, user_id: uuid.UUID) -> tuple[str, Session]:
        """A new session for the user: its id (for the cookie) and the session."""
        session_id = secrets.token_urlsafe(32)
        session = Session(user_id, secrets.token_urlsafe(32), time.time())
        digest = _digest(session_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                self._key(digest),
                mapping={
                    "user_id": str(user_id),
                    "csrf": session.csrf,
                    "created": str(session.created),
                },
            )
            pipe.expire(self._key(digest), self.idle)
            pipe.sadd(self._index(user_id), digest)
            pipe.expire(self._index(user_id), self.idle)
            await pipe.execute()
        return session_id, session

    async def load(self, session_id: str) -> Session | None:
        """The session of this id, its idle time restarted; None when there is none."""
        if not session_id or len(session_id) > MAX_SESSION_ID_LENGTH:
            return None
        key = self._key(_digest(session_id))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(key)
            pipe.expire(key, self.idle)
            found, _ = await pipe.execute()
        if not found:
            return None
        fields = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in found.items()
        }
        try:
            user_id = uuid.UUID(fields["user_id"])
            session = Session(user_id, fields["csrf"], float(fields["created"]))
        except (KeyError, ValueError):
            return None
        await self.redis.expire(self._index(user_id), self.idle)
        return session

    async def end(self, session_id: str) -> None:
        """End this session (signing out here)."""
        digest = _digest(session_id)
        key = self._key(digest)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hget(key, "user_id")
            pipe.delete(key)
            user, _ = await pipe.execute()
        if user is None:
            return
        text = user.decode() if isinstance(user, bytes) else str(user)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.srem(f"{self.prefix}:console:sessions-of:{text}", digest)
            await pipe.execute()

    async def end_all(self, user_id: uuid.UUID, keep: str | None = None) -> int:
        """End every session of the user but `keep` (a session id); how many ended."""
        index = self._index(user_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.smembers(index)
            (members,) = await pipe.execute()
        digests = {d.decode() if isinstance(d, bytes) else str(d) for d in members}
        kept = _digest(keep) if keep else None
        ending = [d for d in digests if d != kept]
        if ending:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(*(self._key(d) for d in ending))
                pipe.srem(index, *ending)
                await pipe.execute()
        return len(ending)
