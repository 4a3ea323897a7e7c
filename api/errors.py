"""`ApiError`: what the API answers when it does not sign, and its two body shapes.

Status codes for the signer's errors:

- `VALIDATION_ERROR` -> 400: the caller sent something we cannot sign; retrying is useless.
- `SERVICE_UNAVAILABLE` -> 503 with `Retry-After: 1`: deadline passed or engine down; the
  same request may succeed a moment later, and clients move to their next host on any
  non-200 anyway.
- `SIGNATURE_GENERATION_ERROR` -> 500: our own engine produced a token that failed its
  self-check. 502 would blame an upstream server, but no upstream is involved: the failing
  component is this service, which is exactly what 500 means.

And for the accounts' refusals (`accounts.errors`):

- `InvalidKey` -> 401 `AUTHENTICATION_ERROR`;
- `RateLimited` -> 429 `RATE_LIMIT_ERROR` with the limit's label, `Retry-After` and the
  rate-limit headers of the refusing window;
- `AccountsUnavailable` -> 503 `SERVICE_UNAVAILABLE` with its `Retry-After`.

And for TikTok's failures on the connect routes (`tiktok.errors`), each message saying it
was TikTok:

- `TikTokUnavailable` (the breaker is open) -> 503 `UPSTREAM_ERROR` with `Retry-After`;
- `TikTokTimeout` -> 504 `UPSTREAM_ERROR`;
- `TikTokUnreachable`, `TikTokRefused`, `TikTokBadAnswer`, `LookupFailed` -> 502
  `UPSTREAM_ERROR`;
- `UserNotFound`, `UserOffline` -> 404 `NOT_FOUND`;
- `InvalidInput` -> 400 `VALIDATION_ERROR`, nothing having been sent to TikTok.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Literal

from accounts.errors import AccountsUnavailable, InvalidKey, RateLimited, Refused
from accounts.ratelimit import RateDecision, limit_message, refusing_window
from signer import SignError
from tiktok import (
    InvalidInput,
    LookupFailed,
    TikTokError,
    TikTokTimeout,
    TikTokUnavailable,
    UserNotFound,
    UserOffline,
)

from .ratelimit_headers import rate_limit_headers

__all__ = [
    "ApiError",
    "ErrorType",
    "api_error_from_refusal",
    "api_error_from_sign_error",
    "api_error_from_tiktok",
    "eulerstream_error_body",
    "rate_limit_error",
    "structured_error_body",
]

ErrorType = Literal[
    "VALIDATION_ERROR",
    "AUTHENTICATION_ERROR",
    "RATE_LIMIT_ERROR",
    "SIGNATURE_GENERATION_ERROR",
    "SERVICE_UNAVAILABLE",
    "UPSTREAM_ERROR",
    "NOT_FOUND",
    "INTERNAL_ERROR",
]

# Seconds a client should wait before retrying a request that met a busy or down engine.
UNAVAILABLE_RETRY_AFTER = 1


class ApiError(Exception):
    """An HTTP error answer: status, error type, message and optional rate-limit facts."""

    def __init__(
        self,
        status: int,
        type: ErrorType,
        message: str,
        *,
        retry_after: int | None = None,
        limit_label: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type: ErrorType = type
        self.message = message
        self.retry_after = retry_after
        self.limit_label = limit_label
        self.headers: dict[str, str] = {}  # sent with the answer (rate-limit state)
        # Added to the EulerStream body (the room-id routes' `routes_attempted`).
        self.fields: dict[str, object] = {}

    def __repr__(self) -> str:
        return f"ApiError({self.status}, {self.type!r}, {self.message!r})"


def api_error_from_sign_error(err: SignError) -> ApiError:
    """The HTTP answer for an error raised by the signing core (see the module docstring)."""
    if err.code == "VALIDATION_ERROR":
        return ApiError(400, "VALIDATION_ERROR", err.message)
    if err.code == "SERVICE_UNAVAILABLE":
        return ApiError(
            503, "SERVICE_UNAVAILABLE", err.message, retry_after=UNAVAILABLE_RETRY_AFTER
        )
    return ApiError(500, "SIGNATURE_GENERATION_ERROR", err.message)


def eulerstream_error_body(e: ApiError) -> dict[str, object]:
    """EulerStream's error shape: `{"code": <status>, "message": ...}`, plus `limit_label`."""
    body: dict[str, object] = {"code": e.status, "message": e.message}
    if e.limit_label is not None:
        body["limit_label"] = e.limit_label
    body.update(e.fields)
    return body


def structured_error_body(e: ApiError, now: datetime | None = None) -> dict[str, object]:
    """The `{"status": "error", "error": {...}}` shape of tiktok-signature and our own route."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    error: dict[str, object] = {
        "type": e.type,
        "message": e.message,
        "code": e.status,
        "timestamp": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    if e.limit_label is not None:
        error["limit_label"] = e.limit_label
    if e.retry_after is not None:
        error["retry_after"] = e.retry_after
    return {"status": "error", "error": error}


def rate_limit_error(decision: RateDecision) -> ApiError:
    """A refusal by a rate limit as an `ApiError`, its headers included."""
    window = refusing_window(decision)
    error = ApiError(
        429,
        "RATE_LIMIT_ERROR",
        limit_message(decision),
        retry_after=decision.retry_after,
        limit_label=window.label,
    )
    error.headers.update(rate_limit_headers(decision))
    return error


def api_error_from_refusal(refused: Refused) -> ApiError:
    """The HTTP answer for a request admission refused (see the module docstring)."""
    if isinstance(refused, RateLimited):
        return rate_limit_error(refused.decision)
    if isinstance(refused, InvalidKey):
        return ApiError(401, "AUTHENTICATION_ERROR", str(refused))
    retry = refused.retry_after if isinstance(refused, AccountsUnavailable) else None
    return ApiError(503, "SERVICE_UNAVAILABLE", str(refused), retry_after=retry)


def api_error_from_tiktok(err: TikTokError | InvalidInput) -> ApiError:
    """The HTTP answer for a connect or room look-up TikTok did not serve (module docstring)."""
    if isinstance(err, InvalidInput):
        return ApiError(400, "VALIDATION_ERROR", str(err))
    if isinstance(err, UserNotFound | UserOffline):
        error = ApiError(404, "NOT_FOUND", err.message)
    elif isinstance(err, TikTokUnavailable):
        error = ApiError(
            503, "UPSTREAM_ERROR", err.message, retry_after=max(1, math.ceil(err.retry_after))
        )
    elif isinstance(err, TikTokTimeout):
        error = ApiError(504, "UPSTREAM_ERROR", err.message)
    else:
        error = ApiError(502, "UPSTREAM_ERROR", err.message)
    if isinstance(err, LookupFailed):
        error.fields["routes_attempted"] = list(err.routes_attempted)
    return error
