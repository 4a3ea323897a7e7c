"""The outbound TikTok web client: hosts, cookies, proxies, retries, breaker, room look-up
and `im/fetch`.

It knows TikTok's request shapes and nothing of our HTTP server or queue: signatures come
through the `Sign` callable it is given, settings as a `TikTokSettings` the service builds.
"""

from .breaker import BreakerState
from .client import TikTokClient
from .errors import (
    EmptyAnswer,
    InvalidHandle,
    InvalidInput,
    InvalidRoomId,
    LookupFailed,
    TikTokBadAnswer,
    TikTokError,
    TikTokRefused,
    TikTokTimeout,
    TikTokUnavailable,
    TikTokUnreachable,
    UserNotFound,
    UserOffline,
)
from .fetch import ImFetchResult, Sign
from .proxies import UpstreamProxy
from .rooms import RoomInfo
from .settings import TikTokSettings
from .stats import TikTokStats
from .validation import clean_handle, clean_room_id

__all__ = [
    "BreakerState",
    "EmptyAnswer",
    "ImFetchResult",
    "InvalidHandle",
    "InvalidInput",
    "InvalidRoomId",
    "LookupFailed",
    "RoomInfo",
    "Sign",
    "TikTokBadAnswer",
    "TikTokClient",
    "TikTokError",
    "TikTokRefused",
    "TikTokSettings",
    "TikTokStats",
    "TikTokTimeout",
    "TikTokUnavailable",
    "TikTokUnreachable",
    "UpstreamProxy",
    "UserNotFound",
    "UserOffline",
    "clean_handle",
    "clean_room_id",
]
