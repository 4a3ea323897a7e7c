"""Rate limits shared by every API replica: fixed UTC windows counted in Redis.

Who a request is counted against (`caller_for`):

- no key (`apiKey` absent, empty or the literal `None`): the client IP, an IPv6 client by
  its /64 (one host usually holds a whole /64), with the anonymous budgets of
  `RateLimitSettings`;
- a key of a `free` user: the account, so all the account's keys share one budget;
- a key of the `api_key` tier: the key, by its own `per_minute` / `per_day` columns; with
  both null it is unlimited and Redis is not asked at all.

How: windows are fixed and aligned on the UTC minute, hour and day, so with a limit N
exactly N requests pass in a window, however many replicas share the Redis. One Lua script
reads every window of the caller, refuses when any is full (counting nothing), else counts
the request in each: one atomic round trip (EVALSHA; redis-py loads the script again on
NOSCRIPT). The time is Redis's own clock, so a window ends at the same instant for every
replica whatever their hosts' clocks say; a caller may pass `now` instead (the tests do, to
place requests on either side of a boundary). A counter's key names its window and expires
a few seconds after the window ends.

Requires Redis 6 or later, as the whole service does (scripts replicate their effects, so
a script may read TIME before writing) and, like the queue, one Redis server rather than a
cluster.
"""

from __future__ import annotations

import ipaddress
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Literal

from redis.asyncio import Redis

from .settings import RateLimitSettings

__all__ = [
    "WHOSE",
    "WINDOWS",
    "Caller",
    "CallerKind",
    "RateDecision",
    "RateLimitSettings",
    "RateLimiter",
    "Window",
    "WindowState",
    "caller_for",
    "ip_identity",
    "limit_message",
    "refusing_window",
    "seconds_until",
]

Window = Literal["minute", "hour", "day"]
# "key_lookups" and "admin_auth" are per-address budgets of their own (look-ups of keys
# not cached, failed admin tokens): their refusals name themselves in label and message.
# "signin_account" and "signin_address" count the console's failed sign-ins,
# "console_mail" the links it mails to one address.
CallerKind = Literal[
    "ip",
    "account",
    "key",
    "key_lookups",
    "admin_auth",
    "signin_account",
    "signin_address",
    "console_mail",
]

WINDOW_SECONDS: dict[Window, int] = {"minute": 60, "hour": 3600, "day": 86400}
WINDOWS: tuple[Window, ...] = ("minute", "hour", "day")

# KEYS[1]: the caller's key base.
# ARGV[1]: '1' counts the request, '0' only reads the counters.
# ARGV[2]: now in unix milliseconds, or '' for Redis's clock.
# ARGV[3..]: for each window its name, length in seconds and limit.
# Returns: now in milliseconds, 1 if allowed else 0, then each window's count (after this
# request when it was counted).
_SCRIPT = """
local now
if ARGV[2] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[2])
end
-- ARGV[1]: what the request costs (a peek, 0, asks whether one of cost 1 would pass).
local cost = math.max(tonumber(ARGV[1]), 1)
local keys, counts, ttls = {}, {}, {}
local allowed = 1
for i = 3, #ARGV, 3 do
  local size = tonumber(ARGV[i + 1]) * 1000
  local index = math.floor(now / size)
  local key = KEYS[1] .. ':' .. ARGV[i] .. ':' .. string.format('%d', index)
  local count = tonumber(redis.call('GET', key) or 0)
  if count + cost > tonumber(ARGV[i + 2]) then
    allowed = 0
  end
  keys[#keys + 1] = key
  counts[#counts + 1] = count
  -- A few seconds past the window's end, so that a replica passing its own slightly
  -- late clock as `now` still finds the counter.
  ttls[#ttls + 1] = (index + 1) * size - now + 5000
end
if ARGV[1] ~= '0' and allowed == 1 then
  for j, key in ipairs(keys) do
    counts[j] = redis.call('INCRBY', key, cost)
    if counts[j] == cost then
      redis.call('PEXPIRE', key, ttls[j])
    end
  end
end
local reply = {now, allowed}
for _, count in ipairs(counts) do
  reply[#reply + 1] = count
end
return reply
"""

WHOSE: dict[CallerKind, str] = {
    "ip": "for this IP address",
    "account": "for this account (all its API keys together)",
    "key": "for this API key",
    "key_lookups": "for look-ups of unknown API keys from this IP address",
    "admin_auth": "for failed admin authentications from this IP address",
    "signin_account": "for failed console sign-ins to this account",
    "signin_address": "for failed console sign-ins from this IP address",
    "console_mail": "for console mail to this address",
}

# What a refused caller of a budget that is not a request budget reads instead of
# "Rate limit reached": the request was refused for what came before it, not for itself.
_TOO_MANY: dict[CallerKind, str] = {
    "key_lookups": "Too many look-ups of unknown API keys from this address",
    "admin_auth": "Too many failed admin authentications from this address",
    "signin_account": "Too many failed sign-ins",
    "signin_address": "Too many failed sign-ins",
    "console_mail": "Too many links mailed to this address",
}


@dataclass(frozen=True)
class Caller:
    """Whom a request is counted against, and its budget per window (None: no limit)."""

    kind: CallerKind
    id: str
    per_minute: int | None = None
    per_hour: int | None = None
    per_day: int | None = None

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("a caller needs an id")
        for window, limit in self.limits:
            if limit < 0:
                raise ValueError(f"negative {window} limit: {limit}")

    @property
    def limits(self) -> tuple[tuple[Window, int], ...]:
        """The limited windows and their limits, shortest window first."""
        budgets = (self.per_minute, self.per_hour, self.per_day)
        return tuple(
            (window, limit)
            for window, limit in zip(WINDOWS, budgets, strict=True)
            if limit is not None
        )

    @property
    def unlimited(self) -> bool:
        return not self.limits


def caller_for(
    settings: RateLimitSettings,
    *,
    client_ip: str,
    tier: str | None = None,
    user_id: str | int | None = None,
    key_id: str | int | None = None,
    key_per_minute: int | None = None,
    key_per_day: int | None = None,
) -> Caller:
    """The caller of a request: `tier` is None without a key, else `free` or `api_key`.

    With limiting switched off the caller keeps its identity but has no limits.
    """
    if tier is None:
        caller = Caller(
            "ip",
            ip_identity(client_ip),
            settings.anonymous_per_minute,
            settings.anonymous_per_hour,
            settings.anonymous_per_day,
        )
    elif tier == "free":
        if user_id is None:
            raise ValueError("a free-tier caller needs its user id")
        caller = Caller(
            "account",
            str(user_id),
            settings.free_per_minute,
            settings.free_per_hour,
            settings.free_per_day,
        )
    elif tier == "api_key":
        if key_id is None:
            raise ValueError("an api_key-tier caller needs its key id")
        caller = Caller("key", str(key_id), per_minute=key_per_minute, per_day=key_per_day)
    else:
        raise ValueError(f"unknown tier {tier!r}")
    if not settings.enabled:
        return Caller(caller.kind, caller.id)
    return caller


@lru_cache(maxsize=65_536)  # addresses repeat: parse each once
def ip_identity(client_ip: str) -> str:
    """The address an anonymous budget belongs to: IPv4 as is, IPv6 by its /64."""
    try:
        address = ipaddress.ip_address(client_ip.strip())
    except ValueError:
        return client_ip.strip() or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@dataclass(frozen=True)
class WindowState:
    """One window of a caller: its limit, the requests counted in it and when it ends."""

    window: Window
    limit: int
    used: int
    reset_at: int  # unix seconds at which the window ends and its count starts again at 0
    label: str  # e.g. "rate_limit_ip_minute"

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


@dataclass(frozen=True)
class RateDecision:
    """The answer for one request (`hit`) or for a look at the counters (`peek`).

    `allowed` is whether the request passed; for a peek, whether a request would pass now.
    `windows` is empty for an unlimited caller.
    """

    caller: Caller
    allowed: bool
    now: float  # unix seconds of the decision (Redis's clock unless one was given)
    windows: tuple[WindowState, ...]
    refused_by: WindowState | None

    @property
    def limit_label(self) -> str | None:
        return None if self.refused_by is None else self.refused_by.label

    @property
    def retry_after(self) -> int:
        """Whole seconds until the refusing window ends (at least 1); 0 when allowed."""
        if self.refused_by is None:
            return 0
        return seconds_until(self.refused_by.reset_at, self.now)

    @property
    def tightest(self) -> WindowState | None:
        """The window closest to refusing: fewest remaining, then the one ending last."""
        if not self.windows:
            return None
        return min(self.windows, key=lambda w: (w.remaining, -w.reset_at))

    def window(self, name: Window) -> WindowState | None:
        return next((w for w in self.windows if w.window == name), None)


class RateLimiter:
    """Counts requests in Redis for one deployment (`prefix`, as `SIGNER_QUEUE_PREFIX`)."""

    def __init__(self, redis: Redis, prefix: str = "signer") -> None:
        self.prefix = prefix
        self._script = redis.register_script(_SCRIPT)

    async def hit(self, caller: Caller, now: float | None = None, *, cost: int = 1) -> RateDecision:
        """Count a request as `cost` requests unless that would overfill a window of the
        caller; a refusal counts nothing."""
        if cost < 1:
            raise ValueError("a request costs at least 1")
        return await self._run(caller, now, cost=cost)

    async def peek(self, caller: Caller, now: float | None = None) -> RateDecision:
        """Read the caller's counters without counting anything: one round trip."""
        return await self._run(caller, now, cost=0)

    def key_base(self, caller: Caller) -> str:
        """Prefix of the caller's counter keys; each adds `:<window>:<window number>`."""
        return f"{self.prefix}:ratelimit:{caller.kind}:{caller.id}"

    async def _run(self, caller: Caller, now: float | None, *, cost: int) -> RateDecision:
        limits = caller.limits
        if not limits:
            moment = time.time() if now is None else now
            return RateDecision(caller, True, moment, (), None)
        args: list[str | int] = [
            str(cost),
            "" if now is None else math.floor(now * 1000),
        ]
        for window, limit in limits:
            args += [window, WINDOW_SECONDS[window], limit]
        reply = await self._script(keys=[self.key_base(caller)], args=args)
        now_ms, allowed = int(reply[0]), bool(int(reply[1]))
        windows = tuple(
            WindowState(
                window=window,
                limit=limit,
                used=int(used),
                reset_at=(now_ms // (WINDOW_SECONDS[window] * 1000) + 1) * WINDOW_SECONDS[window],
                label=f"rate_limit_{caller.kind}_{window}",
            )
            for (window, limit), used in zip(limits, reply[2:], strict=True)
        )
        refused_by = None
        if not allowed:
            # When several windows are full the longest wait is the true one: report it.
            full = [w for w in windows if w.used + max(cost, 1) > w.limit]
            refused_by = max(full, key=lambda w: (w.reset_at, WINDOW_SECONDS[w.window]))
        moment = now_ms / 1000 if now is None else now
        return RateDecision(caller, allowed, moment, windows, refused_by)


def limit_message(decision: RateDecision) -> str:
    """What a refused caller reads: which budget, and when it may call again."""
    window = refusing_window(decision)
    reset = datetime.fromtimestamp(window.reset_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    seconds = decision.retry_after
    again = f"Try again in {seconds} second{'s' if seconds != 1 else ''} ({reset})."
    too_many = _TOO_MANY.get(decision.caller.kind)
    if too_many is not None:
        return f"{too_many} ({window.limit} per {window.window}). {again}"
    return (
        f"Rate limit reached: {window.limit} requests per {window.window} "
        f"{WHOSE[decision.caller.kind]}. {again}"
    )


def refusing_window(decision: RateDecision) -> WindowState:
    """The window that refused the request (ValueError when none did)."""
    if decision.refused_by is None:
        raise ValueError("the request was not refused")
    return decision.refused_by


def seconds_until(moment: int, now: float) -> int:
    """Whole seconds from `now` to `moment`, at least 1 (what a client is told to wait)."""
    return max(1, math.ceil(moment - now))
