"""Who is calling and whether they may: the API key's look-up, then the rate limit.

Every signing route runs `admit` before it signs. No key (absent, empty or `None`) is
the anonymous free tier, counted per client IP; a key is looked up in Postgres through
the `KeyStore`'s cache and counted against its account or itself (see `api.ratelimit`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace

import asyncpg
from aiohttp import web

from .account_settings import AccountSettings
from .errors import ApiError
from .keystore import AccountsUnavailable, KeyRecord, KeyStore
from .ratelimit import RateDecision, RateLimiter, caller_for, rate_limit_error, rate_limit_headers
from .ratelimit_settings import RateLimitSettings
from .usage import UsageWriter

__all__ = ["INVALID_KEY_MESSAGE", "Access", "Accounting", "admit", "client_ip"]

# EulerStream's own words, which clients show their users as they are.
INVALID_KEY_MESSAGE = "The provided API Key is invalid."
KEYS_UNAVAILABLE_RETRY_AFTER = 2


@dataclass
class Accounting:
    """The API's view of its callers; a part left as None is switched off."""

    keystore: KeyStore | None = None
    limiter: RateLimiter | None = None
    usage: UsageWriter | None = None
    limits: RateLimitSettings = field(default_factory=RateLimitSettings)
    accounts: AccountSettings = field(default_factory=AccountSettings)
    trust_forwarded_for: bool = False
    database: asyncpg.Pool | None = None

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

    @property
    def headers(self) -> dict[str, str]:
        return rate_limit_headers(self.decision) if self.decision is not None else {}


def client_ip(request: web.Request, trust_forwarded_for: bool) -> str:
    """The caller's address; behind a proxy we trust, the first `X-Forwarded-For` hop."""
    if trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "")
        first = forwarded.split(",")[0].strip()
        if first:
            return first
    return request.remote or ""


async def admit(
    accounting: Accounting, raw_key: str | None, ip: str, access: Access, *, count: bool = True
) -> None:
    """Look the key up and count the request into `access`; raises `ApiError` (401, 429
    or 503) when the request may not go on.

    With `count=False` the counters are only read (`GET /webcast/rate_limits`).
    """
    key: KeyRecord | None = None
    if raw_key is not None:
        if accounting.keystore is None:
            raise ApiError(
                503,
                "SERVICE_UNAVAILABLE",
                "API keys cannot be checked: this server has no accounts database",
                retry_after=KEYS_UNAVAILABLE_RETRY_AFTER,
            )
        try:
            key = await accounting.keystore.lookup(raw_key)
        except AccountsUnavailable:
            raise ApiError(
                503,
                "SERVICE_UNAVAILABLE",
                "API keys cannot be checked right now; try again shortly",
                retry_after=KEYS_UNAVAILABLE_RETRY_AFTER,
            ) from None
        if key is None:
            raise ApiError(401, "AUTHENTICATION_ERROR", INVALID_KEY_MESSAGE)
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
        return
    try:
        if count:
            decision = await accounting.limiter.hit(caller)
        else:
            decision = await accounting.limiter.peek(caller)
    except Exception:
        # Redis is down: the queue is down with it, so nothing could be signed anyway.
        raise ApiError(
            503, "SERVICE_UNAVAILABLE", "rate limits cannot be checked right now", retry_after=1
        ) from None
    access.decision = decision
    if count and not decision.allowed:
        error = rate_limit_error(decision)
        error.headers.update(rate_limit_headers(decision))
        raise error
