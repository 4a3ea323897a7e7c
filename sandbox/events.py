"""The LIVE events the sandbox can push, and how each becomes a `BaseProtoMessage`.

Events are small frozen dataclasses a test or a script names in plain words (`Chat("hi")`,
`Gift(name="Rose")`); `to_message` turns one into the protobuf message the clients decode,
with the `method` name that selects their decoder (spec section 4.7). `event_from_json` reads
the same events from a script file, so the JSON keys are the dataclass fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from tiktok.proto import (
    BaseProtoMessage,
    CommonMessageData,
    ControlAction,
    MemberMessageAction,
    Text,
    WebcastChatMessage,
    WebcastControlMessage,
    WebcastGiftMessage,
    WebcastLikeMessage,
    WebcastMemberMessage,
    WebcastRoomUserSeqMessage,
    WebcastSocialMessage,
)
from tiktok.proto import Gift as GiftProto
from tiktok.proto import User as UserProto

__all__ = [
    "EVENT_TYPES",
    "Chat",
    "Event",
    "Gift",
    "Like",
    "LiveEnd",
    "Member",
    "Social",
    "Viewer",
    "ViewerCount",
    "event_from_json",
    "to_message",
]


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who did it: what the clients show as `user.nickname` and `user.display_id`."""

    unique_id: str = "tester"
    nickname: str = "Tester"
    user_id: int = 111
    sec_uid: str = "MS4wLjABAAAAsandbox"

    def proto(self) -> UserProto:
        return UserProto(
            id=self.user_id,
            nickname=self.nickname,
            display_id=self.unique_id,
            sec_uid=self.sec_uid,
        )


@dataclass(frozen=True, slots=True)
class Chat:
    kind: ClassVar[str] = "chat"
    text: str = "hello"
    user: Viewer = field(default_factory=Viewer)


@dataclass(frozen=True, slots=True)
class Gift:
    kind: ClassVar[str] = "gift"
    # TikTok's Rose: id 5655, one diamond, streakable (type 1).
    gift_id: int = 5655
    name: str = "Rose"
    diamonds: int = 1
    repeat_count: int = 1
    # A streakable gift is final only with repeat_end 1; clients fire on the last one.
    repeat_end: bool = True
    streakable: bool = True
    user: Viewer = field(default_factory=Viewer)


@dataclass(frozen=True, slots=True)
class Like:
    kind: ClassVar[str] = "like"
    count: int = 1
    total: int = 1
    user: Viewer = field(default_factory=Viewer)


@dataclass(frozen=True, slots=True)
class Member:
    """A viewer joins the room."""

    kind: ClassVar[str] = "member"
    user: Viewer = field(default_factory=Viewer)
    member_count: int = 1


@dataclass(frozen=True, slots=True)
class Social:
    """A follow or a share: the display-text key is what the clients sort them by."""

    kind: ClassVar[str] = "social"
    action: str = "follow"
    user: Viewer = field(default_factory=Viewer)

    def __post_init__(self) -> None:
        if self.action not in ("follow", "share"):
            raise ValueError(f"social action must be follow or share, got {self.action!r}")


@dataclass(frozen=True, slots=True)
class ViewerCount:
    kind: ClassVar[str] = "viewer_count"
    viewers: int = 1


@dataclass(frozen=True, slots=True)
class LiveEnd:
    """The host ends the LIVE: clients emit their live-end event and disconnect."""

    kind: ClassVar[str] = "live_end"


Event = Chat | Gift | Like | Member | Social | ViewerCount | LiveEnd
EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls for cls in (Chat, Gift, Like, Member, Social, ViewerCount, LiveEnd)
}


def _common(
    method: str, room_id: int, msg_id: int, now_ms: int, key: str = ""
) -> CommonMessageData:
    common = CommonMessageData(method=method, msg_id=msg_id, room_id=room_id, create_time=now_ms)
    if key:
        common.display_text.CopyFrom(Text(key=key, default_pattern="{0:user} " + key))
    return common


def to_message(event: Event, *, room_id: int, msg_id: int, now_ms: int) -> BaseProtoMessage:
    """The `BaseProtoMessage` (method + encoded payload) that carries this event."""
    payload: Any
    match event:
        case Chat():
            method = "WebcastChatMessage"
            payload = WebcastChatMessage(
                common=_common(method, room_id, msg_id, now_ms),
                user=event.user.proto(),
                content=event.text,
            )
        case Gift():
            method = "WebcastGiftMessage"
            payload = WebcastGiftMessage(
                common=_common(method, room_id, msg_id, now_ms),
                gift_id=event.gift_id,
                repeat_count=event.repeat_count,
                combo_count=event.repeat_count,
                repeat_end=1 if event.repeat_end else 0,
                user=event.user.proto(),
                gift=GiftProto(
                    id=event.gift_id,
                    name=event.name,
                    diamond_count=event.diamonds,
                    type=1 if event.streakable else 0,
                    combo=event.streakable,
                    describe=f"sent {event.name}",
                ),
            )
        case Like():
            method = "WebcastLikeMessage"
            payload = WebcastLikeMessage(
                common=_common(method, room_id, msg_id, now_ms, "pm_mt_msg_viewer_like"),
                count=event.count,
                total=event.total,
                user=event.user.proto(),
            )
        case Member():
            method = "WebcastMemberMessage"
            payload = WebcastMemberMessage(
                common=_common(method, room_id, msg_id, now_ms, "live_room_enter_toast"),
                user=event.user.proto(),
                member_count=event.member_count,
                action=MemberMessageAction.MEMBER_MESSAGE_ACTION_JOINED,
            )
        case Social():
            method = "WebcastSocialMessage"
            # TikTok's own keys; both clients look for "follow"/"share" inside them.
            key = (
                "pm_main_follow_message_viewer_2"
                if event.action == "follow"
                else ("pm_mt_guidance_share")
            )
            payload = WebcastSocialMessage(
                common=_common(method, room_id, msg_id, now_ms, key),
                user=event.user.proto(),
                action=1 if event.action == "follow" else 3,
                follow_count=1 if event.action == "follow" else 0,
                share_count=1 if event.action == "share" else 0,
            )
        case ViewerCount():
            method = "WebcastRoomUserSeqMessage"
            payload = WebcastRoomUserSeqMessage(
                common=_common(method, room_id, msg_id, now_ms),
                total=event.viewers,
                total_user=event.viewers,
            )
        case LiveEnd():
            method = "WebcastControlMessage"
            payload = WebcastControlMessage(
                common=_common(method, room_id, msg_id, now_ms),
                action=ControlAction.CONTROL_ACTION_STREAM_ENDED,
                tips="The LIVE has ended",
            )
    return BaseProtoMessage(method=method, payload=payload.SerializeToString(), msg_id=msg_id)


def event_from_json(data: Mapping[str, Any]) -> Event:
    """An event from `{"type": "chat", "text": ..., "user": {...}}`; ValueError when wrong."""
    kind = data.get("type")
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"event type must be one of {sorted(EVENT_TYPES)}, got {kind!r}")
    allowed = {item.name for item in fields(cls)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("type", "after"):
            continue
        if key not in allowed:
            raise ValueError(f"{kind} event has no field {key!r} (fields: {sorted(allowed)})")
        if key == "user":
            if not isinstance(value, Mapping):
                raise ValueError(f"{kind} event: user must be an object")
            try:
                value = Viewer(**value)
            except TypeError as error:
                raise ValueError(f"{kind} event: bad user: {error}") from None
        values[key] = value
    try:
        return cls(**values)
    except TypeError as error:
        raise ValueError(f"bad {kind} event: {error}") from None
