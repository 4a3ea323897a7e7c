"""The push socket: TikTok's webcast WebSocket as the clients use it (spec section 4).

It accepts any query under the push path, checks what TikTok is known to check (a known live
`room_id`, a `ttwid` cookie it issued, a User-Agent, and in fetch mode the `wrss` route param
an im/fetch answer handed out), and refuses the way TikTok does: `200` with `Handshake-Msg`
instead of `101`. It never sends WebSocket pings (TTLC never answers them, spec 4.3), answers
`hb` with `hb` and `im_enter_room` with `im_enter_room_resp`, records acks, and plays each
socket its script once the client has entered the room (or after `start_delay`, for TTLC 1.x
which never enters).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web
from google.protobuf.message import DecodeError

from sandbox.cookies import parse_cookie_header
from sandbox.events import Event, LiveEnd, to_message
from sandbox.frames import decode_frame, hb_frame, msg_frame, plain_frame
from sandbox.record import RecordedRequest
from sandbox.rooms import Room
from sandbox.script import Step
from sandbox.state import SandboxState
from sandbox.web import STATE_KEY, add_route
from tiktok.proto import HeartBeatMessage

__all__ = ["PUSH_PATH", "PushServer", "PushSession", "ReceivedFrame", "add_push_routes"]

log = logging.getLogger(__name__)

PUSH_PATH = "/webcast/im/ws_proxy/ws_reuse_supplement/"
# TikTokLive offers this subprotocol; aiohttp selects it only when offered, so TTLC (which
# offers none and fails if the server names one) gets none.
_PROTOCOLS = ("echo-protocol",)
# A client that has not closed this long after a live end is closed by the server.
_LIVE_END_GRACE = 2.0
_MAX_FRAME = 1 << 20


@dataclass(frozen=True, slots=True)
class ReceivedFrame:
    """One frame a client sent: its type, log id and (already decoded) protobuf payload."""

    payload_type: str
    log_id: int
    payload: bytes
    at: float = field(default_factory=time.time)


@dataclass(slots=True, eq=False)
class PushSession:
    """One open (or closed) client socket and everything it sent."""

    room: Room
    query: dict[str, str]
    headers: tuple[tuple[str, str], ...]
    compress: bool
    ws: web.WebSocketResponse
    frames: list[ReceivedFrame] = field(default_factory=list)
    sent_log_ids: list[int] = field(default_factory=list)
    undecodable: int = 0
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def of_type(self, payload_type: str) -> list[ReceivedFrame]:
        return [frame for frame in self.frames if frame.payload_type == payload_type]

    @property
    def heartbeats(self) -> list[HeartBeatMessage]:
        beats = []
        for frame in self.of_type("hb"):
            beat = HeartBeatMessage()
            with contextlib.suppress(DecodeError):
                beat.ParseFromString(frame.payload)
            beats.append(beat)
        return beats

    @property
    def acked_log_ids(self) -> list[int]:
        return [frame.log_id for frame in self.of_type("ack")]


class PushServer:
    """The push sockets of every room, and the hooks that push events to them."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.sessions: list[PushSession] = []
        self._opened = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- the handshake ----

    def _refusal(self, request: web.Request) -> str | None:
        """Why TikTok would refuse this handshake, or None."""
        state = self.state
        room_id = request.query.get("room_id", "")
        room = state.rooms.by_id(room_id) if room_id.isdigit() else None
        if room is None:
            return "room_id missing or unknown"
        if not room.live:
            return "room is not live"
        if not request.headers.get("User-Agent"):
            return "User-Agent missing"
        cookies = parse_cookie_header(request.headers.get("Cookie", ""))
        if not state.cookies.ttwid_valid(cookies.get("ttwid")):
            return "ttwid missing or invalid"
        if state.mode == "fetch" and request.query.get("wrss", "") not in state.route_tokens:
            return "route params missing: open the socket with an im/fetch answer"
        return None

    def _record(self, request: web.Request, status: int, outcome: str) -> None:
        self.state.recorder.add(
            RecordedRequest(
                kind="push",
                method=request.method,
                path=request.path,
                raw_query=request.raw_path.partition("?")[2],
                headers=tuple(request.headers.items()),
                status=status,
                outcome=outcome,
            )
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        reason = self._refusal(request)
        if reason is not None:
            self._record(request, 200, "refused")
            return web.Response(
                status=200, text="handshake refused", headers={"Handshake-Msg": reason}
            )
        ws = web.WebSocketResponse(
            protocols=_PROTOCOLS, heartbeat=None, autoping=True, max_msg_size=_MAX_FRAME
        )
        if not ws.can_prepare(request).ok:
            self._record(request, 400, "not_websocket")
            return web.Response(status=400, text="expected a WebSocket upgrade")
        await ws.prepare(request)
        self._record(request, 101, "ok")
        room = self.state.rooms.resolve(request.query["room_id"])
        # The raw query keeps repeated names; the last value wins as in the clients' own use.
        query = dict(parse_qsl(request.raw_path.partition("?")[2], keep_blank_values=True))
        session = PushSession(
            room=room,
            query=query,
            headers=tuple(request.headers.items()),
            compress=query.get("compress") == "gzip",
            ws=ws,
        )
        async with self._opened:
            self.sessions.append(session)
            self._opened.notify_all()
        player = asyncio.create_task(self._play(session))
        try:
            await self._read(session)
        finally:
            session.closed.set()
            player.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await player
        return ws

    async def _read(self, session: PushSession) -> None:
        async for message in session.ws:
            if message.type != WSMsgType.BINARY:
                continue
            try:
                frame = decode_frame(message.data)
            except DecodeError:
                session.undecodable += 1
                continue
            session.frames.append(ReceivedFrame(frame.payload_type, frame.log_id, frame.payload))
            if frame.payload_type == "hb":
                await session.ws.send_bytes(hb_frame(frame.payload))
            elif frame.payload_type == "im_enter_room":
                await session.ws.send_bytes(
                    plain_frame("im_enter_room_resp", log_id=self.state.next_id())
                )
                session.entered.set()

    # ---- what the server sends ----

    async def _play(self, session: PushSession) -> None:
        state = self.state
        if state.script is None and state.mix is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(session.entered.wait(), state.start_delay)
        if state.script is not None:
            while True:
                for step in state.script.steps:
                    if not await self._step(session, step):
                        return
                if not state.script.loop:
                    break
        if state.mix is not None:
            for step in state.mix.steps():
                if not await self._step(session, step):
                    return

    async def _step(self, session: PushSession, step: Step) -> bool:
        """Send one step's event to one socket; False once the socket or the LIVE is over."""
        await asyncio.sleep(step.after)
        if session.closed.is_set() or not session.room.live:
            return False
        await self._send_to([session], [step.event])
        return not isinstance(step.event, LiveEnd)

    async def _send_to(self, sessions: list[PushSession], events: list[Event]) -> int:
        state = self.state
        sent = 0
        for session in sessions:
            if session.closed.is_set() or session.ws.closed:
                continue
            now_ms = int(time.time() * 1000)
            room_id = int(session.room.room_id)
            messages = [
                to_message(event, room_id=room_id, msg_id=state.next_id(), now_ms=now_ms)
                for event in events
            ]
            log_id = state.next_id()
            data = msg_frame(
                messages,
                log_id=log_id,
                seq_id=state.next_id(),
                cursor=f"t-{now_ms}_r-1_d-1_u-1_h-1",
                internal_ext=f"internal_src:pushserver|fetch_time:{now_ms}|seq:{log_id}",
                now_ms=now_ms,
                compress=session.compress,
            )
            session.sent_log_ids.append(log_id)
            try:
                await session.ws.send_bytes(data)
            except ConnectionError:
                continue
            sent += 1
        if any(isinstance(event, LiveEnd) for event in events):
            for session in sessions:
                self._spawn(self._close_after_live_end(session))
        return sent

    async def _close_after_live_end(self, session: PushSession) -> None:
        session.room.live = False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(session.closed.wait(), _LIVE_END_GRACE)
        await session.ws.close(message=b"live ended")

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def open_sessions(self, room: Room | None = None) -> list[PushSession]:
        return [
            session
            for session in self.sessions
            if not session.closed.is_set() and (room is None or session.room is room)
        ]

    async def send(self, room: Room, events: list[Event]) -> int:
        """Push events in one frame to every open socket of `room`; returns how many got it.

        A live end also ends the room's LIVE and closes its sockets (after a grace period in
        which the client closes itself, as the real clients do).
        """
        sessions = self.open_sessions(room)
        sent = await self._send_to(sessions, events)
        if any(isinstance(event, LiveEnd) for event in events):
            room.live = False
        return sent

    async def wait_for_sessions(
        self, room: Room | None, count: int, timeout: float, *, entered: bool
    ) -> list[PushSession]:
        """The first `count` sockets opened for `room` (that entered the room, if asked)."""

        def matching() -> list[PushSession]:
            return [
                session
                for session in self.sessions
                if (room is None or session.room is room)
                and (not entered or session.entered.is_set())
            ]

        async def ready() -> list[PushSession]:
            while len(found := matching()) < count:
                # Entering is not an "opened" notification; poll it in small steps.
                async with self._opened:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._opened.wait(), 0.05)
            return found[:count]

        return await asyncio.wait_for(ready(), timeout)

    async def close(self) -> None:
        for session in self.open_sessions():
            await session.ws.close(message=b"sandbox stopped")
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()

    def __iter__(self) -> Iterator[PushSession]:
        return iter(self.sessions)


def add_push_routes(app: web.Application, server: PushServer) -> None:
    if STATE_KEY not in app:
        raise RuntimeError("add the HTTP routes first: the push route shares their state")
    add_route(app, PUSH_PATH, "push", server.handle)
    add_route(app, PUSH_PATH.rstrip("/"), "push", server.handle)
