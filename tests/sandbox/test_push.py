"""The push socket speaks the clients' protocol, decoded with TikTokLive's own proto classes.

Each test opens the socket the way the clients do (spec 4.1 to 4.5): an im/fetch answer gives
`push_server` and `route_params`, the socket carries them with `room_id` and the `ttwid` cookie,
then `im_enter_room` and heartbeats go up and gzip'd `msg` frames come down.
"""

from __future__ import annotations

import asyncio
import gzip
import importlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from TikTokLiveProto.v3.webcast.im import HeartBeatMessage as RealHeartBeat
from TikTokLiveProto.v3.webcast.im import WebcastPushFrame as RealPushFrame
from TikTokLiveProto.v3.webcast.model.message import (
    WebcastChatMessage,
    WebcastControlMessage,
    WebcastGiftMessage,
)
from TikTokLiveProto.v3.webcast.shared.message import (
    ProtoMessageFetchResult as RealFetchResult,
)
from yarl import URL

from sandbox import DEFAULT_ROOM_ID, Chat, Gift, LiveEnd, Sandbox, Script, Step, Viewer
from signer import Signer
from tiktok.proto import ProtoMessageFetchResult, WebcastImEnterRoomMessage, WebcastPushFrame

from .conftest import sandbox_url, sign_fetch

UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/156.0.0.0 Safari/537.36"

# TikTokLive (untyped, so loaded by name) finishes TikTokLiveProto's pydantic models when
# imported; its events are these same classes, so decoding with them is decoding as it does.
importlib.import_module("TikTokLive")


async def _fetch(
    tiktok: Sandbox, http: aiohttp.ClientSession, signer: Signer
) -> ProtoMessageFetchResult:
    signed = await sign_fetch(signer)
    url = URL(sandbox_url(tiktok, signed), encoded=True)
    async with http.get(url, headers={"User-Agent": signed.user_agent}) as response:
        body = await response.read()
    result = ProtoMessageFetchResult()
    result.ParseFromString(body)
    assert result.push_server
    return result


def _socket_url(
    push_server: str,
    route_params: dict[str, str],
    compress: bool = True,
    room_id: str = DEFAULT_ROOM_ID,
) -> str:
    # As TikTokLive builds it: route params first, then its own, then a second version_code.
    own = {"aid": "1988", "room_id": room_id, "version_code": "180800"}
    own["compress"] = "gzip" if compress else ""
    return f"{push_server}?{urlencode({**route_params, **own})}&version_code=270000"


def _frame(payload_type: str, payload: bytes = b"", log_id: int = 0) -> bytes:
    return WebcastPushFrame(
        payload_type=payload_type, payload_encoding="pb", payload=payload, log_id=log_id
    ).SerializeToString()


def _enter_room() -> bytes:
    enter = WebcastImEnterRoomMessage(
        room_id=int(DEFAULT_ROOM_ID), live_id=12, identity="audience", filter_welcome_msg="0"
    )
    return _frame("im_enter_room", enter.SerializeToString())


async def _next_msg(ws: aiohttp.ClientWebSocketResponse) -> tuple[RealPushFrame, RealFetchResult]:
    """The next `msg` frame, decoded exactly as TikTokLive decodes it."""
    while True:
        message = await asyncio.wait_for(ws.receive(), 10)
        assert message.type == aiohttp.WSMsgType.BINARY, message
        frame = RealPushFrame().parse(message.data)
        if frame.payload_type != "msg":
            continue
        headers = {header.key: header.value for header in frame.headers}
        payload = frame.payload
        if headers.get("compress_type") == "gzip":
            payload = gzip.decompress(payload)
        return frame, RealFetchResult().parse(payload)


@pytest.fixture
async def connected(
    tiktok: Sandbox, http: aiohttp.ClientSession, native_signer: Signer
) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    result = await _fetch(tiktok, http, native_signer)
    url = _socket_url(result.push_server, dict(result.route_params))
    async with http.ws_connect(url, headers={"User-Agent": UA}, protocols=("echo-protocol",)) as ws:
        await ws.send_bytes(_enter_room())
        yield ws


async def test_chat_and_gift_decode_with_the_real_client_classes(
    tiktok: Sandbox, connected: aiohttp.ClientWebSocketResponse
) -> None:
    (session,) = await tiktok.wait_for_socket("sandbox", entered=True)
    assert session.ws.ws_protocol == "echo-protocol"
    alice = Viewer(unique_id="alice", nickname="Alice", user_id=42)
    assert await tiktok.send("sandbox", Chat("hello sandbox", alice)) == 1
    assert await tiktok.send("@sandbox", Gift(name="Rose", gift_id=5655, user=alice)) == 1

    frame, result = await _next_msg(connected)
    assert frame.log_id > 0
    assert frame.payload_encoding == "pb"
    assert result.need_ack
    assert result.internal_ext
    assert not result.is_first
    (message,) = result.messages
    assert message.method == "WebcastChatMessage"
    comment = WebcastChatMessage().parse(message.payload)
    assert comment.content == "hello sandbox"
    assert comment.user is not None
    assert comment.common is not None
    assert comment.user.nickname == "Alice"
    assert comment.user.display_id == "alice"
    assert comment.common.room_id == int(DEFAULT_ROOM_ID)

    _, result = await _next_msg(connected)
    (message,) = result.messages
    assert message.method == "WebcastGiftMessage"
    gift = WebcastGiftMessage().parse(message.payload)
    assert gift.gift is not None
    assert gift.user is not None
    assert gift.gift.name == "Rose"
    assert gift.gift_id == 5655
    assert gift.repeat_end == 1
    assert gift.user.display_id == "alice"

    # The ack TikTokLive sends: the frame's log id, the inner internal_ext as payload.
    await connected.send_bytes(_frame("ack", result.internal_ext.encode(), log_id=frame.log_id))
    await asyncio.sleep(0)
    for _ in range(100):
        if session.acked_log_ids:
            break
        await asyncio.sleep(0.01)
    assert session.acked_log_ids == [frame.log_id]


async def test_heartbeats_are_answered_and_never_pinged(
    tiktok: Sandbox, connected: aiohttp.ClientWebSocketResponse
) -> None:
    beat = RealHeartBeat(room_id=int(DEFAULT_ROOM_ID), send_packet_seq_id=1)
    await connected.send_bytes(_frame("hb", bytes(beat)))
    seen: list[str] = []
    while "hb" not in seen:
        message = await asyncio.wait_for(connected.receive(), 10)
        # A ping would arrive as a PING message (autoping off on our side shows it).
        assert message.type == aiohttp.WSMsgType.BINARY
        seen.append(RealPushFrame().parse(message.data).payload_type)
    assert seen == ["im_enter_room_resp", "hb"]
    (session,) = tiktok.sockets
    assert [b.send_packet_seq_id for b in session.heartbeats] == [1]


async def test_live_end_ends_the_room_and_closes(
    tiktok: Sandbox, connected: aiohttp.ClientWebSocketResponse
) -> None:
    await tiktok.wait_for_socket("sandbox", entered=True)
    await tiktok.send("sandbox", LiveEnd())
    _, result = await _next_msg(connected)
    control = WebcastControlMessage().parse(result.messages[0].payload)
    assert result.messages[0].method == "WebcastControlMessage"
    assert control.action.value in (3, 4)
    assert not tiktok.room("sandbox").live
    # The server closes the socket when the client does not (after its grace period).
    message = await asyncio.wait_for(connected.receive(), 10)
    while message.type == aiohttp.WSMsgType.BINARY:
        message = await asyncio.wait_for(connected.receive(), 10)
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_plain_frames_when_the_client_asks_no_compression(
    tiktok: Sandbox, http: aiohttp.ClientSession, native_signer: Signer
) -> None:
    result = await _fetch(tiktok, http, native_signer)
    url = _socket_url(result.push_server, dict(result.route_params), compress=False)
    async with http.ws_connect(url, headers={"User-Agent": UA}) as ws:
        await tiktok.wait_for_socket("sandbox")
        await tiktok.send("sandbox", Chat("plain"))
        message = await asyncio.wait_for(ws.receive(), 10)
        frame = RealPushFrame().parse(message.data)
        assert frame.headers == []
        assert not frame.payload.startswith(b"\x1f\x8b")
        inner = RealFetchResult().parse(frame.payload)
        assert WebcastChatMessage().parse(inner.messages[0].payload).content == "plain"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"room_id": "123"}, "room_id"),
        ({"wrss": "forged"}, "route params"),
        ({"cookie": "tt-target-idc=useast1a"}, "ttwid"),
    ],
)
async def test_handshake_refused_with_200_and_handshake_msg(
    tiktok: Sandbox,
    http: aiohttp.ClientSession,
    native_signer: Signer,
    change: dict[str, str],
    reason: str,
) -> None:
    result = await _fetch(tiktok, http, native_signer)
    params = dict(result.route_params)
    headers = {"User-Agent": UA}
    if "cookie" in change:
        http.cookie_jar.clear()
        headers["Cookie"] = change["cookie"]
    if "wrss" in change:
        params["wrss"] = change["wrss"]
    url = _socket_url(result.push_server, params, room_id=change.get("room_id", DEFAULT_ROOM_ID))
    with pytest.raises(aiohttp.WSServerHandshakeError) as raised:
        await http.ws_connect(url, headers=headers)
    assert raised.value.status == 200
    message = raised.value.headers["Handshake-Msg"] if raised.value.headers else ""
    assert reason in message
    assert tiktok.requests.outcomes("push") == ["refused"]


async def test_socket_mode_takes_the_direct_socket(
    tiktok: Sandbox, http: aiohttp.ClientSession
) -> None:
    tiktok.mode = "socket"
    async with http.get(f"{tiktok.web_url}/live"):
        pass  # the ttwid a browser gets on a visit
    url = _socket_url(tiktok.push_url, {"cursor": "0", "internal_ext": "0"})
    async with http.ws_connect(url, headers={"User-Agent": UA}) as ws:
        await tiktok.wait_for_socket("sandbox")
        await tiktok.send("sandbox", Chat("direct"))
        _, result = await _next_msg(ws)
        assert WebcastChatMessage().parse(result.messages[0].payload).content == "direct"


async def test_a_script_plays_once_the_client_enters(
    http: aiohttp.ClientSession, native_signer: Signer
) -> None:
    script = Script([Step(0.0, Chat("first")), Step(0.01, Gift()), Step(0.01, LiveEnd())])
    async with Sandbox(script=script) as tiktok:
        result = await _fetch(tiktok, http, native_signer)
        url = _socket_url(result.push_server, dict(result.route_params))
        async with http.ws_connect(url, headers={"User-Agent": UA}) as ws:
            await ws.send_bytes(_enter_room())
            methods: list[Any] = []
            for _ in range(3):
                _, inner = await _next_msg(ws)
                methods.extend(message.method for message in inner.messages)
        assert methods == ["WebcastChatMessage", "WebcastGiftMessage", "WebcastControlMessage"]
        assert not tiktok.room("sandbox").live
