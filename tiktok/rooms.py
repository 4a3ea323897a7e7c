"""A handle's room id: the live page's `SIGI_STATE`, then `api-live/user/room` (spec 5).

Looked up the way TikTokLive and tiktok-live-connector do it themselves, and cached so that a
thousand connects to one popular LIVE cost one look-up: a small LRU in each process (a hit
never leaves the process), then Redis (shared by the replicas), then TikTok. A room found live
is kept 5 minutes; a user not found or offline 30 s, so a LIVE that starts is seen soon.
Concurrent misses for one handle share one upstream request. Upstream failures (TikTok down,
timing out) are never cached.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import redis.asyncio as redis
from redis.exceptions import RedisError

from .errors import (
    InvalidRoomId,
    LookupFailed,
    TikTokBadAnswer,
    TikTokError,
    TikTokUnavailable,
    UserNotFound,
    UserOffline,
)
from .stats import UpstreamCounters
from .transport import Upstream
from .validation import clean_handle, clean_room_id

__all__ = ["FOUND_TTL", "MISSING_TTL", "RoomInfo", "RoomLookup"]

log = logging.getLogger(__name__)

FOUND_TTL = 300
MISSING_TTL = 30
LIVE_PAGE = "live_page"
API_LIVE = "api_live_user_room"
STATUS_OFFLINE = 4  # TikTok's `status` for an ended LIVE
_SIGI_RE = re.compile(
    r'<script id="SIGI_STATE" type="application/json"[^>]*>(.*?)</script>', re.DOTALL
)
_PAGE_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.9",
}


@dataclass(frozen=True, slots=True)
class RoomInfo:
    """What TikTok says about a handle's LIVE room."""

    unique_id: str
    room_id: str  # decimal text; empty when TikTok gave none (offline)
    is_live: bool
    source: str  # live_page, api_live_user_room; `cache` when served from a cache
    routes_attempted: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Entry:
    found: bool
    room_id: str
    is_live: bool

    @property
    def ttl(self) -> int:
        return FOUND_TTL if self.found and self.is_live else MISSING_TTL


class _NotFound(Exception):
    """TikTok said, definitively, that there is no such user."""


class RoomLookup:
    def __init__(
        self,
        *,
        upstream: Upstream,
        redis_client: redis.Redis,
        key_prefix: str,
        web_url: str,
        counters: UpstreamCounters,
        cache_size: int,
        user_agent: str,
    ) -> None:
        self._upstream = upstream
        self._redis = redis_client
        self._prefix = key_prefix
        self._web_url = web_url
        self._counters = counters
        self._cache_size = cache_size
        self._user_agent = user_agent
        self._lru: OrderedDict[str, tuple[float, _Entry]] = OrderedDict()
        self._pending: dict[str, asyncio.Task[tuple[_Entry, tuple[str, ...]]]] = {}

    def key(self, handle: str) -> str:
        return f"{self._prefix}room:{handle}"

    async def lookup(self, unique_id: str) -> RoomInfo:
        """The room of `unique_id`, live or not. Raises `InvalidHandle` (nothing sent),
        `UserNotFound`, `LookupFailed` when TikTok's answers could not be read, and the
        upstream `TikTokError`s."""
        handle = clean_handle(unique_id)
        held = self._lru.get(handle)
        if held is not None and held[0] > time.monotonic():
            self._lru.move_to_end(handle)
            self._counters.room_cache_hits["process"] += 1
            return _info(handle, held[1], "cache", ())
        entry = await self._read(handle)
        if entry is not None:
            self._counters.room_cache_hits["redis"] += 1
            self._remember(handle, entry)
            return _info(handle, entry, "cache", ())
        task = self._pending.get(handle)
        if task is None:
            self._counters.room_cache_misses += 1
            task = asyncio.ensure_future(self._fetch(handle))
            self._pending[handle] = task
            task.add_done_callback(lambda done: _forget(self._pending, handle, done))
        # shield: one caller giving up must not cancel the look-up the others wait on.
        fetched, attempted = await asyncio.shield(task)
        return _info(handle, fetched, attempted[-1], attempted)

    async def live_room_id(self, unique_id: str) -> str:
        """The room id of a LIVE that is on; `UserOffline` when it is not."""
        info = await self.lookup(unique_id)
        if not info.is_live or not info.room_id:
            raise UserOffline(
                f"@{info.unique_id} is not LIVE right now",
                unique_id=info.unique_id,
                routes_attempted=info.routes_attempted,
            )
        return info.room_id

    def _remember(self, handle: str, entry: _Entry) -> None:
        self._lru[handle] = (time.monotonic() + entry.ttl, entry)
        self._lru.move_to_end(handle)
        while len(self._lru) > self._cache_size:
            self._lru.popitem(last=False)

    async def _read(self, handle: str) -> _Entry | None:
        try:
            raw = await self._redis.get(self.key(handle))
        except RedisError:
            log.warning("Redis unavailable: room look-up of @%s without the shared cache", handle)
            return None
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return _Entry(bool(data["found"]), str(data["room_id"]), bool(data["is_live"]))
        except (ValueError, KeyError, TypeError):
            return None

    async def _fetch(self, handle: str) -> tuple[_Entry, tuple[str, ...]]:
        attempted: list[str] = []
        failure: TikTokError | None = None
        entry: _Entry | None = None
        for route, step in ((LIVE_PAGE, self._from_live_page), (API_LIVE, self._from_api_live)):
            attempted.append(route)
            try:
                entry = await step(handle)
                break
            except _NotFound:
                entry = _Entry(found=False, room_id="", is_live=False)
                break
            except TikTokUnavailable:
                # The breaker opened: no other route would be let through either. The
                # failure that opened it says more than the refusal that followed.
                if failure is not None:
                    raise failure from None
                raise
            except TikTokError as error:  # this route failed: the next one may not
                failure = error
        if entry is None:
            if failure is not None and not isinstance(failure, TikTokBadAnswer):
                raise failure  # TikTok down or refusing: the caller's 502/503/504
            raise LookupFailed(
                f"TikTok's answers gave no room id for @{handle}",
                unique_id=handle,
                routes_attempted=tuple(attempted),
            )
        self._remember(handle, entry)
        try:
            value = {"found": entry.found, "room_id": entry.room_id, "is_live": entry.is_live}
            await self._redis.set(self.key(handle), json.dumps(value), ex=entry.ttl)
        except RedisError:
            log.warning("Redis unavailable: the room of @%s is cached in process only", handle)
        return entry, tuple(attempted)

    def _headers(self) -> dict[str, str]:
        return {"User-Agent": self._user_agent, **_PAGE_HEADERS}

    async def _from_live_page(self, handle: str) -> _Entry:
        url = f"{self._web_url}/@{quote(handle, safe='')}/live"
        answer = await self._upstream.get(LIVE_PAGE, url, self._headers())
        if answer.status == 404:
            raise _NotFound
        if answer.status != 200:
            raise _bad(LIVE_PAGE, f"answered {answer.status}", answer.status)
        found = _SIGI_RE.search(answer.body.decode("utf-8", "replace"))
        if found is None:
            raise _bad(LIVE_PAGE, "has no SIGI_STATE", answer.status)
        try:
            state = json.loads(found.group(1))
        except ValueError:
            raise _bad(LIVE_PAGE, "has a SIGI_STATE that is not JSON", answer.status) from None
        live_room = _dig(state, "LiveRoom")
        if not isinstance(live_room, dict):
            raise _NotFound  # what TikTokLive reads as "user not found"
        user = _dig(live_room, "liveRoomUserInfo", "user")
        if not isinstance(user, dict):
            raise _bad(LIVE_PAGE, "has no liveRoomUserInfo.user", answer.status)
        status = _dig(live_room, "liveRoomUserInfo", "liveRoom", "status")
        return _entry(user.get("roomId"), user.get("status") != STATUS_OFFLINE and
                      status != STATUS_OFFLINE, LIVE_PAGE)  # fmt: skip

    async def _from_api_live(self, handle: str) -> _Entry:
        url = (
            f"{self._web_url}/api-live/user/room/?aid=1988&app_name=tiktok_web"
            f"&device_platform=web_pc&uniqueId={quote(handle, safe='')}&sourceType=54"
        )
        answer = await self._upstream.get(API_LIVE, url, self._headers())
        try:
            data = json.loads(answer.body)
        except ValueError:
            raise _bad(API_LIVE, f"answered {answer.status} without JSON", answer.status) from None
        if not isinstance(data, dict):
            raise _bad(API_LIVE, "answered JSON that is not an object", answer.status)
        if data.get("message") == "user_not_found":
            raise _NotFound
        if data.get("statusCode", 0) != 0:
            raise _bad(API_LIVE, f"answered statusCode {data.get('statusCode')}", answer.status)
        status = _dig(data, "data", "liveRoom", "status")
        return _entry(_dig(data, "data", "user", "roomId"), status != STATUS_OFFLINE, API_LIVE)


def _entry(room_id: object, live: bool, route: str) -> _Entry:
    text = str(room_id) if isinstance(room_id, str | int) and room_id != "" else ""
    if not text:
        return _Entry(found=True, room_id="", is_live=False)  # TikTok gives none when offline
    try:
        text = clean_room_id(text)
    except InvalidRoomId:
        raise _bad(route, "gave a room id that is not one", 200) from None
    return _Entry(found=True, room_id=text, is_live=live)


def _info(handle: str, entry: _Entry, source: str, attempted: tuple[str, ...]) -> RoomInfo:
    if not entry.found:
        raise UserNotFound(
            f"TikTok has no user @{handle}", unique_id=handle, routes_attempted=attempted
        )
    return RoomInfo(handle, entry.room_id, entry.is_live, source, attempted)


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _bad(route: str, what: str, status: int) -> TikTokBadAnswer:
    return TikTokBadAnswer(f"TikTok's {route} {what}", status=status, endpoint=route)


def _forget(pending: dict[str, Any], key: str, done: object) -> None:
    # Only the finished task: a newer one for the same key may already stand there.
    if pending.get(key) is done:
        del pending[key]
