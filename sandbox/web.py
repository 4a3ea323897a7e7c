"""The sandbox's HTTP routes: TikTok's web and webcast hosts as far as the spec describes them.

One server plays www.tiktok.com and webcast.tiktok.com (and the push host, `sandbox.push`);
the paths do not overlap. Answers follow spec sections 5 and 7 and 8.2: the live page with a
compact `SIGI_STATE`, `api-live/user/room`, `room/check_alive`, `room/info`, and `im/fetch`,
which refuses a missing or wrong signature with an empty 200 exactly as TikTok does. Every
route ignores query parameters it does not read, and hands a `ttwid` to a visitor without one.
"""

from __future__ import annotations

import asyncio
import html
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from sandbox.cookies import TTWID_MAX_AGE, parse_cookie_header
from sandbox.record import RecordedRequest
from sandbox.rooms import Room
from sandbox.signature import verify_signed_query
from sandbox.state import SandboxState
from tiktok.proto import ProtoMessageFetchResult

__all__ = [
    "KIND_KEY",
    "OUTCOME_KEY",
    "STATE_KEY",
    "add_route",
    "add_routes",
    "recording_middleware",
]

KIND_KEY = web.RequestKey("sandbox_kind", str)
OUTCOME_KEY = web.RequestKey("sandbox_outcome", str)
STATE_KEY = web.AppKey("sandbox_state", SandboxState)
# TikTok's code for an unknown handle on api-live/user/room (TikTokLive reads `message`).
USER_NOT_FOUND_CODE = 19881007
ROOM_NOT_FOUND_CODE = 30003

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# The record's `kind` for each handler (several paths share one handler).
KINDS_KEY = web.AppKey("sandbox_kinds", dict[Handler, str])


def _state(request: web.Request) -> SandboxState:
    return request.app[STATE_KEY]


def _raw_query(request: web.Request) -> str:
    # raw_path keeps the bytes as sent; yarl's query_string is already decoded.
    return request.raw_path.partition("?")[2]


def _now_ms() -> int:
    return int(time.time() * 1000)


@web.middleware
async def recording_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Apply the fault switches, then record the request with its status and outcome."""
    state = _state(request)
    kind = request.app[KINDS_KEY].get(request.match_info.handler, "unknown")
    request[KIND_KEY] = kind
    if kind == "push":
        # The push handler records its own handshake: its answer lasts as long as the socket.
        return await handler(request)
    if state.delay:
        await asyncio.sleep(state.delay)
    if state.fault_status is not None:
        request[OUTCOME_KEY] = "fault"
        response = web.Response(status=state.fault_status, text="sandbox fault")
        _record(request, response.status)
        return response
    try:
        answer = await handler(request)
    except web.HTTPException as error:
        # aiohttp's own 404/405 for paths the sandbox does not serve.
        _record(request, error.status)
        raise
    _record(request, answer.status)
    return answer


def _record(request: web.Request, status: int) -> None:
    _state(request).recorder.add(
        RecordedRequest(
            kind=request[KIND_KEY],
            method=request.method,
            path=request.path,
            raw_query=_raw_query(request),
            headers=tuple(request.headers.items()),
            status=status,
            outcome=request.get(OUTCOME_KEY, ""),
        )
    )


def _visit_cookies(request: web.Request, response: web.StreamResponse) -> None:
    """A ttwid for a visitor without a valid one, as TikTok sets it on any www visit."""
    state = _state(request)
    if not state.cookies.ttwid_valid(request.cookies.get("ttwid")):
        response.set_cookie(
            "ttwid", state.cookies.new_ttwid(), max_age=TTWID_MAX_AGE, path="/", httponly=True
        )


def _json(data: dict[str, Any]) -> web.Response:
    # Compact, as TikTok sends it (TTLC 1.x scans HTML with a regex that needs no spaces).
    return web.Response(
        text=json.dumps(data, separators=(",", ":")), content_type="application/json"
    )


def _user_json(room: Room) -> dict[str, Any]:
    return {
        "id": str(room.user_id),
        "uniqueId": room.unique_id,
        "nickname": room.nickname,
        "roomId": room.room_id,
        "secUid": f"MS4wLjABAAAA{room.user_id}",
        "status": room.status,
    }


def _live_room_json(room: Room) -> dict[str, Any]:
    return {
        "status": room.status,
        "title": room.title,
        "liveRoomStats": {"userCount": room.viewers},
    }


async def home(request: web.Request) -> web.Response:
    """`/` and `/live`: a bare visit that yields ttwid, tt_chain_token and tt_csrf_token."""
    state = _state(request)
    response = web.Response(
        text="<!DOCTYPE html><html><head><title>TikTok sandbox</title></head><body></body></html>",
        content_type="text/html",
    )
    _visit_cookies(request, response)
    response.set_cookie("tt_chain_token", state.cookies.new_csrf_token(), path="/", httponly=True)
    response.set_cookie("tt_csrf_token", state.cookies.new_csrf_token(), path="/", httponly=True)
    return response


async def live_page(request: web.Request) -> web.Response:
    """`/@{unique_id}/live`: HTML with `SIGI_STATE`; no `LiveRoom` key for an unknown user."""
    state = _state(request)
    handle = request.match_info["unique_id"]
    room = state.rooms.by_handle(handle)
    sigi: dict[str, Any] = {"AppContext": {"appContext": {"language": "en"}}}
    if room is None:
        request[OUTCOME_KEY] = "no_user"
    else:
        request[OUTCOME_KEY] = "live" if room.live else "offline"
        sigi["LiveRoom"] = {
            "liveRoomUserInfo": {"user": _user_json(room), "liveRoom": _live_room_json(room)}
        }
    # `</` cannot occur inside the script: json.dumps leaves `/` alone, so escape `<` instead.
    state_json = json.dumps(sigi, separators=(",", ":")).replace("<", "\\u003c")
    body = (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(handle)} LIVE | TikTok</title></head><body>"
        f'<script id="SIGI_STATE" type="application/json">{state_json}</script>'
        "</body></html>"
    )
    response = web.Response(text=body, content_type="text/html")
    _visit_cookies(request, response)
    return response


async def api_live_room(request: web.Request) -> web.Response:
    """`/api-live/user/room/?uniqueId=`: JSON with `statusCode`, `message`, `data`."""
    state = _state(request)
    room = state.rooms.by_handle(request.query.get("uniqueId", ""))
    if room is None:
        request[OUTCOME_KEY] = "no_user"
        response = _json(
            {
                "data": {},
                "extra": {"now": _now_ms()},
                "message": "user_not_found",
                "statusCode": USER_NOT_FOUND_CODE,
            }
        )
    else:
        request[OUTCOME_KEY] = "live" if room.live else "offline"
        response = _json(
            {
                "data": {"user": _user_json(room), "liveRoom": _live_room_json(room)},
                "extra": {"now": _now_ms()},
                "message": "",
                "statusCode": 0,
            }
        )
    _visit_cookies(request, response)
    return response


async def check_alive(request: web.Request) -> web.Response:
    """`/webcast/room/check_alive/?room_ids=a,b`: one `{alive, room_id}` per id asked."""
    state = _state(request)
    items = []
    for room_id in filter(None, request.query.get("room_ids", "").split(",")):
        room = state.rooms.by_id(room_id) if room_id.isdigit() else None
        alive = bool(room and room.live)
        items.append(
            {
                "alive": alive,
                "room_id": int(room_id) if room_id.isdigit() else 0,
                "room_id_str": room_id,
            }
        )
    request[OUTCOME_KEY] = "ok"
    return _json({"data": items, "extra": {"now": _now_ms()}, "status_code": 0})


async def room_info(request: web.Request) -> web.Response:
    """`/webcast/room/info/?room_id=`: `data.status` 2 live, 4 ended."""
    state = _state(request)
    room_id = request.query.get("room_id", "")
    room = state.rooms.by_id(room_id) if room_id.isdigit() else None
    if room is None:
        request[OUTCOME_KEY] = "no_room"
        return _json(
            {
                "data": {"message": "room does not exist", "prompts": "This LIVE has ended"},
                "extra": {"now": _now_ms()},
                "status_code": ROOM_NOT_FOUND_CODE,
            }
        )
    request[OUTCOME_KEY] = "live" if room.live else "offline"
    return _json(
        {
            "data": {
                "id": int(room.room_id),
                "id_str": room.room_id,
                "status": room.status,
                "title": room.title,
                "user_count": room.viewers,
                "owner": {
                    "id_str": str(room.user_id),
                    "nickname": room.nickname,
                    "display_id": room.unique_id,
                },
                "stats": {"total_user": room.viewers},
            },
            "extra": {"now": _now_ms()},
            "status_code": 0,
        }
    )


def fetch_result(state: SandboxState, room: Room, *, now_ms: int) -> ProtoMessageFetchResult:
    """What a good im/fetch answers: where to open the socket and with which route params."""
    cursor = f"t-{now_ms}_r-1_d-1_u-1_h-1"
    internal_ext = (
        f"internal_src:dim|wss_push_room_id:{room.room_id}|wss_push_did:0|"
        f"first_req_ms:{now_ms}|fetch_time:{now_ms}|seq:1|wss_info:0-{now_ms}-0-0"
    )
    return ProtoMessageFetchResult(
        cursor=cursor,
        internal_ext=internal_ext,
        now=now_ms,
        fetch_interval=1000,
        fetch_type=1,
        # TikTok's route params hold only these two (spec section 3); the socket must bring
        # `wrss` back, which is how the push server knows the socket came through im/fetch.
        route_params={"wrss": state.issue_route_token(room.room_id), "imprp": "sandbox"},
        heartbeat_duration=10_000,
        push_server=state.push_url,
        is_first=True,
    )


async def im_fetch(request: web.Request) -> web.Response:
    """`/webcast/im/fetch/`: a signed request gets the protobuf; anything else an empty 200."""
    state = _state(request)
    response = web.Response(status=200, body=b"", content_type="application/protobuf")
    response.set_cookie("msToken", state.cookies.new_ms_token(), path="/", max_age=864_000)
    cookies = parse_cookie_header(request.headers.get("Cookie", ""))
    sent_ttwid = cookies.get("ttwid")
    if not state.cookies.ttwid_valid(sent_ttwid):
        _visit_cookies(request, response)
    if state.mode == "socket":
        request[OUTCOME_KEY] = "socket_mode"
        return response
    verdict = verify_signed_query(_raw_query(request), request.headers.get("User-Agent", ""))
    if verdict != "ok":
        request[OUTCOME_KEY] = verdict
        return response
    if sent_ttwid is not None and not state.cookies.ttwid_valid(sent_ttwid):
        # A ttwid we never issued (or revoked): refused like a bad signature, new one attached.
        request[OUTCOME_KEY] = "bad_ttwid"
        return response
    room_id = request.query.get("room_id", "")
    room = state.rooms.by_id(room_id) if room_id.isdigit() else None
    if room is None or not room.live:
        request[OUTCOME_KEY] = "no_room" if room is None else "offline"
        return response
    request[OUTCOME_KEY] = "ok"
    response.body = fetch_result(state, room, now_ms=_now_ms()).SerializeToString()
    return response


def add_route(app: web.Application, path: str, kind: str, handler: Handler) -> None:
    """Serve GET and HEAD (a bare HEAD also yields a ttwid, spec section 7) and record as `kind`."""
    app.router.add_get(path, handler)
    app[KINDS_KEY][handler] = kind


def add_routes(app: web.Application, state: SandboxState) -> None:
    app[STATE_KEY] = state
    app[KINDS_KEY] = {}
    for path in ("/", "/live"):
        add_route(app, path, "home", home)
    routes: list[tuple[str, str, Handler]] = [
        ("/@{unique_id}/live", "live_page", live_page),
        ("/api-live/user/room/", "api_live_room", api_live_room),
        ("/webcast/room/check_alive/", "check_alive", check_alive),
        ("/webcast/room/info/", "room_info", room_info),
        ("/webcast/im/fetch/", "im_fetch", im_fetch),
    ]
    for path, kind, handler in routes:
        add_route(app, path, kind, handler)
        if path.endswith("/"):
            # Clients differ on the trailing slash; TikTok answers both.
            add_route(app, path.rstrip("/"), kind, handler)
