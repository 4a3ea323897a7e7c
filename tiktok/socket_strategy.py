"""The `socket` connect strategy: the connect answer built here instead of by im/fetch.

TikTok has been reported (spec section 7) to answer `im/fetch` with an empty body while its
web player opens the push socket directly. For that case the connect route answers with a
`ProtoMessageFetchResult` of its own that sends every client straight to the push server:
- `push_server`: the direct push URL (`SIGNER_TIKTOK_PUSH_URL`), which has no query, since
  every client appends `?` and its own parameters;
- `cursor` and `internal_ext` non-empty and URL-safe (clients put both in the socket query
  and the acks), and copied into `route_params`, which TikTokLive requires non-empty and
  which is its only way to put them in the socket query (spec section 9, question 1);
- `is_first` true: TikTokLive sends `im_enter_room` and starts heartbeats only then.
"""

from __future__ import annotations

import re
import time

from .proto import ProtoMessageFetchResult
from .validation import clean_room_id

__all__ = ["socket_connect_body"]

FETCH_INTERVAL_MS = 1000
HEARTBEAT_MS = 10_000
# TikTokLive joins route params into the socket query unencoded: only URL-safe text.
_URL_SAFE_RE = re.compile(r"[A-Za-z0-9_.~-]{0,512}")


def socket_connect_body(
    *, room_id: str, push_url: str, cursor: str = "", internal_ext: str = ""
) -> bytes:
    """The serialised `ProtoMessageFetchResult` for the socket strategy; a caller's own
    `cursor` and `internal_ext` are kept when given (a reconnect) and URL-safe, else made
    up: ours always are, and anything else would break the socket query of a client that
    joins them unencoded (TikTokLive), so it cannot be a cursor this server gave out."""
    room_id = clean_room_id(room_id)
    if not _URL_SAFE_RE.fullmatch(cursor):
        cursor = ""
    if not _URL_SAFE_RE.fullmatch(internal_ext):
        internal_ext = ""
    now_ms = int(time.time() * 1000)
    cursor = cursor or f"t-{now_ms}_r-1_d-1_u-1_h-1"
    internal_ext = (
        internal_ext or f"internal_src-dim_wss_push_room_id-{room_id}_fetch_time-{now_ms}"
    )
    result = ProtoMessageFetchResult(
        cursor=cursor,
        fetch_interval=FETCH_INTERVAL_MS,
        now=now_ms,
        internal_ext=internal_ext,
        fetch_type=1,  # 1 = WebSocket in TikTok-Live-Connector 1.x's schema
        heartbeat_duration=HEARTBEAT_MS,
        need_ack=False,
        push_server=push_url,
        is_first=True,
    )
    result.route_params["cursor"] = cursor
    result.route_params["internal_ext"] = internal_ext
    return result.SerializeToString()
