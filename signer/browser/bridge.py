"""A loopback WebSocket between this process and each warm page.

Playwright's `evaluate` goes Python -> Playwright's Node driver -> CDP -> page and costs
about 2 ms p50 (9.5 ms p99) here; a WebSocket the page opens to us costs under 0.5 ms.
Playwright still launches the browser, builds the contexts and watches for crashes; only
the signing calls take this path. The server listens on 127.0.0.1 only and every URL
carries a random secret, so no other local process can feed or read a page.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from importlib.resources import files
from typing import Any

from aiohttp import WSMsgType, web

from ..errors import EngineUnavailable

__all__ = ["BridgeServer", "PageChannel"]


def _bundle_source(name: str) -> str:
    return files("signer.bundle").joinpath(name).read_text(encoding="utf-8")


class PageChannel:
    """Request/response calls to one page over its WebSocket; calls may overlap."""

    def __init__(self, slot: str) -> None:
        self.slot = slot
        self._socket: web.WebSocketResponse | None = None
        self._pending: dict[int, asyncio.Future[list[dict[str, Any]]]] = {}
        self._next_id = 0
        self.connected = asyncio.Event()
        self.closed = False

    async def call(self, items: list[dict[str, Any]], timeout: float) -> list[dict[str, Any]]:
        """Sign `items` in the page; `EngineUnavailable` when the page is gone or slow."""
        socket = self._socket
        if socket is None or self.closed or socket.closed:
            raise EngineUnavailable(f"page {self.slot} is not connected")
        self._next_id += 1
        call_id = self._next_id
        future: asyncio.Future[list[dict[str, Any]]] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        try:
            await socket.send_str(json.dumps({"id": call_id, "items": items}))
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise EngineUnavailable(f"page {self.slot} did not answer in {timeout:g} s") from None
        except ConnectionError as error:
            raise EngineUnavailable(f"page {self.slot} connection lost: {error}") from None
        finally:
            self._pending.pop(call_id, None)

    async def serve(self, socket: web.WebSocketResponse) -> None:
        """Read the page's replies until it disconnects, then fail what is outstanding."""
        self._socket = socket
        self.connected.set()
        try:
            async for message in socket:
                if message.type != WSMsgType.TEXT:
                    continue
                reply = json.loads(message.data)
                future = self._pending.get(reply.get("id"))
                if future is None or future.done():
                    continue
                if "error" in reply:
                    future.set_exception(EngineUnavailable(f"page error: {reply['error']}"))
                else:
                    future.set_result(reply["results"])
        finally:
            self.fail(f"page {self.slot} disconnected")

    def fail(self, reason: str) -> None:
        """Mark the channel dead and fail every call waiting on it."""
        self.closed = True
        for future in self._pending.values():
            if not future.done():
                future.set_exception(EngineUnavailable(reason))
        self._pending.clear()

    async def close(self) -> None:
        self.fail(f"page {self.slot} closed")
        if self._socket is not None and not self._socket.closed:
            await self._socket.close()


class BridgeServer:
    """Serves the signing page and the WebSocket each page connects back on."""

    def __init__(self) -> None:
        self._secret = secrets.token_urlsafe(24)
        self._channels: dict[str, PageChannel] = {}
        self._runner: web.AppRunner | None = None
        self._port = 0
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>signer</title></head>"
            "<body><script>{}</script><script>{}</script></body></html>"
        )
        self._page = page.format(_bundle_source("signer.js"), _bundle_source("bridge.js"))

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{secret}/page/{slot}", self._serve_page)
        app.router.add_get("/{secret}/ws/{slot}", self._serve_socket)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self._port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def close(self) -> None:
        for channel in list(self._channels.values()):
            await channel.close()
        self._channels.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def register(self, slot: str) -> PageChannel:
        channel = PageChannel(slot)
        self._channels[slot] = channel
        return channel

    def unregister(self, slot: str) -> None:
        self._channels.pop(slot, None)

    def page_url(self, slot: str) -> str:
        return f"http://127.0.0.1:{self._port}/{self._secret}/page/{slot}"

    def socket_url(self, slot: str) -> str:
        return f"ws://127.0.0.1:{self._port}/{self._secret}/ws/{slot}"

    def _check(self, request: web.Request) -> PageChannel:
        channel = self._channels.get(request.match_info["slot"])
        if not secrets.compare_digest(request.match_info["secret"], self._secret) or not channel:
            raise web.HTTPNotFound()
        return channel

    async def _serve_page(self, request: web.Request) -> web.Response:
        self._check(request)
        return web.Response(text=self._page, content_type="text/html")

    async def _serve_socket(self, request: web.Request) -> web.WebSocketResponse:
        channel = self._check(request)
        socket = web.WebSocketResponse(max_msg_size=64 * 1024 * 1024)
        await socket.prepare(request)
        await channel.serve(socket)
        return socket
