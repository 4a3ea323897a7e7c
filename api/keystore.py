"""The hot-path key look-up: Postgres behind a short-lived in-memory cache.

A valid key is cached for `SIGNER_KEY_CACHE_TTL` seconds and a refused one (unknown,
revoked, or its user inactive) for `SIGNER_KEY_NEGATIVE_TTL`, so most requests never
reach Postgres and a flood of bad keys reaches it once per key and TTL. The price: a key
revoked through another process keeps working here until its entry expires.
`KeyStore.forget()` (called by the admin route that revokes) empties this process's cache
at once. Concurrent look-ups of one uncached key share a single query.

Entries are keyed by the key's digest, so the cache holds no key a client could send.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Literal

import asyncpg

from .account_settings import AccountSettings
from .apikeys import hash_key, key_prefix

__all__ = ["TIERS", "AccountsUnavailable", "KeyRecord", "KeyStore", "Tier", "as_tier"]

log = logging.getLogger(__name__)

Tier = Literal["free", "api_key"]
TIERS: tuple[Tier, ...] = ("free", "api_key")

# Bounds on memory: real keys are few, but an attacker can send any number of bad ones.
MAX_VALID_ENTRIES = 100_000
MAX_REFUSED_ENTRIES = 10_000

# The prefix is unique, so this is one index probe; the digest is compared in Python in
# constant time rather than in the WHERE clause.
_LOOKUP = """
SELECT k.id, k.user_id, u.tier, k.prefix, k.per_minute, k.per_day, k.key_hash
FROM api_keys AS k JOIN users AS u ON u.id = k.user_id
WHERE k.prefix = $1 AND k.is_active AND u.is_active
"""


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A valid key as the API needs it: whose it is and which limits apply."""

    key_id: uuid.UUID
    user_id: uuid.UUID
    tier: Tier
    prefix: str
    per_minute: int | None
    per_day: int | None


class AccountsUnavailable(Exception):
    """Postgres could not be asked whether a key is valid (the API answers 503)."""


@dataclass(frozen=True, slots=True)
class _Cached:
    record: KeyRecord | None
    expires: float


class _TtlCache:
    """Digest -> answer until a deadline; the oldest entry goes first when full."""

    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self._entries: dict[str, _Cached] = {}

    def get(self, digest: str, now: float) -> _Cached | None:
        cached = self._entries.get(digest)
        if cached is None:
            return None
        if cached.expires <= now:
            del self._entries[digest]
            return None
        return cached

    def put(self, digest: str, record: KeyRecord | None, expires: float) -> None:
        self._entries.pop(digest, None)  # re-inserted last, so eviction order stays by age
        while len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[digest] = _Cached(record, expires)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def as_tier(value: object) -> Tier | None:
    """`value` as a tier, or None when it names none."""
    for tier in TIERS:
        if value == tier:
            return tier
    return None


def _tier(value: str) -> Tier:
    # The table's CHECK admits only the tiers; anything else is treated as the lower one.
    return as_tier(value) or "free"


class KeyStore:
    """Answers "which key is this?" for the request path; see the module docstring."""

    def __init__(self, pool: asyncpg.Pool, settings: AccountSettings) -> None:
        self._pool = pool
        self._secret = settings.key_secret.get_secret_value()
        self._valid_ttl = settings.key_cache_ttl
        self._refused_ttl = settings.key_negative_ttl
        self._timeout = settings.key_lookup_timeout
        self._valid = _TtlCache(MAX_VALID_ENTRIES)
        self._refused = _TtlCache(MAX_REFUSED_ENTRIES)
        self._in_flight: dict[str, asyncio.Task[KeyRecord | None]] = {}
        # Bumped by forget(): a query begun before it may have read what was just revoked,
        # so its answer is returned to its waiters but not cached.
        self._generation = 0

    async def lookup(self, raw_key: str) -> KeyRecord | None:
        """The key's record; None when it is unknown, revoked or its user inactive.

        Raises `AccountsUnavailable` when the answer is not cached and Postgres cannot be
        asked (down, or slower than `SIGNER_KEY_LOOKUP_TIMEOUT`).
        """
        found = self._find(raw_key)
        if found is None:
            return None
        prefix, digest, cached = found
        if cached is not None:
            return cached.record
        task = self._in_flight.get(digest)
        if task is None:
            task = asyncio.create_task(self._fetch(prefix, digest, self._generation))
            self._in_flight[digest] = task
            task.add_done_callback(lambda done: self._finished(digest, done))
        # Shielded: one caller giving up must not cancel the query the others wait on.
        return await asyncio.shield(task)

    def knows(self, raw_key: str) -> bool:
        """Whether `lookup` can answer without asking Postgres: a malformed key, an answer
        cached, or a query for it already on its way."""
        found = self._find(raw_key)
        if found is None:
            return True
        _, digest, cached = found
        return cached is not None or digest in self._in_flight

    def _find(self, raw_key: str) -> tuple[str, str, _Cached | None] | None:
        """The key's prefix, digest and cached answer; None for a malformed key."""
        prefix = key_prefix(raw_key)
        if prefix is None:
            return None
        digest = hash_key(raw_key, self._secret)
        now = time.monotonic()
        return prefix, digest, self._valid.get(digest, now) or self._refused.get(digest, now)

    def forget(self) -> None:
        """Drop every cached answer, so a revocation made here takes effect at once."""
        self._valid.clear()
        self._refused.clear()
        self._in_flight.clear()
        self._generation += 1

    @property
    def cached_entries(self) -> int:
        """Answers held now, valid and refused (for tests and metrics)."""
        return len(self._valid) + len(self._refused)

    async def _fetch(self, prefix: str, digest: str, generation: int) -> KeyRecord | None:
        # The answer is as old as the question: a key revoked while a slow query ran must
        # not stay valid for a whole TTL after it.
        asked = time.monotonic()
        try:
            async with asyncio.timeout(self._timeout):
                row = await self._pool.fetchrow(_LOOKUP, prefix)
        except Exception as error:
            log.warning("API key look-up failed: %r", error)
            raise AccountsUnavailable(f"cannot look API keys up: {error!r}") from error
        record: KeyRecord | None = None
        if row is not None and hmac.compare_digest(row["key_hash"], digest):
            record = KeyRecord(
                key_id=row["id"],
                user_id=row["user_id"],
                tier=_tier(row["tier"]),
                prefix=row["prefix"],
                per_minute=row["per_minute"],
                per_day=row["per_day"],
            )
        if generation == self._generation:
            self._remember(digest, record, asked)
        return record

    def _remember(self, digest: str, record: KeyRecord | None, asked: float) -> None:
        ttl = self._valid_ttl if record is not None else self._refused_ttl
        if ttl <= 0:
            return
        cache = self._valid if record is not None else self._refused
        cache.put(digest, record, asked + ttl)

    def _finished(self, digest: str, task: asyncio.Task[KeyRecord | None]) -> None:
        if self._in_flight.get(digest) is task:
            del self._in_flight[digest]
        # Read the outcome so a failure nobody awaited any more is not reported as lost.
        if not task.cancelled():
            task.exception()
