"""Handles and room ids, checked before anything goes upstream.

A handle ends up in a URL path (`/@{handle}/live`) and a room id in a query, so both are
checked against what TikTok itself allows rather than escaped and hoped for: a `/`, `..`,
`%2F` or a control character in a handle is someone probing our requests, not a user.
"""

from __future__ import annotations

import re

from .errors import InvalidHandle, InvalidRoomId

__all__ = [
    "MAX_HANDLE_LENGTH",
    "MAX_ROOM_ID",
    "MAX_ROOM_ID_LENGTH",
    "clean_handle",
    "clean_room_id",
]

# TikTok allows 2-24 characters of letters, digits, `_` and `.`; a little slack for older
# accounts, still short enough that a handle can never bloat a URL.
MAX_HANDLE_LENGTH = 64
# Room ids are int64 in TikTok's protobuf: at most 19 digits.
MAX_ROOM_ID_LENGTH = 19
MAX_ROOM_ID = 2**63 - 1
_HANDLE_RE = re.compile(r"[A-Za-z0-9_.]+")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean_handle(value: str) -> str:
    """The handle as TikTok keys it (no `@`, lower case); raises `InvalidHandle`."""
    if not isinstance(value, str):
        raise InvalidHandle("unique_id", "must be text")
    handle = value.strip()
    handle = handle.removeprefix("@")
    if not handle:
        raise InvalidHandle("unique_id", "is empty; pass the TikTok handle, e.g. @sandbox")
    if _CONTROL_RE.search(handle):
        raise InvalidHandle("unique_id", "contains a control character")
    if len(handle) > MAX_HANDLE_LENGTH:
        raise InvalidHandle("unique_id", f"is longer than {MAX_HANDLE_LENGTH} characters")
    if "/" in handle or "\\" in handle or "%" in handle:
        raise InvalidHandle("unique_id", "must not contain '/', '\\' or '%'")
    if ".." in handle:
        raise InvalidHandle("unique_id", "must not contain '..'")
    if not _HANDLE_RE.fullmatch(handle):
        raise InvalidHandle(
            "unique_id", "may hold only letters, digits, '_' and '.', as TikTok handles do"
        )
    return handle.lower()


def clean_room_id(value: str) -> str:
    """The room id as decimal text (kept text: it exceeds 2**53); raises `InvalidRoomId`."""
    if not isinstance(value, str):
        raise InvalidRoomId("room_id", "must be text")
    room_id = value.strip()
    if not room_id:
        raise InvalidRoomId("room_id", "is empty")
    if len(room_id) > MAX_ROOM_ID_LENGTH:
        raise InvalidRoomId("room_id", f"is longer than {MAX_ROOM_ID_LENGTH} digits")
    # isdigit() accepts other scripts' digits (e.g. Arabic-Indic); TikTok's ids are ASCII.
    if not (room_id.isascii() and room_id.isdigit()):
        raise InvalidRoomId("room_id", "must be decimal digits")
    if int(room_id) > MAX_ROOM_ID or int(room_id) == 0:
        raise InvalidRoomId("room_id", "is not a room id (zero, or larger than an int64)")
    return room_id
