"""TikTok's webcast protobuf messages, as far as the connect path and the sandbox use them.

One definition: `webcast.proto` beside this file. `webcast_pb2.py` (and its stub) is generated
from it by `python -m tiktok.proto.generate` and committed; a test fails when they drift.

Why Google's `protobuf` runtime with generated code rather than betterproto2 classes by hand:
it is the reference implementation (upb in C, so parsing a 40 KB im/fetch answer costs
microseconds), it is maintained by the protobuf project itself, and generating from a `.proto`
keeps the field numbers in one file a reader can compare with the spec, instead of a second
hand-written copy. mypy-protobuf's stub gives mypy strict the field types. The real clients' own
decoders (betterproto2 in TikTokLive, protobufjs in tiktok-live-connector) read the bytes these
messages write; tests/sandbox decode them with TikTokLive's classes to prove it.

Unknown fields survive a parse and re-serialise, so a real TikTok answer relayed through these
messages loses nothing.
"""

from __future__ import annotations

from tiktok.proto.webcast_pb2 import (
    BaseProtoMessage,
    CommonMessageData,
    ControlAction,
    Gift,
    HeartBeatMessage,
    MemberMessageAction,
    ProtoMessageFetchResult,
    PushHeader,
    Text,
    User,
    WebcastChatMessage,
    WebcastControlMessage,
    WebcastGiftMessage,
    WebcastImEnterRoomMessage,
    WebcastLikeMessage,
    WebcastMemberMessage,
    WebcastPushFrame,
    WebcastRoomUserSeqMessage,
    WebcastSocialMessage,
)

__all__ = [
    "BaseProtoMessage",
    "CommonMessageData",
    "ControlAction",
    "Gift",
    "HeartBeatMessage",
    "MemberMessageAction",
    "ProtoMessageFetchResult",
    "PushHeader",
    "Text",
    "User",
    "WebcastChatMessage",
    "WebcastControlMessage",
    "WebcastGiftMessage",
    "WebcastImEnterRoomMessage",
    "WebcastLikeMessage",
    "WebcastMemberMessage",
    "WebcastPushFrame",
    "WebcastRoomUserSeqMessage",
    "WebcastSocialMessage",
]
