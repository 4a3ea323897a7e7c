"""Who is calling and whether they may: the API key's look-up, then the rate limit.

Every signing route runs `admit` before it signs. No key (absent, empty or `None`) is
the anonymous free tier, counted per client IP; a key is looked up in Postgres through
the `KeyStore`'s cache and counted against its account or itself (see `accounts.ratelimit`).
A key the cache cannot answer for costs a Postgres query, counted per address first (the
look-up budget, `SIGNER_LIMIT_KEY_LOOKUPS_PER_MINUTE`), so made-up keys are refused
before the database while a real key in use never is.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace

import asyncpg

from .errors import AccountsUnavailable, InvalidKey, RateLimited
from .keystore import BeforeQuery, KeyRecord, KeyStore
from .ratelimit import Caller, RateDecision, RateLimiter, caller_for, ip_identity
from .settings import RateLimitSettings
from .usage import UsageWriter

__all__ = ["Access", "Accounting", "Headroom", "admit"]

KEYS_UNAVAILABLE_RETRY_AFTER = 2
LIMITS_UNAVAILABLE_RETRY_AFTER = 1
MAX_HEADROOM_ENTRIES = 100_000  # callers remembered per process (oldest forgotten first)


@dataclass
class Accounting:
    """The API's view of its callers; a part left as None is switched off."""

    keystore: KeyStore | None = None
    limiter: RateLimiter | None = None
    usage: UsageWriter | None = None
    # The defaults as written, not the environment's (only `service/` reads that): with
    # no limiter they only shape the caller's identity.
    limits: RateLimitSettings = field(default_factory=RateLimitSettings.model_construct)
    database: asyncpg.Pool | None = None
    headroom: Headroom = field(default_factory=lambda: Headroom())

    async def database_connected(self) -> bool:
        """Whether Postgres answers now (within a second)."""
        if self.database is None:
            return False
        try:
            async with asyncio.timeout(1):
                await self.database.fetchval("SELECT 1")
        except Exception:
            return False
        return True


@dataclass(slots=True)
class Access:
    """What `admit` learnt of a request: its key (None when anonymous) and its rate-limit
    state; filled as far as `admit` got, so a refused request is accounted for too."""

    key: KeyRecord | None = None
    decision: RateDecision | None = None


class Headroom:
    """Which callers had plenty of budget left when last counted, in this process.

    Their next requests may be counted while they are already being signed, which takes
    the rate-limit round trip off the path of every caller far from a limit. A caller near
    or over a limit, or not seen yet, is counted first as usual, so refused requests never
    cost a signature. Each request counted ahead uses up one of the remaining requests
    seen last, so a burst cannot go ahead of the count by more than that.
    """

    def __init__(self, spare_share: float = 0.1, spare_minimum: int = 5) -> None:
        self.spare_share = spare_share
        self.spare_minimum = spare_minimum
        self._left: OrderedDict[str, tuple[int, int]] = OrderedDict()  # -> (left, until)

    def record(self, decision: RateDecision) -> None:
        """Note what the limiter just said about the caller."""
        name = f"{decision.caller.kind}:{decision.caller.id}"
        window = decision.tightest
        if not decision.allowed or window is None:
            self._left.pop(name, None)
            return
        spare = max(self.spare_minimum, math.ceil(window.limit * self.spare_share))
        self._left[name] = (window.remaining - spare, window.reset_at)
        self._left.move_to_end(name)
        while len(self._left) > MAX_HEADROOM_ENTRIES:
            self._left.popitem(last=False)

    def take(self, caller: Caller, now: float) -> bool:
        """Whether a request of `caller` may be counted ahead; uses up one if so."""
        name = f"{caller.kind}:{caller.id}"
        left, until = self._left.get(name, (0, 0))
        if left <= 0 or now >= until:  # past the window seen, start again from a count
            return False
        self._left[name] = (left - 1, until)
        return True


async def admit(
    accounting: Accounting,
    raw_key: str | None,
    ip: str,
    access: Access,
    *,
    count: bool = True,
    ahead: bool = False,
    cost: int = 1,
) -> asyncio.Task[None] | None:
    """Look the key up and count the request into `access`; raises `InvalidKey`,
    `RateLimited` or `AccountsUnavailable` when the request may not go on.

    With `count=False` the counters are only read (`GET /webcast/rate_limits`). With
    `ahead`, a caller with plenty of budget left (see `Headroom`) is counted in a task
    returned to the caller, who signs meanwhile and must await it before answering.
    `cost` is how many requests this one counts as (a connect's weight); a request costing
    more than one is always counted first.
    """
    key: KeyRecord | None = None
    if raw_key is not None:
        if accounting.keystore is None:
            raise AccountsUnavailable(
                "API keys cannot be checked: this server has no accounts database",
                KEYS_UNAVAILABLE_RETRY_AFTER,
            )
        count_lookup: BeforeQuery | None = None
        if accounting.limiter is not None and accounting.limits.enabled:
            # A look-up that must ask Postgres is counted per address first, in a budget
            # of its own, so a flood of made-up keys is refused before the database. Only
            # the request that starts the query is counted (the key store runs this hook
            # there alone): requests waiting on it, keys answered from the cache (a key in
            # use is refreshed before it expires) and stale answers cost nothing.
            lookups = Caller(
                "key_lookups",
                ip_identity(ip),
                per_minute=accounting.limits.key_lookups_per_minute,
            )

            async def count_lookup() -> None:
                await _count(accounting, lookups, access, count=True)
                access.decision = None  # the answer's headers are the key's own, below

        try:
            key = await accounting.keystore.lookup(raw_key, before_query=count_lookup)
        except AccountsUnavailable:
            raise AccountsUnavailable(
                "API keys cannot be checked right now; try again shortly",
                KEYS_UNAVAILABLE_RETRY_AFTER,
            ) from None
        if key is None:
            raise InvalidKey
        access.key = key
    if key is None:
        caller = caller_for(accounting.limits, client_ip=ip)
    else:
        caller = caller_for(
            accounting.limits,
            client_ip=ip,
            tier=key.tier,
            user_id=str(key.user_id),
            key_id=str(key.key_id),
            key_per_minute=key.per_minute,
            key_per_day=key.per_day,
        )
    if accounting.limiter is None:  # limits off: every caller is unlimited
        access.decision = RateDecision(
            replace(caller, per_minute=None, per_hour=None, per_day=None),
            True,
            time.time(),
            (),
            None,
        )
        return None
    if count and ahead and cost == 1 and accounting.headroom.take(caller, time.time()):
        return asyncio.create_task(_count(accounting, caller, access, count=True))
    await _count(accounting, caller, access, count=count, cost=cost)
    return None


async def _count(
    accounting: Accounting, caller: Caller, access: Access, *, count: bool, cost: int = 1
) -> None:
    assert accounting.limiter is not None
    try:
        if count:
            decision = await accounting.limiter.hit(caller, cost=cost)
        else:
            decision = await accounting.limiter.peek(caller)
    except Exception:
        # Redis is down: the queue is down with it, so nothing could be signed anyway.
        raise AccountsUnavailable(
            "rate limits cannot be checked right now", LIMITS_UNAVAILABLE_RETRY_AFTER
        ) from None
    access.decision = decision
    if count:
        accounting.headroom.record(decision)
    if count and not decision.allowed:
        raise RateLimited(decision)
