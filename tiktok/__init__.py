"""The outbound TikTok web client: hosts, cookies, proxies, retries, breaker, room look-up
and `im/fetch`.

It knows TikTok's request shapes and nothing of our HTTP server or queue: signatures come
through the `Sign` callable it is given, settings as a `TikTokSettings` the service builds.

The client's own modules are imported on first use (see `_LAZY`).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .breaker import BreakerState
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
from .proxies import UpstreamProxy
from .settings import TikTokSettings
from .stats import TikTokStats
from .validation import clean_handle, clean_room_id

if TYPE_CHECKING:
    from .client import TikTokClient
    from .fetch import ImFetchResult, Sign
    from .rooms import RoomInfo

# Loaded on first use: the client and what it brings (signer, Redis, protobuf) are for the
# API process, while every process reads `tiktok.settings`, which runs this file first.
_LAZY = {
    "TikTokClient": ".client",
    "ImFetchResult": ".fetch",
    "Sign": ".fetch",
    "RoomInfo": ".rooms",
}

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value
