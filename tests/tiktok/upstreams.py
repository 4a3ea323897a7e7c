"""Small real servers on loopback for the failure modes the sandbox does not play.

`FlakyUpstream` is an HTTP server that answers 5xx for its first N requests, or hangs, or
answers normally, and counts what it got; `ForwardProxy` is a plain HTTP forward proxy
(absolute-form requests and CONNECT) that records every request it relays, so a test can
prove that every upstream request went through the configured proxy.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiohttp import web

__all__ = ["FlakyUpstream", "ForwardProxy"]


@dataclass
class FlakyUpstream:
    fail_first: int = 0  # answer `fail_status` to this many requests first
    fail_status: int = 503
    hang: bool = False
    requests: list[str] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _released: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        if self.hang:
            # Until the test ends, then answer: a handler still waiting would hold up cleanup.
            await self._released.wait()
        if len(self.requests) <= self.fail_first:
            return web.Response(status=self.fail_status, text="upstream failing")
        return web.Response(text="ok")

    async def __aenter__(self) -> FlakyUpstream:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        address = self._runner.addresses[0]
        self.port = int(address[1])
        return self

    async def __aexit__(self, *_: object) -> None:
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()


class ForwardProxy:
    """An HTTP proxy: relays absolute-form requests (one per connection) and CONNECT."""

    def __init__(self, username: str = "", password: str = "") -> None:
        self.seen: list[str] = []  # "METHOD target" of every request relayed
        self.refused = 0
        self._expected_auth = (
            "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
            if username
            else None
        )
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> ForwardProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers = [line for line in lines[1:] if line]
        auth = next(
            (h.split(":", 1)[1].strip() for h in headers if h.lower().startswith("proxy-auth")),
            None,
        )
        if self._expected_auth is not None and auth != self._expected_auth:
            self.refused += 1
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n")
            writer.write(b"Connection: close\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        self.seen.append(f"{method} {target}")
        try:
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                up_reader, up_writer = await asyncio.open_connection(host, int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
                return
            parts = urlsplit(target)
            up_reader, up_writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            kept = [
                h
                for h in headers
                if not h.lower().startswith(("proxy-", "connection:", "keep-alive:"))
            ]
            request = [f"{method} {path} HTTP/1.1", *kept, "Connection: close", "", ""]
            up_writer.write("\r\n".join(request).encode("latin-1"))
            await up_writer.drain()
            await _pipe(up_reader, writer)  # the upstream closes after its answer
            up_writer.close()
        except OSError:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            with contextlib.suppress(OSError):
                await writer.drain()
        finally:
            writer.close()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while chunk := await source.read(65_536):
            sink.write(chunk)
            await sink.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.close()
