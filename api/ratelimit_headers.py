"""The rate limiter's HTTP side: the headers every limited answer carries, the 429
bodies and the `GET /webcast/rate_limits` body. The limiter itself (`accounts.ratelimit`)
knows nothing of HTTP.
"""

from __future__ import annotations

from datetime import UTC, datetime

from accounts.ratelimit import (
    WHOSE,
    WINDOWS,
    RateDecision,
    limit_message,
    refusing_window,
    seconds_until,
)

__all__ = [
    "eulerstream_limit_body",
    "rate_limit_headers",
    "rate_limits_body",
]


def rate_limit_headers(decision: RateDecision) -> dict[str, str]:
    """Headers of an answer: for the refusing window on a 429, else for the tightest one.

    Every value is a whole number, in the units the clients parse (from their source):

    - `RateLimit-Limit`: the window's limit.
    - `RateLimit-Remaining`: requests left in the window. On a 429 it carries the seconds
      to wait instead: TikTokLive 6.6 reads this header as its `retry_after` ("try again
      in %s seconds"), and on a 429 the count left is 0 by definition anyway.
    - `RateLimit-Reset`: seconds until the window ends (delta, as the IETF RateLimit draft,
      the hosted EulerStream server, TikTokLive 5 and TikTokLiveJava have it; TikTokLive
      6.6 calls the value `reset_time` and documents it as a timestamp, but only int()s it).
    - `X-RateLimit-Reset`: unix time in seconds at which the window ends
      (TikTok-Live-Connector 2.x multiplies it by 1000 into a JavaScript date).
    - `Retry-After` (429 only): seconds to wait, at least 1 (HTTP; the connector reads it
      in seconds and turns it into milliseconds).

    An unlimited caller gets no headers.
    """
    window = decision.refused_by or decision.tightest
    if window is None:
        return {}
    headers = {
        "RateLimit-Limit": str(window.limit),
        "RateLimit-Remaining": str(window.remaining),
        "RateLimit-Reset": str(seconds_until(window.reset_at, decision.now)),
        "X-RateLimit-Reset": str(window.reset_at),
    }
    if not decision.allowed:
        headers["RateLimit-Remaining"] = str(decision.retry_after)
        headers["Retry-After"] = str(decision.retry_after)
    return headers


def eulerstream_limit_body(decision: RateDecision) -> dict[str, object]:
    """The 429 body of the EulerStream routes: `{code, message, limit_label}`."""
    window = refusing_window(decision)
    return {"code": 429, "message": limit_message(decision), "limit_label": window.label}


def rate_limits_body(decision: RateDecision) -> dict[str, object]:
    """The body of `GET /webcast/rate_limits`, from a `peek`.

    `minute`, `hour` and `day` are always present as `{max, remaining, reset_at}`; a window
    without a limit (every window of an unlimited caller) has all three null. `reset_at` is
    an ISO 8601 UTC time, as the published EulerStream SDK types it (a string or null).
    `load_shedding` is required by that SDK's parser; we never drop requests at random (a
    full queue answers 503), so its chance is 0.
    """
    kind = decision.caller.kind
    if decision.caller.unlimited:
        message = "No rate limits apply to this caller."
    else:
        message = f"Rate limits {WHOSE[kind]}, in fixed UTC windows."
    body: dict[str, object] = {
        "code": 200,
        "message": message,
        "load_shedding": {"at": 0, "chance": 0},
    }
    for name in WINDOWS:
        state = decision.window(name)
        if state is None:
            body[name] = {"max": None, "remaining": None, "reset_at": None}
        else:
            body[name] = {
                "max": state.limit,
                "remaining": state.remaining,
                "reset_at": _iso(state.reset_at),
            }
    return body


def _iso(unix_seconds: int) -> str:
    moment = datetime.fromtimestamp(unix_seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
