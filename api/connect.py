"""The connect and room-id routes: a LIVE opened through us, as EulerStream's clients expect.

- `GET /webcast/fetch` and `GET /webcast/fetch/` (TikTokLive 6.x, TLC 2.0 to 2.3) and
  `GET /webcast/rooms/{room_id}/connect` (TLC 2.4 and later) answer 200
  `application/protobuf` with TikTok's `im/fetch` answer relayed unchanged (or, for the
  `socket` strategy, one built here), `X-Set-TT-Cookie` (ttwid first), `X-Room-Id` and
  `X-Connect-Strategy` (spec sections 2 and 3). A room may be given by handle
  (`unique_id`), which the room look-up resolves.
- `GET /webcast/anchors/{unique_id}/room_id` (TLC 2.4+) and `GET /webcast/room_id?uniqueId=`
  (TLC 2.0 to 2.3) answer EulerStream's room-id body (spec section 5.4), errors included:
  TLC reads only the body, never the status.

`SIGNER_CONNECT_STRATEGY` says how a connect is answered: `fetch` relays TikTok's im/fetch,
`socket` builds the answer pointing at the direct push URL, `auto` tries `fetch` and falls
back to `socket` when TikTok answers empty or refuses. Signatures come from the queue
through `queue_signer`; the TikTok client (`tiktok/`) knows nothing of either.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from types import MappingProxyType

from aiohttp import web

from signer import SignError, SignRequest, SignResult
from tiktok import (
    EmptyAnswer,
    ImFetchResult,
    InvalidInput,
    Sign,
    TikTokClient,
    TikTokError,
    TikTokRefused,
    UserNotFound,
    UserOffline,
)
from workers import SignQueue

from .connect_parsing import ConnectQuery, connect_query, unique_id_of
from .context import TIKTOK, TRACE, ConnectTrace, RequestTrace
from .errors import ApiError, api_error_from_sign_error, api_error_from_tiktok
from .jsontext import json_text

__all__ = [
    "CONNECT_CONTENT_TYPE",
    "ROOM_ID_ERROR_FIELDS",
    "anchor_room_id",
    "queue_signer",
    "room_id_by_query",
    "rooms_connect",
    "webcast_fetch",
]

CONNECT_CONTENT_TYPE = "application/protobuf"
# What the room-id routes' error bodies carry besides `code` and `message` (spec 5.4).
ROOM_ID_ERROR_FIELDS: Mapping[str, object] = MappingProxyType(
    {"ok": False, "room_id": "", "is_live": False, "routes_attempted": ()}
)
OFF_RETRY_AFTER = 60

# The request a signature is being made for, so the queue's trace (worker, wait, profile)
# lands on its usage row; each aiohttp request runs in its own task, hence its own context.
_CURRENT: ContextVar[RequestTrace | None] = ContextVar("connect_trace", default=None)


def queue_signer(queue: SignQueue) -> Sign:
    """The `Sign` callable the TikTok client is built with: a signature from the queue,
    its `SignError` raised, its trip through the queue noted on the request's trace."""

    async def sign(request: SignRequest) -> SignResult:
        outcome = await queue.submit(request)
        trace = _CURRENT.get()
        if trace is not None:
            trace.outcome = outcome
        if isinstance(outcome.result, SignError):
            raise outcome.result
        return outcome.result

    return sign


def _client(request: web.Request) -> TikTokClient:
    tiktok = request.app.get(TIKTOK)
    if tiktok is None:
        raise ApiError(
            503,
            "SERVICE_UNAVAILABLE",
            "this server does not open LIVE rooms: its TikTok client is not configured",
            retry_after=OFF_RETRY_AFTER,
        )
    return tiktok


async def webcast_fetch(request: web.Request) -> web.Response:
    """`GET /webcast/fetch` and `/webcast/fetch/`: the room in the query."""
    return await _connect(request, connect_query(request.query, request.headers))


async def rooms_connect(request: web.Request) -> web.Response:
    """`GET /webcast/rooms/{room_id}/connect`: the room in the path."""
    query = connect_query(
        request.query, request.headers, path_room_id=request.match_info["room_id"]
    )
    return await _connect(request, query)


async def anchor_room_id(request: web.Request) -> web.Response:
    """`GET /webcast/anchors/{unique_id}/room_id`."""
    return await _room_id(request, unique_id_of(request.match_info["unique_id"]))


async def room_id_by_query(request: web.Request) -> web.Response:
    """`GET /webcast/room_id?uniqueId=`."""
    given = request.query.get("uniqueId") or request.query.get("unique_id")
    if not given:
        raise ApiError(
            400, "VALIDATION_ERROR", "query parameter 'uniqueId' is required: the handle"
        )
    return await _room_id(request, unique_id_of(given, "uniqueId"))


async def _connect(request: web.Request, query: ConnectQuery) -> web.Response:
    trace = request[TRACE]
    connect = trace.connect = ConnectTrace(room_id=query.room_id)
    trace.target = f"room/{query.room_id}" if query.room_id else f"@{query.unique_id}"
    tiktok = _client(request)
    token = _CURRENT.set(trace)
    try:
        room_id = query.room_id
        if room_id is None:
            assert query.unique_id is not None
            room_id = await tiktok.live_room_id(query.unique_id)
            connect.room_id = room_id
            trace.target = f"room/{room_id}"
        answer = await _answer(tiktok, query, room_id, connect)
    except (UserNotFound, UserOffline, InvalidInput) as error:
        raise api_error_from_tiktok(error) from None
    except TikTokError as error:
        connect.outcome = "tiktok_error"
        raise api_error_from_tiktok(error) from None
    except SignError as error:
        connect.outcome = "signer_error"
        raise api_error_from_sign_error(error) from None
    finally:
        _CURRENT.reset(token)
    connect.outcome = "ok"
    response = web.Response(body=answer.body, content_type=CONNECT_CONTENT_TYPE)
    response.headers["X-Set-TT-Cookie"] = answer.set_tt_cookie()
    response.headers["X-Room-Id"] = room_id
    response.headers["X-Connect-Strategy"] = connect.strategy or ""
    return response


async def _answer(
    tiktok: TikTokClient, query: ConnectQuery, room_id: str, connect: ConnectTrace
) -> ImFetchResult:
    """The connect answer by the configured strategy, noting which one gave it."""
    strategy = tiktok.settings.connect_strategy
    if strategy != "socket":
        try:
            answer = await tiktok.fetch(
                room_id,
                user_agent=query.user_agent,
                cursor=query.cursor,
                internal_ext=query.internal_ext,
                cookie_header=query.cookie_header,
            )
        except (EmptyAnswer, TikTokRefused) as refused:
            connect.upstream_status = refused.status
            if strategy == "fetch":
                raise
        else:
            connect.strategy = "fetch"
            connect.upstream_status = answer.status
            connect.upstream_ms = answer.latency * 1000
            return answer
    answer = await tiktok.socket_connect(
        room_id,
        user_agent=query.user_agent,
        cursor=query.cursor,
        internal_ext=query.internal_ext,
        cookie_header=query.cookie_header,
    )
    connect.strategy = "socket"
    connect.upstream_ms = answer.latency * 1000
    return answer


async def _room_id(request: web.Request, handle: str) -> web.Response:
    trace = request[TRACE]
    trace.target = f"@{handle}"
    tiktok = _client(request)
    try:
        info = await tiktok.room(handle)
    except (TikTokError, InvalidInput) as error:
        raise api_error_from_tiktok(error) from None
    message = "" if info.is_live else f"@{handle} is not LIVE now"
    body = {
        "code": 200,
        "ok": True,
        "room_id": info.room_id,
        "is_live": info.is_live,
        "message": message,
        "routes_attempted": list(info.routes_attempted),
        "source": info.source,
    }
    return web.json_response(body, dumps=json_text)
