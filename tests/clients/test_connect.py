"""The real clients open a LIVE by handle through our connect routes, against the sandbox.

Each client runs unmodified in its own process (`connect_tiktoklive.py`, `node/connect_v2.mjs`,
`node/connect_v1.js`), configured only the documented ways (spec section 8.1), and prints one
JSON line per event. The TikTok it meets is a real `Sandbox` server on loopback, in the mode
matching our `SIGNER_CONNECT_STRATEGY`; our stack (`signer worker` + `signer api`, private
Redis and Postgres) is pointed at it with `SIGNER_TIKTOK_*_URL`. Once the client's socket is
open, the sandbox pushes a chat and a gift, then ends the LIVE: the client must report all
three as its own events, then stop.

The spec's traps are met in the set-up, never by patching a client: TikTok-Live-Connector 2.x
gets the sandbox as `0.0.0.0:PORT` (it speaks https to loopback names); TikTokLive's
`is_first` and TTLC's ttwid-first cookie are our routes' to get right.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sandbox import DEFAULT_ROOM_ID, Chat, Gift, LiveEnd, Mode, PushSession, Sandbox, Viewer
from sandbox.server import free_port
from tests.service_stack import ServiceStack, issue_key, service_stack

# TikTokLive 6.6 imports websockets' deprecated legacy API: not ours to fix.
pytestmark = [
    pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:websockets.exceptions.InvalidStatusCode:DeprecationWarning"),
]

HERE = Path(__file__).parent
PYTHON_CLIENT = HERE / "connect_tiktoklive.py"
STRATEGIES = ("fetch", "socket")
ANN = Viewer(unique_id="ann", nickname="Ann", user_id=4242)
# Long enough for a cold worker's first signature and the client's own room look-ups.
EVENT_TIMEOUT = 30.0


@dataclass(frozen=True)
class ConnectStack:
    stack: ServiceStack
    strategy: str
    sandbox_port: int
    key: str

    @property
    def base(self) -> str:
        return self.stack.base


@pytest.fixture(scope="module", params=STRATEGIES)
def connect_stack(request: pytest.FixtureRequest) -> Iterator[ConnectStack]:
    """Our stack pointed at a sandbox port (the sandbox starts on it next), one strategy."""
    strategy: str = request.param
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    env = {
        "SIGNER_TIKTOK_WEB_URL": origin,
        "SIGNER_TIKTOK_WEBCAST_URL": origin,
        "SIGNER_TIKTOK_PUSH_URL": f"ws://127.0.0.1:{port}/webcast/im/ws_proxy/ws_reuse_supplement/",
        "SIGNER_CONNECT_STRATEGY": strategy,
    }
    with service_stack(env=env) as stack:
        key = issue_key(stack.env, "connect@example.com", "api_key")
        yield ConnectStack(stack, strategy, port, key)


@pytest.fixture(scope="module")
async def tiktok(connect_stack: ConnectStack) -> AsyncIterator[Sandbox]:
    """One sandbox per stack: the ttwid our stack caches in Redis stays one it issued."""
    mode: Mode = "fetch" if connect_stack.strategy == "fetch" else "socket"
    async with Sandbox(mode=mode, port=connect_stack.sandbox_port) as sandbox:
        yield sandbox


@pytest.fixture
def live(tiktok: Sandbox) -> Sandbox:
    # A live end turns the room offline until told otherwise; every test starts live.
    tiktok.set_live("sandbox", True)
    return tiktok


@dataclass
class ClientRun:
    """A client process and the events it printed so far."""

    name: str
    process: asyncio.subprocess.Process
    events: list[dict[str, object]] = field(default_factory=list)
    stderr: bytes = b""
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    def start_reading(self) -> None:
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            text = line.decode().strip()
            with contextlib.suppress(json.JSONDecodeError):
                event = json.loads(text)
                if isinstance(event, dict):
                    self.events.append(event)
            self._changed.set()
        self._changed.set()

    @property
    def ended(self) -> bool:
        return self._reader is not None and self._reader.done()

    def of(self, kind: str) -> list[dict[str, object]]:
        return [event for event in self.events if event.get("event") == kind]

    def report(self) -> str:
        err = self.stderr.decode(errors="replace")[-3000:]
        return f"{self.name} printed {self.events}; stderr tail:\n{err}"

    async def wait_for(self, kind: str, timeout: float = EVENT_TIMEOUT) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while not self.of(kind):
            if kind != "error" and self.of("error"):
                await self.finish()
                raise AssertionError(f"{self.name} failed: {self.report()}")
            if self.ended:
                await self.finish()
                raise AssertionError(f"{self.name} ended before {kind!r}: {self.report()}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"no {kind!r} from {self.name} in {timeout} s: " + self.report()
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.2))
        return self.of(kind)[0]

    async def finish(self, timeout: float = 20.0) -> int:
        """Wait for the process to exit (killing it after `timeout`); its exit status."""
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        if self._reader is not None:
            await self._reader
        if self.process.stderr is not None and not self.stderr:
            self.stderr = await self.process.stderr.read()
        assert self.process.returncode is not None
        return self.process.returncode


async def _spawn(name: str, argv: list[str], env: dict[str, str], cwd: Path) -> ClientRun:
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    run = ClientRun(name, process)
    run.start_reading()
    return run


@contextlib.asynccontextmanager
async def running(run: ClientRun) -> AsyncIterator[ClientRun]:
    try:
        yield run
    finally:
        if run.process.returncode is None:
            run.process.kill()
        await run.finish()


def _client_env(**extra: str) -> dict[str, str]:
    # A developer's own SIGN_API_* must not send a client anywhere but where we say.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGN_API_")}
    env.update(extra)
    return env


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node not on PATH: install Debian's nodejs and npm to run the npm clients")
    return node


async def _new_socket(
    tiktok: Sandbox, known: set[int], run: ClientRun, *, entered: bool
) -> PushSession:
    """The client's push socket: one opened after `known` was taken (that entered the room,
    when asked)."""
    room = tiktok.room("sandbox")
    deadline = time.monotonic() + EVENT_TIMEOUT
    while time.monotonic() < deadline:
        for session in tiktok.sockets:
            if id(session) in known or session.room is not room or session.closed.is_set():
                continue
            if not entered or session.entered.is_set():
                return session
        if run.of("error") or run.ended:
            await run.finish()
            raise AssertionError(f"{run.name} opened no socket: {run.report()}")
        await asyncio.sleep(0.05)
    raise AssertionError(f"{run.name} opened no push socket in {EVENT_TIMEOUT} s: {run.report()}")


async def _stream_to(
    tiktok: Sandbox, run: ClientRun, known: set[int], *, entered: bool, text: str
) -> PushSession:
    """Once the client's socket is open: a chat and a gift, then the live end; check that the
    client reported each as its own event and stopped."""
    session = await _new_socket(tiktok, known, run, entered=entered)
    assert await tiktok.send("sandbox", Chat(text, ANN), Gift(name="Rose", user=ANN)) >= 1
    chat = await run.wait_for("chat")
    gift = await run.wait_for("gift")
    assert await tiktok.send("sandbox", LiveEnd()) >= 1
    await run.wait_for("live_end")
    status = await run.finish()

    assert chat == {"event": "chat", "text": text, "nickname": "Ann", "unique_id": "ann"}
    assert gift["name"] == "Rose", gift
    assert gift["gift_id"] == 5655, gift
    assert (gift["nickname"], gift["unique_id"]) == ("Ann", "ann"), gift
    kinds = [event["event"] for event in run.events]
    assert kinds.index("chat") < kinds.index("gift") < kinds.index("live_end"), kinds
    assert status == 0, run.report()
    return session


def _known_sockets(tiktok: Sandbox) -> set[int]:
    return {id(session) for session in tiktok.sockets}


def _connects(base: str, route: str, strategy: str, outcome: str) -> float:
    """signer_connects_total for these labels, from the API's /metrics (0 when absent)."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
        text = response.read().decode()
    labels = {"route": route, "strategy": strategy, "outcome": outcome}
    for line in text.splitlines():
        match = re.match(r"signer_connects_total\{(.*)\} (\S+)$", line)
        if match and dict(re.findall(r'(\w+)="([^"]*)"', match.group(1))) == labels:
            return float(match.group(2))
    return 0.0


def _assert_upstream(tiktok: Sandbox, strategy: str, fetches_before: int) -> None:
    """Our stack met the sandbox the way the strategy says."""
    outcomes = tiktok.requests.outcomes("im_fetch")[fetches_before:]
    if strategy == "fetch":
        assert "ok" in outcomes, f"our stack made no accepted im/fetch: {outcomes}"
    else:
        assert "ok" not in outcomes, f"an im/fetch answered in socket mode: {outcomes}"


def test_tiktok_live_connector_2_is_installed_under_its_alias(node_client: Path) -> None:
    manifest = json.loads((node_client / "node_modules" / "tlc2" / "package.json").read_text())
    assert (manifest["name"], manifest["version"]) == ("tiktok-live-connector", "2.5.0")
    lock = json.loads((node_client / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/tlc2"]["version"] == "2.5.0"


async def test_tiktoklive_connects_by_handle(
    connect_stack: ConnectStack, live: Sandbox, tiktoklive: object
) -> None:
    tiktok, strategy = live, connect_stack.strategy
    before_pages = tiktok.requests.count("live_page")
    fetches_before = len(tiktok.requests.of("im_fetch"))
    known = _known_sockets(tiktok)
    argv = [
        sys.executable,
        str(PYTHON_CLIENT),
        connect_stack.base,
        connect_stack.key,
        tiktok.web_url,
        tiktok.webcast_url,
    ]
    run = await _spawn("TikTokLive 6.6.6", argv, _client_env(), HERE)
    async with running(run):
        # entered: TikTokLive sends im_enter_room only when our answer had is_first set.
        session = await _stream_to(
            tiktok, run, known, entered=True, text=f"hello TikTokLive over {strategy}"
        )
    assert run.of("connected")[0]["room_id"] == DEFAULT_ROOM_ID
    # It found the room by handle itself (the live page), then connected through us.
    assert tiktok.requests.count("live_page") > before_pages
    assert session.heartbeats, "TikTokLive sent no heartbeat"
    _assert_upstream(tiktok, strategy, fetches_before)
    assert _connects(connect_stack.base, "webcast_fetch", strategy, "ok") >= 1


async def test_tiktok_live_connector_2_connects_by_handle(
    connect_stack: ConnectStack, live: Sandbox, node_client: Path
) -> None:
    tiktok, strategy = live, connect_stack.strategy
    before_pages = tiktok.requests.count("live_page")
    fetches_before = len(tiktok.requests.of("im_fetch"))
    known = _known_sockets(tiktok)
    # The scheme trap (spec 8.1): a loopback name would make 2.5.0 speak https to the sandbox;
    # 0.0.0.0 reaches the same loopback server over http.
    host = f"0.0.0.0:{tiktok.port}"
    env = _client_env(SIGN_API_URL=connect_stack.base, SIGN_API_KEY=connect_stack.key)
    run = await _spawn(
        "tiktok-live-connector 2.5.0", [_node(), "connect_v2.mjs", host], env, node_client
    )
    async with running(run):
        session = await _stream_to(
            tiktok, run, known, entered=True, text=f"hello TTLC 2 over {strategy}"
        )
    assert run.of("connected")[0]["room_id"] == DEFAULT_ROOM_ID
    assert tiktok.requests.count("live_page") > before_pages
    # TTLC keeps only the first pair of X-Set-TT-Cookie: the socket got ttwid, so it was first.
    cookies = [value for name, value in session.headers if name.lower() == "cookie"]
    assert cookies, session.headers
    assert cookies[0].startswith("ttwid="), cookies
    _assert_upstream(tiktok, strategy, fetches_before)
    assert _connects(connect_stack.base, "rooms_connect", strategy, "ok") >= 1


async def test_tiktok_live_connector_1_connects_by_handle(
    connect_stack: ConnectStack, live: Sandbox, node_client: Path
) -> None:
    tiktok, strategy = live, connect_stack.strategy
    fetches_before = len(tiktok.requests.of("im_fetch"))
    known = _known_sockets(tiktok)
    # Set up as the README says: the library's web and webcast hosts on the sandbox (its
    # room/info included). 1.x asks us to sign the im/fetch URL it built for the sandbox,
    # which our stack, pointed at the sandbox, signs as webcast.tiktok.com's and answers
    # on the sandbox again; 1.x then fetches it itself.
    argv = [
        _node(),
        "connect_v1.js",
        f"{connect_stack.base}/",
        tiktok.web_url,
        tiktok.webcast_url,
    ]
    argv.append(connect_stack.key)
    run = await _spawn("tiktok-live-connector 1.2.3", argv, _client_env(), node_client)
    async with running(run):
        if strategy == "socket":
            # 1.x fetches im/fetch itself with the URL we sign; a TikTok that answers it
            # empty leaves 1.x nothing to open a socket with, whatever our strategy.
            error = await run.wait_for("error")
            assert "Missing cursor" in str(error["error"]), run.report()
            return
        # 1.x never sends im_enter_room: the sandbox starts pushing on open.
        await _stream_to(tiktok, run, known, entered=False, text="hello TTLC 1 over fetch")
    assert run.of("connected")[0]["room_id"] == DEFAULT_ROOM_ID
    # The client fetched the URL we signed itself, and the sandbox accepted its signature.
    assert "ok" in tiktok.requests.outcomes("im_fetch")[fetches_before:]
    assert tiktok.requests.count("room_info") >= 1  # its own room/info reached the sandbox
