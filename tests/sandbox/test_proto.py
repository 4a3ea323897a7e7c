"""tiktok/proto: the committed modules match the .proto, and the bytes match the real decoders."""

from __future__ import annotations

import importlib
from pathlib import Path

from TikTokLiveProto.v3.webcast.shared.message import (
    ProtoMessageFetchResult as RealFetchResult,
)

from tiktok.proto import BaseProtoMessage, ProtoMessageFetchResult
from tiktok.proto.generate import GENERATED, PROTO_DIR, generate

# TikTokLive (untyped, so loaded by name) finishes TikTokLiveProto's pydantic models when
# imported; its events are these same classes, so decoding with them is decoding as it does.
importlib.import_module("TikTokLive")


def test_committed_code_matches_the_proto(tmp_path: Path) -> None:
    written = generate(tmp_path)
    assert [path.name for path in written] == list(GENERATED)
    for path in written:
        committed = PROTO_DIR / path.name
        assert path.read_bytes() == committed.read_bytes(), (
            f"{committed.name} is stale: run `python -m tiktok.proto.generate`"
        )


def test_fetch_result_field_numbers_agree_with_tiktoklive() -> None:
    ours = ProtoMessageFetchResult(
        messages=[BaseProtoMessage(method="WebcastChatMessage", payload=b"\x1a\x02hi", msg_id=9)],
        cursor="c1",
        fetch_interval=1000,
        now=1700000000000,
        internal_ext="ext",
        fetch_type=1,
        route_params={"wrss": "w", "imprp": "i"},
        heartbeat_duration=10000,
        need_ack=True,
        push_server="ws://127.0.0.1:1/p/",
        is_first=True,
        history_comment_cursor="h",
        history_no_more=True,
    )
    real = RealFetchResult().parse(ours.SerializeToString())
    assert real.messages[0].method == "WebcastChatMessage"
    assert real.messages[0].payload == b"\x1a\x02hi"
    assert real.messages[0].msg_id == 9
    assert (real.cursor, real.fetch_interval, real.now, real.internal_ext) == (
        "c1",
        1000,
        1700000000000,
        "ext",
    )
    assert real.fetch_type == 1
    assert real.route_params == {"wrss": "w", "imprp": "i"}
    assert real.heartbeat_duration == 10000
    assert real.need_ack
    assert real.push_server == "ws://127.0.0.1:1/p/"
    assert real.is_first
    assert real.history_comment_cursor == "h"
    assert real.history_no_more
    # And back: what TikTokLive writes, we read (the wire keys of spec section 3).
    again = ProtoMessageFetchResult()
    again.ParseFromString(bytes(real))
    assert again == ours
