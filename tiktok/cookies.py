"""TikTok's cookies for our requests: `ttwid` per signing profile, `msToken` carried on.

`ttwid` is the identity cookie. A browser gets it from its first visit to www.tiktok.com
(`Set-Cookie` on any page; spec section 7), so we do the same: one GET of `/live` with the
profile's User-Agent. One ttwid serves a profile until it expires: it is kept in Redis (so
every API replica shares it, and a restart does not re-visit TikTok) behind a short memo in
process, and dropped when TikTok refuses it. Concurrent misses for one profile share one visit.

`msToken` rotates: TikTok sends a fresh one with its answers (`Set-Cookie: msToken=...` or the
`x-ms-token` header), and a browser sends the latest on its next request. It lives in process
only: it is per profile and per moment, and losing it costs nothing (the signer starts over).

Cookie values never reach a log line or an error message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from .errors import InvalidInput, TikTokBadAnswer
from .stats import UpstreamCounters
from .transport import ResponseCookie, Upstream, UpstreamResponse

__all__ = [
    "MAX_CALLER_COOKIE_BYTES",
    "MsTokenJar",
    "ProfileCookies",
    "TtwidStore",
    "cookie_header",
    "parse_cookie_header",
]

log = logging.getLogger(__name__)

ENDPOINT = "ttwid"
# A cookie with no expiry is kept this long; one with an expiry at most this long, so a
# ttwid TikTok has silently dropped is replaced within a day even if nothing refuses it.
DEFAULT_TTWID_TTL = 24 * 3600
# The in-process memo in front of Redis: short, so a refresh by another replica is seen soon.
MEMO_SECONDS = 30.0
MAX_CALLER_COOKIE_BYTES = 8192
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
# What the bootstrap visit sets besides ttwid and a browser would send back.
_BOOTSTRAP_EXTRAS = ("tt_chain_token", "tt_csrf_token")


@dataclass(frozen=True, slots=True)
class ProfileCookies:
    """The cookies one signing profile sends: `ttwid` first, then the bootstrap's others."""

    ttwid: str
    extras: tuple[tuple[str, str], ...]
    expires: float  # Unix seconds

    def pairs(self) -> list[tuple[str, str]]:
        return [("ttwid", self.ttwid), *self.extras]

    def __repr__(self) -> str:  # values are credentials of a kind: never printed
        return f"ProfileCookies(<{1 + len(self.extras)} cookies>, expires={self.expires:.0f})"


class TtwidStore:
    """`ttwid` per signing profile: memo, then Redis, then one visit to TikTok."""

    def __init__(
        self,
        redis_client: redis.Redis,
        key_prefix: str,
        upstream: Upstream,
        web_url: str,
        counters: UpstreamCounters,
    ) -> None:
        self._redis = redis_client
        self._prefix = key_prefix
        self._upstream = upstream
        self._web_url = web_url
        self._counters = counters
        self._memo: dict[str, tuple[float, ProfileCookies]] = {}
        self._visits: dict[str, asyncio.Task[ProfileCookies]] = {}

    def key(self, profile: str) -> str:
        return f"{self._prefix}ttwid:{profile}"

    async def get(self, profile: str, user_agent: str) -> ProfileCookies:
        now = time.time()
        memo = self._memo.get(profile)
        if memo is not None and memo[0] > time.monotonic() and memo[1].expires > now:
            return memo[1]
        cookies = await self._read(profile)
        if cookies is None or cookies.expires <= now:
            visit = self._visits.get(profile)
            if visit is None:
                visit = asyncio.ensure_future(self._visit(profile, user_agent))
                self._visits[profile] = visit
                visit.add_done_callback(lambda done: _forget(self._visits, profile, done))
            # shield: one caller giving up must not cancel the visit the others wait on.
            cookies = await asyncio.shield(visit)
        self._memo[profile] = (time.monotonic() + MEMO_SECONDS, cookies)
        return cookies

    async def refused(self, profile: str, ttwid: str) -> None:
        """TikTok refused `ttwid`: forget it (unless another request already replaced it)."""
        memo = self._memo.get(profile)
        if memo is not None and memo[1].ttwid == ttwid:
            del self._memo[profile]
        self._counters.ttwid_refreshes += 1
        try:
            stored = await self._read(profile)
            if stored is not None and stored.ttwid == ttwid:
                await self._redis.delete(self.key(profile))
        except RedisError:
            log.warning(
                "Redis unavailable: the refused ttwid of %s stays until it expires", profile
            )

    async def _read(self, profile: str) -> ProfileCookies | None:
        try:
            raw = await self._redis.get(self.key(profile))
        except RedisError:
            log.warning("Redis unavailable: fetching a ttwid for %s without the cache", profile)
            return None
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return ProfileCookies(
                ttwid=str(data["ttwid"]),
                extras=tuple((str(n), str(v)) for n, v in data["extras"]),
                expires=float(data["expires"]),
            )
        except (ValueError, KeyError, TypeError):
            return None  # written by another version: fetch afresh

    async def _visit(self, profile: str, user_agent: str) -> ProfileCookies:
        headers = {
            "User-Agent": user_agent,
            "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "Accept-Language": "en-US,en;q=0.9",
        }
        answer = await self._upstream.get(ENDPOINT, f"{self._web_url}/live", headers)
        self._counters.ttwid_fetches += 1
        cookies = bootstrap_cookies(answer)
        await self._store(profile, cookies)
        return cookies

    async def adopt(
        self, profile: str, sent: ProfileCookies, issued: ResponseCookie
    ) -> ProfileCookies:
        """TikTok answered a request with a new ttwid (it does so when it refuses the one
        sent): keep it for the profile, as a browser keeps what it is given."""
        now = time.time()
        expires = now + DEFAULT_TTWID_TTL
        if issued.expires is not None:
            expires = min(issued.expires, expires)
        cookies = ProfileCookies(ttwid=issued.value, extras=sent.extras, expires=expires)
        self._counters.ttwid_refreshes += 1
        self._memo[profile] = (time.monotonic() + MEMO_SECONDS, cookies)
        await self._store(profile, cookies)
        return cookies

    async def _store(self, profile: str, cookies: ProfileCookies) -> None:
        ttl = max(1, int(cookies.expires - time.time()))
        value = json.dumps(
            {"ttwid": cookies.ttwid, "extras": cookies.extras, "expires": cookies.expires}
        )
        try:
            await self._redis.set(self.key(profile), value, ex=ttl)
        except RedisError:
            log.warning("Redis unavailable: the new ttwid of %s is kept in process only", profile)


def bootstrap_cookies(answer: UpstreamResponse) -> ProfileCookies:
    """The ttwid (and friends) a visit to TikTok set; `TikTokBadAnswer` when it set none."""
    found: dict[str, ResponseCookie] = {cookie.name: cookie for cookie in answer.cookies}
    ttwid = found.get("ttwid")
    if ttwid is None or not ttwid.value:
        raise TikTokBadAnswer(
            f"TikTok set no ttwid cookie on a visit to its web page (status {answer.status})",
            status=answer.status,
            latency=answer.latency,
            endpoint=ENDPOINT,
        )
    now = time.time()
    expires = now + DEFAULT_TTWID_TTL
    if ttwid.expires is not None:
        expires = min(ttwid.expires, expires)
    extras = tuple(
        (name, found[name].value)
        for name in _BOOTSTRAP_EXTRAS
        if name in found and found[name].value
    )
    return ProfileCookies(ttwid=ttwid.value, extras=extras, expires=expires)


class MsTokenJar:
    """The latest msToken TikTok gave each signing profile."""

    def __init__(self) -> None:
        self._tokens: dict[str, str] = {}

    def get(self, profile: str) -> str | None:
        return self._tokens.get(profile)

    def remember(self, profile: str, answer: UpstreamResponse) -> str | None:
        token = answer.headers.get("x-ms-token", "")
        for cookie in answer.cookies:
            if cookie.name == "msToken" and cookie.value:
                token = cookie.value
        if token:
            self._tokens[profile] = token
            return token
        return None


def parse_cookie_header(header: str) -> list[tuple[str, str]]:
    """A caller's `Cookie` header as pairs, in order; raises `InvalidInput` for one unfit to
    pass on. The message never repeats the header: it holds session ids."""
    if len(header.encode()) > MAX_CALLER_COOKIE_BYTES:
        raise InvalidInput("x-cookie-header", f"is longer than {MAX_CALLER_COOKIE_BYTES} bytes")
    if _CONTROL_RE.search(header):
        raise InvalidInput("x-cookie-header", "contains a control character")
    pairs = []
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name.strip():
            pairs.append((name.strip(), value.strip()))
    return pairs


def cookie_header(ours: Iterable[tuple[str, str]], caller: Sequence[tuple[str, str]]) -> str:
    """One `Cookie` header: ours, with the caller's own cookies winning by name (a logged-in
    caller's ttwid belongs to its session)."""
    theirs = {name for name, _ in caller}
    merged = [(name, value) for name, value in ours if name not in theirs]
    merged.extend(caller)
    return "; ".join(f"{name}={value}" for name, value in merged)


def _forget(pending: dict[str, Any], key: str, done: object) -> None:
    # Only the finished task: a newer one for the same key may already stand there.
    if pending.get(key) is done:
        del pending[key]
