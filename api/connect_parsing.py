"""The connect and room-id routes' input: which room, for which browser, with whose cookies.

Declared once as `FieldSpec` tables, as the sign routes' fields are (`api.parsing`), so the
parser and the OpenAPI document cannot drift. Everything is checked here, before anything
goes upstream: a room id that is not an int64's digits, a handle holding `/`, `..`, `%` or a
control character, an oversized User-Agent or an unknown `platform` is a 400 naming the
field. Unknown query parameters are ignored: older TikTokLive and TikTokLiveJava send
dozens of `im/fetch`-style ones (spec section 2.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from multidict import MultiMapping

from signer.urls import bad_text
from tiktok import InvalidInput, clean_handle, clean_room_id
from tiktok.validation import MAX_HANDLE_LENGTH, MAX_ROOM_ID, MAX_ROOM_ID_LENGTH

from .errors import ApiError
from .parsing import MAX_INFO_LENGTH, MAX_USER_AGENT_LENGTH, FieldSpec

__all__ = [
    "CONNECT_QUERY",
    "COOKIE_HEADER",
    "MAX_CURSOR_LENGTH",
    "ROOM_ID_FIELD",
    "UNIQUE_ID_FIELD",
    "ConnectQuery",
    "connect_query",
    "room_id_of",
    "unique_id_of",
]

COOKIE_HEADER = "x-cookie-header"
# TikTok's cursors and internal_ext are a few hundred characters at most.
MAX_CURSOR_LENGTH = 2048
MAX_COOKIE_HEADER_LENGTH = 8192
PLATFORMS = ("web",)
_NO_CONTROLS = r"^[^\x00-\x1f\x7f]*$"


def _up_to(largest: int) -> str:
    """A regular expression for the decimal numbers 1 to `largest`, without leading zeros:
    what `clean_room_id` accepts, written out for the OpenAPI document."""
    digits = str(largest)
    options = [f"[1-9][0-9]{{0,{len(digits) - 2}}}"]  # every shorter number
    for index, digit in enumerate(digits):
        low = 1 if index == 0 else 0
        if int(digit) > low:
            rest = len(digits) - index - 1
            options.append(f"{digits[:index]}[{low}-{int(digit) - 1}][0-9]{{{rest}}}")
    options.append(digits)
    return "^(?:" + "|".join(options) + ")$"


ROOM_ID_FIELD = FieldSpec(
    "room_id",
    "The LIVE room id: a positive int64 in decimal, no leading zero (kept as text: it "
    "exceeds 2^53).",
    pattern=_up_to(MAX_ROOM_ID),
    max_length=MAX_ROOM_ID_LENGTH,
    min_length=1,
)
UNIQUE_ID_FIELD = FieldSpec(
    "unique_id",
    "The streamer's handle, with or without `@`: letters, digits, `_` and `.`, no `..`.",
    pattern=f"^@?(?!.*\\.\\.)[A-Za-z0-9_.]{{1,{MAX_HANDLE_LENGTH}}}$",
    max_length=MAX_HANDLE_LENGTH + 1,
    min_length=1,
)

CONNECT_QUERY: tuple[FieldSpec, ...] = (
    ROOM_ID_FIELD,
    UNIQUE_ID_FIELD,
    FieldSpec(
        "cursor",
        "Where to resume; empty on a fresh connect.",
        pattern=_NO_CONTROLS,
        max_length=MAX_CURSOR_LENGTH,
    ),
    FieldSpec(
        "internal_ext",
        "TikTok's resume token, with `cursor`; empty on a fresh connect.",
        pattern=_NO_CONTROLS,
        max_length=MAX_CURSOR_LENGTH,
    ),
    FieldSpec(
        "user_agent",
        "The browser User-Agent the client will use on the WebSocket; the signature is made "
        "for it.",
        pattern=_NO_CONTROLS,
        max_length=MAX_USER_AGENT_LENGTH,
    ),
    FieldSpec(
        "platform",
        "Only `web`: a mobile connect needs a logged-in session this server does not hold.",
        enum=PLATFORMS,
        default="web",
    ),
    FieldSpec(
        "client",
        "Client name, e.g. ttlive-python; informational.",
        pattern=_NO_CONTROLS,
        max_length=MAX_INFO_LENGTH,
    ),
    FieldSpec("client_enter", "`true` from every client; informational.", enum=("true", "false")),
)
_SPECS = {spec.name: spec for spec in CONNECT_QUERY}
# Sent by some clients and accepted, but not used (spec section 2.2): text checks only.
_PASSED_OVER = ("session_id", "tt_target_idc", "country")


@dataclass(frozen=True, slots=True)
class ConnectQuery:
    """A checked connect request: the room (by id or by handle) and what to fetch it for."""

    room_id: str | None
    unique_id: str | None
    cursor: str
    internal_ext: str
    user_agent: str | None
    cookie_header: str | None  # the caller's own TikTok cookies: passed on, never kept

    def __repr__(self) -> str:  # the cookie header holds session ids
        return f"ConnectQuery(room_id={self.room_id!r}, unique_id={self.unique_id!r})"


def _invalid(message: str) -> ApiError:
    return ApiError(400, "VALIDATION_ERROR", message)


def _text(query: MultiMapping[str], name: str) -> str | None:
    values = query.getall(name, [])
    if not values:
        return None
    if len(values) > 1:
        raise _invalid(f"query parameter {name!r} is given {len(values)} times; give it once")
    value: str = values[0]
    problem = bad_text(value)
    if problem is not None:
        raise _invalid(f"query parameter {name!r} {problem}")
    spec = _SPECS.get(name)
    if spec is not None:
        if spec.max_length is not None and len(value) > spec.max_length:
            raise _invalid(f"query parameter {name!r} is longer than {spec.max_length} characters")
        if spec.enum and value not in spec.enum:
            allowed = ", ".join(spec.enum)
            raise _invalid(f"query parameter {name!r} must be one of: {allowed} (got {value!r})")
    return value


def room_id_of(value: str) -> str:
    """`value` as a room id; a 400 naming `room_id` when it is not one. Stricter than
    `clean_room_id` by what the document promises: no spaces, no leading zero."""
    if value != value.strip() or value.startswith("0"):
        raise _invalid("room_id must be a positive int64 in decimal, without spaces or a leading 0")
    try:
        return clean_room_id(value)
    except InvalidInput as error:
        raise _invalid(str(error)) from None


def unique_id_of(value: str, name: str = "unique_id") -> str:
    """`value` as a handle (no `@`, lower case); a 400 naming the field when it is not one."""
    if value != value.strip():
        raise _invalid(f"{name} must not start or end with spaces")
    try:
        return clean_handle(value)
    except InvalidInput as error:
        raise _invalid(f"{name} {error.reason}") from None


def connect_query(
    query: MultiMapping[str], headers: Mapping[str, str], *, path_room_id: str | None = None
) -> ConnectQuery:
    """The connect request of `query` (and the room id of the path, for
    `/webcast/rooms/{room_id}/connect`); raises `ApiError` 400 naming what is wrong."""
    for name in _PASSED_OVER:
        _text(query, name)
    for name in ("client", "client_enter", "platform"):
        _text(query, name)
    room_text = path_room_id if path_room_id is not None else _text(query, "room_id")
    handle_text = _text(query, "unique_id")
    room_id = room_id_of(room_text) if room_text else None
    unique_id = unique_id_of(handle_text) if handle_text and room_id is None else None
    if room_id is None and unique_id is None:
        raise _invalid(
            "give the room: query `room_id` (digits) or `unique_id` (the streamer's handle)"
        )
    cookie_header = headers.get(COOKIE_HEADER)
    if cookie_header is not None:
        problem = bad_text(cookie_header)
        if problem is not None:  # never quote it: it holds session ids
            raise _invalid(f"header {COOKIE_HEADER!r} {problem}")
        if len(cookie_header) > MAX_COOKIE_HEADER_LENGTH:
            raise _invalid(
                f"header {COOKIE_HEADER!r} is longer than {MAX_COOKIE_HEADER_LENGTH} characters"
            )
        cookie_header = cookie_header.strip() or None
    return ConnectQuery(
        room_id=room_id,
        unique_id=unique_id,
        cursor=_text(query, "cursor") or "",
        internal_ext=_text(query, "internal_ext") or "",
        user_agent=(_text(query, "user_agent") or "").strip() or None,
        cookie_header=cookie_header,
    )
