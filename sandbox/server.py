"""`Sandbox`: an offline TikTok on loopback, for tests and for people building LIVE bots.

    async with Sandbox(mode="fetch") as tiktok:
        tiktok.web_url       # www.tiktok.com:      http://127.0.0.1:PORT
        tiktok.webcast_url   # webcast.tiktok.com:  http://127.0.0.1:PORT  (paths start /webcast)
        tiktok.push_url      # the push socket:     ws://127.0.0.1:PORT/webcast/im/ws_proxy/...
        await tiktok.wait_for_socket("sandbox")
        await tiktok.send("sandbox", Chat("hello"), Gift())
        tiktok.requests.count("live_page", "api_live_room")

One aiohttp server plays all three TikTok hosts (their paths do not overlap). A stopped
sandbox can be started again on the same port, which is how tests take "TikTok" down and
bring it back.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from types import TracebackType

from aiohttp import web

from sandbox.events import Event
from sandbox.push import PUSH_PATH, PushServer, PushSession, add_push_routes
from sandbox.record import Recorder
from sandbox.rooms import Room, RoomBook, default_rooms
from sandbox.script import EventMix, Script
from sandbox.state import MODES, Mode, SandboxState
from sandbox.web import add_routes, recording_middleware

__all__ = ["Sandbox"]


class Sandbox:
    """A fake TikTok (web pages, webcast API, push socket) on a real loopback server."""

    def __init__(
        self,
        mode: Mode = "fetch",
        rooms: Iterable[Room] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        advertise_host: str | None = None,
        script: Script | None = None,
        mix: EventMix | None = None,
        start_delay: float = 0.5,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.state = SandboxState(
            rooms=RoomBook(default_rooms() if rooms is None else rooms),
            mode=mode,
            script=script,
            mix=mix,
            start_delay=start_delay,
        )
        self.host = host
        self.port = port
        # The host written into URLs: the bind address unless that is a wildcard.
        self.advertise_host = advertise_host or ("127.0.0.1" if host in ("0.0.0.0", "") else host)
        self.push = PushServer(self.state)
        self._runner: web.AppRunner | None = None

    # ---- life cycle ----

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[recording_middleware])
        add_routes(app, self.state)
        add_push_routes(app, self.push)
        return app

    async def start(self) -> None:
        if self._runner is not None:
            return
        runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
        await runner.setup()
        # reuse_address lets a restarted sandbox take its old port back at once.
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        if self.port == 0:
            self.port = _bound_port(runner)
        self._runner = runner
        self.state.push_url = self.push_url

    async def close(self) -> None:
        """Stop serving (sockets closed); `start()` brings it back on the same port."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await self.push.close()
            await runner.cleanup()

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def running(self) -> bool:
        return self._runner is not None

    # ---- where it is ----

    @property
    def _origin(self) -> str:
        host = f"[{self.advertise_host}]" if ":" in self.advertise_host else self.advertise_host
        return f"{host}:{self.port}"

    @property
    def web_url(self) -> str:
        """Stands for https://www.tiktok.com (no trailing slash)."""
        return f"http://{self._origin}"

    @property
    def webcast_url(self) -> str:
        """Stands for https://webcast.tiktok.com; the routes live under `/webcast/`."""
        return f"http://{self._origin}"

    @property
    def push_url(self) -> str:
        """The `push_server` an im/fetch answer names, without a query."""
        return f"ws://{self._origin}{PUSH_PATH}"

    # ---- state and switches ----

    @property
    def mode(self) -> Mode:
        return self.state.mode

    @mode.setter
    def mode(self, mode: Mode) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.state.mode = mode

    @property
    def rooms(self) -> RoomBook:
        return self.state.rooms

    def room(self, room: Room | str | int) -> Room:
        """A room by handle (`@` optional) or id; KeyError if the sandbox has none."""
        return self.state.rooms.resolve(room)

    def set_live(self, room: Room | str | int, live: bool = True) -> None:
        self.room(room).live = live

    def revoke_ttwids(self) -> None:
        """Refuse every ttwid issued so far (im/fetch and the socket), as an expiry would."""
        self.state.cookies.revoke()

    def fail(self, status: int = 503, *, delay: float = 0.0) -> None:
        """Every HTTP route answers `status` (after `delay` seconds) until `heal()`."""
        self.state.fault_status = status
        self.state.delay = delay

    def slow(self, delay: float) -> None:
        """Every HTTP route waits `delay` seconds before answering normally."""
        self.state.delay = delay

    def heal(self) -> None:
        self.state.fault_status = None
        self.state.delay = 0.0

    @property
    def requests(self) -> Recorder:
        """Every HTTP request and socket handshake received, in order."""
        return self.state.recorder

    # ---- the push socket ----

    @property
    def sockets(self) -> list[PushSession]:
        """Every socket opened so far, open or closed."""
        return self.push.sessions

    async def wait_for_socket(
        self,
        room: Room | str | int | None = None,
        count: int = 1,
        *,
        timeout: float = 10.0,
        entered: bool = False,
    ) -> list[PushSession]:
        """Wait until `count` sockets have opened for `room` (any room when None).

        With `entered=True`, only sockets whose client sent `im_enter_room` count.
        Raises TimeoutError after `timeout` seconds.
        """
        target = None if room is None else self.room(room)
        return await self.push.wait_for_sessions(target, count, timeout, entered=entered)

    async def send(self, room: Room | str | int, *events: Event) -> int:
        """Push events (in one frame) to every open socket of the room; how many got it."""
        return await self.push.send(self.room(room), list(events))


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    raise RuntimeError("the sandbox server has no TCP address")


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (for a caller that must know it before starting)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
