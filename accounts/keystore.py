"""The hot-path key look-up: Postgres behind a short-lived in-memory cache.

A valid key is cached for `SIGNER_KEY_CACHE_TTL` seconds and a refused one (unknown,
revoked, or its user inactive) for `SIGNER_KEY_NEGATIVE_TTL`, so most requests never
reach Postgres and a flood of bad keys reaches it once per key and TTL. The price: a key
revoked through another process keeps working here until its entry expires.
`KeyStore.forget()` (called by the admin route that revokes) empties this process's cache
at once.

Three rules keep a key in use from ever waiting on, or being refused for, Postgres:

- Concurrent look-ups of one uncached key share a single query, and only the request that
  starts it runs the `before_query` hook (the API's per-address look-up budget): whether a
  query is in flight and starting one are decided with no await between them.
- A key used after 80% of its TTL is refreshed in the background (one query at a time), so
  a hot key's entry is renewed before it expires and its requests never miss the cache.
- While Postgres cannot be asked, a valid key's last good answer is served for up to
  `SIGNER_KEY_STALE_TTL` seconds past its TTL (counted in
  `signer_api_key_stale_answers_total`), asking again at most once a second. A key never
  seen still needs Postgres: `AccountsUnavailable` (503).

Entries are keyed by the key's digest, so the cache holds no key a client could send.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from prometheus_client import CollectorRegistry, Counter

from .apikeys import hash_key, key_prefix
from .errors import AccountsUnavailable
from .settings import AccountSettings
from .tiers import TIERS, Tier, as_tier

__all__ = [
    "TIERS",
    "AccountsUnavailable",
    "BeforeQuery",
    "KeyRecord",
    "KeyStore",
    "Tier",
    "as_tier",
]

log = logging.getLogger(__name__)

# Bounds on memory: real keys are few, but an attacker can send any number of bad ones.
MAX_VALID_ENTRIES = 100_000
MAX_REFUSED_ENTRIES = 10_000
# A key used after this share of its TTL is refreshed in the background, so a key in use
# is renewed before its entry expires and never misses the cache.
REFRESH_SHARE = 0.8
# After a failed query, a held valid answer is served unasked for this long.
RETRY_SECONDS = 1.0

# Run by the request that starts a query (the API counts it in a per-address budget).
BeforeQuery = Callable[[], Awaitable[None]]

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


@dataclass(slots=True)
class _Cached:
    record: KeyRecord | None
    fresh_until: float  # the answer is served as is until then
    ask_at: float  # when to ask Postgres again (a refresh, or a retry after a failure)
    kept_until: float  # a valid answer is served stale until then if Postgres is away


class _TtlCache:
    """Digest -> answer until its `kept_until`; the oldest entry goes first when full."""

    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self._entries: dict[str, _Cached] = {}

    def get(self, digest: str, now: float) -> _Cached | None:
        cached = self._entries.get(digest)
        if cached is None:
            return None
        if cached.kept_until <= now:
            del self._entries[digest]
            return None
        return cached

    def put(self, digest: str, cached: _Cached) -> None:
        self._entries.pop(digest, None)  # re-inserted last, so eviction order stays by age
        while len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[digest] = cached

    def pop(self, digest: str) -> None:
        self._entries.pop(digest, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def _tier(value: str) -> Tier:
    # The table's CHECK admits only the tiers; anything else is treated as the lower one.
    return as_tier(value) or "free"


class _HookRefused(Exception):
    """The `before_query` hook of the request that started a query raised `error`."""

    def __init__(self, error: Exception) -> None:
        super().__init__(repr(error))
        self.error = error


class KeyStore:
    """Answers "which key is this?" for the request path; see the module docstring."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: AccountSettings,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._pool = pool
        self._secret = settings.key_secret.get_secret_value()
        self._valid_ttl = settings.key_cache_ttl
        self._refused_ttl = settings.key_negative_ttl
        self._stale_ttl = settings.key_stale_ttl
        self._timeout = settings.key_lookup_timeout
        self._valid = _TtlCache(MAX_VALID_ENTRIES)
        self._refused = _TtlCache(MAX_REFUSED_ENTRIES)
        self._in_flight: dict[str, asyncio.Task[KeyRecord | None]] = {}
        # Bumped by forget(): a query begun before it may have read what was just revoked,
        # so its answer is returned to its waiters but not cached.
        self._generation = 0
        self.lookups = Counter(
            "signer_api_key_lookups",
            "Key look-ups this API process sent to Postgres, by outcome (valid, refused, "
            "failed) and reason (uncached, expired, refresh).",
            ["outcome", "reason"],
            registry=registry,
        )
        self.stale_answers = Counter(
            "signer_api_key_stale_answers",
            "Requests let in on a valid key's last good answer, Postgres being unreachable.",
            registry=registry,
        )

    async def lookup(
        self, raw_key: str, *, before_query: BeforeQuery | None = None
    ) -> KeyRecord | None:
        """The key's record; None when it is unknown, revoked or its user inactive.

        `before_query` runs only in the request that starts a query for a key this store
        holds no answer for (fresh or stale); what it raises is raised to that request
        alone, and requests that waited on the query it stopped ask again under their own.

        Raises `AccountsUnavailable` when Postgres cannot be asked (down, or slower than
        `SIGNER_KEY_LOOKUP_TIMEOUT`) and no answer is held, not even a stale one.
        """
        prefix = key_prefix(raw_key)
        if prefix is None:
            return None
        digest = hash_key(raw_key, self._secret)
        while True:
            now = time.monotonic()
            cached = self._valid.get(digest, now) or self._refused.get(digest, now)
            if cached is not None:
                if now < cached.fresh_until:
                    if cached.record is not None and now >= cached.ask_at:
                        self._start(prefix, digest, "refresh", None)  # nobody waits on it
                    return cached.record
                return await self._revalidate(prefix, digest, cached, now)
            # Checked and started with no await between: exactly one request runs the hook.
            task, mine = self._start(prefix, digest, "uncached", before_query)
            try:
                # Shielded: one caller giving up must not cancel the query others wait on.
                return await asyncio.shield(task)
            except _HookRefused as refused:
                if mine:
                    raise refused.error from None
                # The starter's budget stopped the query, not ours: ask again, under ours.

    async def _revalidate(
        self, prefix: str, digest: str, cached: _Cached, now: float
    ) -> KeyRecord | None:
        """A valid answer past its TTL: Postgres's answer, or the stale one while it is away."""
        in_flight = self._in_flight.get(digest)
        if now < cached.ask_at and (in_flight is None or in_flight.done()):
            return self._stale(cached)  # it failed us less than RETRY_SECONDS ago
        task, _ = self._start(prefix, digest, "expired", None)
        try:
            return await asyncio.shield(task)
        except AccountsUnavailable:
            return self._stale(cached)

    def _stale(self, cached: _Cached) -> KeyRecord | None:
        self.stale_answers.inc()
        return cached.record

    def _start(
        self, prefix: str, digest: str, reason: str, hook: BeforeQuery | None
    ) -> tuple[asyncio.Task[KeyRecord | None], bool]:
        """The query in flight for `digest`, started now if there was none (then True)."""
        task = self._in_flight.get(digest)
        # A finished query may still be registered (its done callback runs later): waiting
        # on it would not yield, and after a refused hook would loop without end.
        if task is not None and not task.done():
            return task, False
        task = asyncio.create_task(self._fetch(prefix, digest, self._generation, reason, hook))
        self._in_flight[digest] = task
        task.add_done_callback(lambda done: self._finished(digest, done))
        return task, True

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

    async def _fetch(
        self, prefix: str, digest: str, generation: int, reason: str, hook: BeforeQuery | None
    ) -> KeyRecord | None:
        if hook is not None:
            try:
                await hook()
            except Exception as error:
                raise _HookRefused(error) from error
        # The answer is as old as the question: a key revoked while a slow query ran must
        # not stay valid for a whole TTL after it.
        asked = time.monotonic()
        try:
            async with asyncio.timeout(self._timeout):
                row = await self._pool.fetchrow(_LOOKUP, prefix)
        except Exception as error:
            self.lookups.labels("failed", reason).inc()
            if generation == self._generation:
                self._postpone(digest)
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
        self.lookups.labels("refused" if record is None else "valid", reason).inc()
        if generation == self._generation:
            self._remember(digest, record, asked)
        return record

    def _postpone(self, digest: str) -> None:
        """After a failed query, let a held valid answer be served for a while unasked, so
        an outage costs one query per key and second, not one per request."""
        now = time.monotonic()
        cached = self._valid.get(digest, now)
        if cached is not None:
            cached.ask_at = now + RETRY_SECONDS

    def _remember(self, digest: str, record: KeyRecord | None, asked: float) -> None:
        # A refresh may bring the opposite answer of the one held: drop that one first.
        if record is None:
            self._valid.pop(digest)
            if self._refused_ttl > 0:
                until = asked + self._refused_ttl
                self._refused.put(digest, _Cached(None, until, until, until))
            return
        self._refused.pop(digest)
        if self._valid_ttl > 0:
            fresh = asked + self._valid_ttl
            self._valid.put(
                digest,
                _Cached(
                    record, fresh, asked + REFRESH_SHARE * self._valid_ttl, fresh + self._stale_ttl
                ),
            )

    def _finished(self, digest: str, task: asyncio.Task[KeyRecord | None]) -> None:
        if self._in_flight.get(digest) is task:
            del self._in_flight[digest]
        # Read the outcome so a failure nobody awaited any more (a background refresh's
        # above all) is not reported as lost.
        if not task.cancelled():
            task.exception()
