"""One DevTools protocol connection over a WebSocket: commands, their replies, events.

Chromium serves one such socket for the browser (`/devtools/browser/<id>`) and one per
page (`/devtools/page/<target id>`); each is a session of its own, so what a page's
connection sets (its emulation, its request interception) lasts as long as it does.
Calls may overlap; each waits for the reply with its id. Events go to the handlers
registered for their method, run in the reader (a handler must not block: one that has
to send schedules it with `post`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson

from ..errors import EngineUnavailable

__all__ = ["CdpConnection", "CdpError", "EventHandler"]

log = logging.getLogger(__name__)
# A closing handshake the other end never answers (a hung Chromium) waits this long.
_CLOSE_TIMEOUT = 1.0

EventHandler = Callable[[dict[str, Any]], None]


class CdpError(EngineUnavailable):
    """Chromium answered a command with an error."""


class CdpConnection:
    """A DevTools socket to a browser or a page, named `name` in errors and task names."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._handlers: dict[str, EventHandler] = {}
        self._posted: set[asyncio.Task[Any]] = set()
        self._on_close: list[Callable[[str], None]] = []
        self._next_id = 0
        self.closed = False

    async def connect(self, session: aiohttp.ClientSession, url: str) -> None:
        self._socket = await session.ws_connect(
            url,
            max_msg_size=0,
            autoping=False,
            timeout=aiohttp.ClientWSTimeout(ws_close=_CLOSE_TIMEOUT),
        )
        self._reader = asyncio.create_task(self._read(self._socket), name=f"devtools-{self.name}")

    def on(self, method: str, handler: EventHandler) -> None:
        """Call `handler(params)` for each `method` event (one handler per method)."""
        self._handlers[method] = handler

    def on_close(self, callback: Callable[[str], None]) -> None:
        """Call `callback(reason)` once, when the connection is lost or closed."""
        self._on_close.append(callback)

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a command; its result, or `CdpError` with Chromium's message."""
        reply = await self.send_raw(method, params or {})
        if "error" in reply:
            error = reply["error"]
            raise CdpError(f"{self.name}: {method} failed: {error.get('message', error)}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def send_raw(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send a command; Chromium's whole reply (`result` or `error`)."""
        socket = self._socket
        if socket is None or self.closed or socket.closed:
            raise EngineUnavailable(f"{self.name} is not connected")
        self._next_id += 1
        call_id = self._next_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        try:
            # orjson: a page call of 7 items encodes in 1.4 µs, where `json` takes 25 µs.
            command = {"id": call_id, "method": method, "params": params}
            await socket.send_str(orjson.dumps(command).decode())
            return await future
        except ConnectionError as error:
            raise EngineUnavailable(f"{self.name} connection lost: {error}") from None
        finally:
            self._pending.pop(call_id, None)

    def post(self, method: str, params: dict[str, Any]) -> None:
        """Send a command from an event handler, not waiting for it; a failure is ignored
        (the page it was for is gone, and its own calls report that)."""
        task = asyncio.get_running_loop().create_task(self.send_raw(method, params))
        self._posted.add(task)
        task.add_done_callback(self._posted_done)

    def _posted_done(self, task: asyncio.Task[Any]) -> None:
        self._posted.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a lost page is reported by its calls

    async def _read(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for message in socket:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                data = _decoded(message.data)
                call_id = data.get("id")
                if call_id is not None:
                    future = self._pending.get(call_id)
                    if future is not None and not future.done():
                        future.set_result(data)
                    continue
                handler = self._handlers.get(data.get("method", ""))
                if handler is None:
                    continue
                try:
                    handler(data.get("params", {}))
                except Exception:  # a bug of a handler's: the connection is not at fault
                    log.exception("%s: the handler of %s failed", self.name, data.get("method"))
        except Exception:
            log.exception("%s: reading failed", self.name)
            raise
        finally:
            self.fail(f"{self.name} disconnected")

    def fail(self, reason: str) -> None:
        """Mark the connection dead and fail every call waiting on it."""
        if self.closed:
            return
        self.closed = True
        for future in self._pending.values():
            if not future.done():
                future.set_exception(EngineUnavailable(reason))
        self._pending.clear()
        for callback in self._on_close:
            callback(reason)

    async def close(self) -> None:
        self.fail(f"{self.name} closed")
        if self._socket is not None and not self._socket.closed:
            with contextlib.suppress(Exception):
                await self._socket.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        for task in list(self._posted):
            task.cancel()


def _decoded(text: str) -> dict[str, Any]:
    """A DevTools message: orjson, else the standard decoder, which takes what orjson
    refuses and Chromium sends (a lone surrogate escaped in a page's string)."""
    try:
        value: dict[str, Any] = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = json.loads(text)
    return value
