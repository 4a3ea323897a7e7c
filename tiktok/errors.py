"""Errors of the TikTok client: each one says it was TikTok, and how.

```
TikTokError                  TikTok (or the way to it) did not give what was asked
├── TikTokUnavailable        the breaker is open: failing fast; `retry_after` seconds
├── TikTokUnreachable        no connection to TikTok or the proxy, after the retries
├── TikTokTimeout            TikTok did not answer in time
├── TikTokRefused            TikTok answered with a refusal (`status`: 4xx, or 5xx after retries)
├── TikTokBadAnswer          TikTok answered 200 with something we cannot read
│   └── EmptyAnswer          ... with no body at all (a bad signature looks like this)
└── LookupFailed             a handle's room could not be found out
    ├── UserNotFound         TikTok says there is no such user
    └── UserOffline          the user exists but is not LIVE

InvalidInput (ValueError)    the caller's input, refused before anything went upstream
├── InvalidHandle
└── InvalidRoomId
```

The API maps `TikTokUnavailable` to 503 with `Retry-After`, `TikTokTimeout` to 504, the other
upstream failures to 502, the lookup failures to 404 and `InvalidInput` to 400. Messages never
carry cookies, proxy credentials or the caller's cookie header.
"""

from __future__ import annotations

__all__ = [
    "EmptyAnswer",
    "InvalidHandle",
    "InvalidInput",
    "InvalidRoomId",
    "LookupFailed",
    "TikTokBadAnswer",
    "TikTokError",
    "TikTokRefused",
    "TikTokTimeout",
    "TikTokUnavailable",
    "TikTokUnreachable",
    "UserNotFound",
    "UserOffline",
]


class TikTokError(Exception):
    """TikTok, or the way to it, did not give what was asked; `endpoint` names the call."""

    code = "tiktok_error"

    def __init__(self, message: str, *, endpoint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.endpoint = endpoint


class TikTokUnavailable(TikTokError):
    """TikTok kept failing, so the breaker is open and answers at once for a while."""

    code = "tiktok_unavailable"

    def __init__(self, message: str, *, retry_after: float, endpoint: str = "") -> None:
        super().__init__(message, endpoint=endpoint)
        self.retry_after = retry_after


class TikTokUnreachable(TikTokError):
    code = "tiktok_unreachable"


class TikTokTimeout(TikTokError):
    code = "tiktok_timeout"


class TikTokRefused(TikTokError):
    """TikTok answered, but with a status that is not a success."""

    code = "tiktok_refused"

    def __init__(self, message: str, *, status: int, endpoint: str = "") -> None:
        super().__init__(message, endpoint=endpoint)
        self.status = status


class TikTokBadAnswer(TikTokError):
    """TikTok answered 200 with a body we cannot use."""

    code = "tiktok_bad_answer"

    def __init__(
        self, message: str, *, status: int = 200, latency: float = 0.0, endpoint: str = ""
    ) -> None:
        super().__init__(message, endpoint=endpoint)
        self.status = status
        self.latency = latency


class EmptyAnswer(TikTokBadAnswer):
    """TikTok answered with no body: what it does for a missing or bad signature."""

    code = "tiktok_empty_answer"


class LookupFailed(TikTokError):
    """A handle's room could not be found out; `routes_attempted` says where we looked."""

    code = "room_lookup_failed"

    def __init__(
        self, message: str, *, unique_id: str, routes_attempted: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message, endpoint="room_lookup")
        self.unique_id = unique_id
        self.routes_attempted = routes_attempted


class UserNotFound(LookupFailed):
    code = "user_not_found"


class UserOffline(LookupFailed):
    code = "user_offline"


class InvalidInput(ValueError):
    """The caller's input is unfit to send to TikTok; `field` names it."""

    code = "invalid_input"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}")
        self.field = field
        self.reason = reason


class InvalidHandle(InvalidInput):
    code = "invalid_unique_id"


class InvalidRoomId(InvalidInput):
    code = "invalid_room_id"
