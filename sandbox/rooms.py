"""The accounts the sandbox knows: who is live, in which room, and who is not.

A `Room` is mutable on purpose: a live end sent through the push server ends the LIVE, so the
next room lookup says offline, as TikTok would; tests turn it back on with `Sandbox.set_live`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "DEFAULT_ROOM_ID",
    "DEFAULT_UNIQUE_ID",
    "OFFLINE_ROOM_ID",
    "OFFLINE_UNIQUE_ID",
    "Room",
    "RoomBook",
    "default_rooms",
]

DEFAULT_UNIQUE_ID = "sandbox"
# A fixed id above 2**53 so that any client or route that turns room ids into floats breaks
# here rather than against TikTok. It still fits the int64 the protobuf fields carry.
DEFAULT_ROOM_ID = "7390000000000000001"
OFFLINE_UNIQUE_ID = "sandbox_offline"
OFFLINE_ROOM_ID = "7390000000000000002"

# TikTok's own codes for a live and an ended room (`LiveRoom.status`, `room/info` `status`).
STATUS_LIVE = 2
STATUS_OFFLINE = 4


@dataclass(slots=True)
class Room:
    """One account and its LIVE room."""

    unique_id: str
    room_id: str
    live: bool = True
    nickname: str = ""
    user_id: int = 0
    title: str = "Sandbox LIVE"
    viewers: int = 0

    def __post_init__(self) -> None:
        if not self.room_id.isdigit() or int(self.room_id) >= 2**63:
            raise ValueError(f"room id must be digits that fit an int64, got {self.room_id!r}")
        self.unique_id = self.unique_id.lstrip("@").lower()
        self.nickname = self.nickname or self.unique_id.capitalize()
        # A stable user id derived from the room id, so JSON answers need no extra config.
        self.user_id = self.user_id or int(self.room_id) // 1000

    @property
    def status(self) -> int:
        return STATUS_LIVE if self.live else STATUS_OFFLINE


def default_rooms() -> list[Room]:
    """`@sandbox` live and `@sandbox_offline` not live."""
    return [
        Room(DEFAULT_UNIQUE_ID, DEFAULT_ROOM_ID, live=True, nickname="Sandbox", viewers=12),
        Room(OFFLINE_UNIQUE_ID, OFFLINE_ROOM_ID, live=False, nickname="Sandbox Offline"),
    ]


class RoomBook:
    """Rooms by handle and by room id; anything else is an unknown user."""

    def __init__(self, rooms: Iterable[Room]) -> None:
        self._by_handle: dict[str, Room] = {}
        self._by_id: dict[str, Room] = {}
        for room in rooms:
            if room.unique_id in self._by_handle or room.room_id in self._by_id:
                raise ValueError(f"duplicate room {room.unique_id!r} / {room.room_id}")
            self._by_handle[room.unique_id] = room
            self._by_id[room.room_id] = room

    def by_handle(self, unique_id: str) -> Room | None:
        return self._by_handle.get(unique_id.lstrip("@").lower())

    def by_id(self, room_id: str | int) -> Room | None:
        return self._by_id.get(str(room_id))

    def resolve(self, room: Room | str | int) -> Room:
        """A room given as itself, its handle (`@` optional) or its id; KeyError if unknown."""
        if isinstance(room, Room):
            return room
        found = self.by_id(room) if str(room).isdigit() else self.by_handle(str(room))
        if found is None:
            raise KeyError(f"no sandbox room {room!r}")
        return found

    def all(self) -> list[Room]:
        return list(self._by_handle.values())
