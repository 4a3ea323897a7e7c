"""Push frames as TikTok's push server writes and reads them (spec sections 4.4 to 4.6).

A `msg` frame carries a gzip'd `ProtoMessageFetchResult` and says so in a `compress_type`
header: TikTokLive decides by the header alone and the Node clients by the gzip magic, so a
frame is either gzip with the header or plain without it, never a mix.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence

from tiktok.proto import BaseProtoMessage, ProtoMessageFetchResult, PushHeader, WebcastPushFrame

__all__ = ["GZIP_MAGIC", "decode_frame", "frame_payload", "hb_frame", "msg_frame", "plain_frame"]

GZIP_MAGIC = b"\x1f\x8b\x08"


def msg_frame(
    messages: Sequence[BaseProtoMessage],
    *,
    log_id: int,
    seq_id: int,
    cursor: str,
    internal_ext: str,
    now_ms: int,
    compress: bool,
) -> bytes:
    """A `msg` frame whose inner result asks for an ack of `log_id`."""
    result = ProtoMessageFetchResult(
        messages=list(messages),
        cursor=cursor,
        internal_ext=internal_ext,
        now=now_ms,
        fetch_interval=1000,
        need_ack=True,
        # False on the socket: TikTokLive would re-enter the room on a true here (spec 4.6).
        is_first=False,
    )
    payload = result.SerializeToString()
    frame = WebcastPushFrame(
        seq_id=seq_id, log_id=log_id, payload_encoding="pb", payload_type="msg"
    )
    if compress:
        # mtime=0 keeps equal payloads byte-equal, which makes captured frames comparable.
        frame.payload = gzip.compress(payload, compresslevel=5, mtime=0)
        frame.headers.append(PushHeader(key="compress_type", value="gzip"))
    else:
        frame.payload = payload
    return frame.SerializeToString()


def plain_frame(
    payload_type: str, payload: bytes = b"", *, log_id: int = 0, seq_id: int = 0
) -> bytes:
    """A control frame (`hb`, `im_enter_room_resp`, ...) with a plain protobuf payload."""
    frame = WebcastPushFrame(
        seq_id=seq_id,
        log_id=log_id,
        payload_encoding="pb",
        payload_type=payload_type,
        payload=payload,
    )
    return frame.SerializeToString()


def hb_frame(payload: bytes = b"") -> bytes:
    return plain_frame("hb", payload)


def decode_frame(data: bytes) -> WebcastPushFrame:
    """Parse one binary WebSocket message; `google.protobuf.message.DecodeError` if garbage."""
    frame = WebcastPushFrame()
    frame.ParseFromString(data)
    return frame


def frame_payload(frame: WebcastPushFrame) -> bytes:
    """The frame's payload, un-gzipped when its header says gzip."""
    gzipped = any(h.key == "compress_type" and h.value == "gzip" for h in frame.headers)
    return gzip.decompress(frame.payload) if gzipped else frame.payload
