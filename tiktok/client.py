"""`TikTokClient`: the one object the service builds to talk to TikTok.

It owns the transport (sessions, proxies, retries, breaker), the cookie stores, the room
look-up and the im/fetch request, and hands out their counters as one `TikTokStats`.

```python
async with TikTokClient(settings, sign=queue_sign, redis=redis_client) as tiktok:
    room_id = await tiktok.live_room_id("@sandbox")
    answer = await tiktok.fetch(room_id, user_agent=ua)
    answer.body, answer.set_tt_cookie()
```
"""

from __future__ import annotations

import time
from types import TracebackType

import redis.asyncio as redis

from .breaker import BreakerState
from .cookies import MsTokenJar, TtwidStore, parse_cookie_header
from .fetch import GUESS_NAVIGATOR, ImFetcher, ImFetchResult, Sign
from .rooms import RoomInfo, RoomLookup
from .settings import TikTokSettings
from .socket_strategy import socket_connect_body
from .stats import TikTokStats, UpstreamCounters
from .transport import Upstream

__all__ = ["DEFAULT_KEY_PREFIX", "SOCKET_PROFILE", "TikTokClient"]

DEFAULT_KEY_PREFIX = "tiktok:"
# The cookie jar of the `socket` strategy, which signs nothing and so has no profile.
SOCKET_PROFILE = "direct-socket"


class TikTokClient:
    def __init__(
        self,
        settings: TikTokSettings,
        *,
        sign: Sign,
        redis_client: redis.Redis,
        key_prefix: str = DEFAULT_KEY_PREFIX,
    ) -> None:
        self.settings = settings
        self._counters = UpstreamCounters()
        self._upstream = Upstream(settings, self._counters)
        self._ms_tokens = MsTokenJar()
        self.ttwids = TtwidStore(
            redis_client, key_prefix, self._upstream, settings.tiktok_web_url, self._counters
        )
        self._fetcher = ImFetcher(
            upstream=self._upstream,
            sign=sign,
            ttwids=self.ttwids,
            ms_tokens=self._ms_tokens,
            webcast_url=settings.tiktok_webcast_url,
        )
        self.rooms = RoomLookup(
            upstream=self._upstream,
            redis_client=redis_client,
            key_prefix=key_prefix,
            web_url=settings.tiktok_web_url,
            counters=self._counters,
            cache_size=settings.tiktok_room_cache_size,
            user_agent=GUESS_NAVIGATOR.user_agent,
        )

    async def start(self) -> None:
        await self._upstream.start()

    async def close(self) -> None:
        await self._upstream.close()

    async def __aenter__(self) -> TikTokClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def fetch(
        self,
        room_id: str,
        *,
        user_agent: str | None = None,
        cursor: str = "",
        internal_ext: str = "",
        cookie_header: str | None = None,
    ) -> ImFetchResult:
        """TikTok's `im/fetch` answer for `room_id` (the `fetch` strategy); see `ImFetcher`."""
        return await self._fetcher.fetch(
            room_id,
            user_agent=user_agent,
            cursor=cursor,
            internal_ext=internal_ext,
            caller_cookies=cookie_header,
        )

    def socket_body(self, room_id: str, *, cursor: str = "", internal_ext: str = "") -> bytes:
        """The connect answer of the `socket` strategy, pointing at the direct push URL."""
        return socket_connect_body(
            room_id=room_id,
            push_url=self.settings.tiktok_push_url,
            cursor=cursor,
            internal_ext=internal_ext,
        )

    async def socket_connect(
        self,
        room_id: str,
        *,
        user_agent: str | None = None,
        cursor: str = "",
        internal_ext: str = "",
        cookie_header: str | None = None,
    ) -> ImFetchResult:
        """The `socket` strategy's whole answer: `socket_body`, and the cookies the client
        needs on the socket (the caller's own ttwid, else one TikTok gave the direct-socket
        profile, fetched the way a browser gets it). Nothing is signed. Raises
        `InvalidInput` (nothing sent) and the upstream `TikTokError`s of the ttwid visit."""
        body = self.socket_body(room_id, cursor=cursor, internal_ext=internal_ext)
        theirs = parse_cookie_header(cookie_header) if cookie_header else []
        agent = user_agent or GUESS_NAVIGATOR.user_agent
        started = time.perf_counter()
        ttwid = dict(theirs).get("ttwid")
        if not ttwid:
            ttwid = (await self.ttwids.get(SOCKET_PROFILE, agent)).ttwid
        return ImFetchResult(
            body=body,
            status=200,
            latency=time.perf_counter() - started,
            cookies=(("ttwid", ttwid),),
            room_id=room_id,
            user_agent=agent,
            profile=SOCKET_PROFILE,
        )

    async def room(self, unique_id: str) -> RoomInfo:
        return await self.rooms.lookup(unique_id)

    async def live_room_id(self, unique_id: str) -> str:
        return await self.rooms.live_room_id(unique_id)

    @property
    def breaker_state(self) -> BreakerState:
        return self._upstream.breaker.state

    def stats(self) -> TikTokStats:
        breaker = self._upstream.breaker
        return self._counters.snapshot(
            breaker_state=breaker.state.value,
            consecutive_failures=breaker.consecutive_failures,
            opened_total=breaker.times_opened,
        )
