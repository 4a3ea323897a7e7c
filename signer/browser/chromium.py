"""A Chromium we launch and drive over DevTools ourselves: no driver process between.

The browser runs headless with a private profile folder and a DevTools server on a
loopback port it picks. This process holds one connection to the browser (contexts and
pages are made there) and one per warm page (`devtools.PageChannel`). The browser is
lost when its process exits or its connection drops; `on_lost` callbacks hear of it
once, whichever comes first.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import aiohttp

from ..errors import EngineUnavailable
from .cdp import CdpConnection
from .launch import CHROMIUM_ARGS, HEADLESS_ARGS, devtools_endpoint
from .procs import cmdline, parent_death_signal

__all__ = ["Chromium"]

_CLOSE_GRACE = 3.0  # seconds a closing browser gets before it is killed
PROFILE_PREFIX = "signer-chromium-"  # of each browser's private profile folder
# A profile folder no Chromium uses is removed at the next launch once it is this old
# (a younger one may be another pool's, launching): what a worker killed hard leaves.
_STALE_PROFILE_AGE = 60.0


class Chromium:
    """One running Chromium: its process, profile folder and browser connection."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        profile: Path,
        port: int,
        browser: CdpConnection,
        version: str,
    ) -> None:
        self.process = process
        self.profile = profile
        self.port = port
        self.version = version  # "156.0.8078.114"
        self._browser = browser
        self._lost_callbacks: list[Callable[[Chromium], None]] = []
        self._ended = False  # lost or closed: no callbacks after either
        self._watcher = asyncio.create_task(self._watch(), name=f"chromium-{process.pid}")
        browser.on_close(lambda _reason: self._report_lost())

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def connected(self) -> bool:
        return not self._ended

    @classmethod
    async def launch(
        cls,
        executable: str,
        session: aiohttp.ClientSession,
        timeout: float,
        marker: str,
        extra_args: Sequence[str] = (),
    ) -> Chromium:
        """Start Chromium and connect to it; `marker` is an extra switch Chromium ignores
        (it lets a test, or an operator, tell this browser's processes from others), and
        `extra_args` come after ours (`SIGNER_CHROMIUM_ARGS`)."""
        _remove_stale_profiles()
        profile = Path(tempfile.mkdtemp(prefix=PROFILE_PREFIX))
        args = [
            *CHROMIUM_ARGS,
            *HEADLESS_ARGS,
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            marker,
            *extra_args,
        ]
        try:
            # Its own session: on close the whole tree (zygotes, renderers) is signalled;
            # and it dies with this process (its helpers follow it: their IPC closes).
            process = await asyncio.create_subprocess_exec(
                executable,
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=parent_death_signal(signal.SIGKILL),
            )
        except OSError as error:
            shutil.rmtree(profile, ignore_errors=True)
            raise EngineUnavailable(f"Chromium failed to start ({executable}): {error}") from error
        exited = asyncio.ensure_future(process.wait())
        browser = CdpConnection(f"chromium {process.pid}")
        try:
            async with asyncio.timeout(timeout):
                port, path = await devtools_endpoint(profile, timeout, exited)
                await browser.connect(session, f"ws://127.0.0.1:{port}{path}")
                product = (await browser.send("Browser.getVersion"))["product"]
        except BaseException as error:
            await browser.close()
            await _terminate(process)
            shutil.rmtree(profile, ignore_errors=True)
            if isinstance(error, TimeoutError):
                raise EngineUnavailable(
                    f"Chromium did not start within {timeout:g} s ({executable})"
                ) from None
            raise
        finally:
            exited.cancel()
        return cls(process, profile, port, browser, product.rsplit("/", 1)[-1])

    def on_lost(self, callback: Callable[[Chromium], None]) -> None:
        self._lost_callbacks.append(callback)

    def page_socket_url(self, target_id: str) -> str:
        return f"ws://127.0.0.1:{self.port}/devtools/page/{target_id}"

    async def new_context(self) -> str:
        """A new browser context (its own cookies, storage and renderers): its id."""
        created = await self._browser.send("Target.createBrowserContext", {})
        context_id: str = created["browserContextId"]
        return context_id

    async def new_page(self, context_id: str, width: int, height: int) -> str:
        """A blank page in context `context_id`, in a window of `width` x `height` (the
        window's outer size, which a page can read): its target id."""
        created = await self._browser.send(
            "Target.createTarget",
            {
                "url": "about:blank",
                "browserContextId": context_id,
                "width": width,
                "height": height,
            },
        )
        target_id: str = created["targetId"]
        return target_id

    async def close_context(self, context_id: str) -> None:
        """Close a context and its pages; quietly, when the browser is gone."""
        if self._ended:
            return
        with contextlib.suppress(EngineUnavailable, TimeoutError):
            async with asyncio.timeout(5):
                await self._browser.send(
                    "Target.disposeBrowserContext", {"browserContextId": context_id}
                )

    async def close(self) -> None:
        """Ask Chromium to quit, kill it if it lingers, and remove its profile folder."""
        self._ended = True  # closing is not losing: no callbacks
        if self.process.returncode is None:
            with contextlib.suppress(EngineUnavailable, TimeoutError):
                async with asyncio.timeout(1):
                    await self._browser.send("Browser.close")
        await self._browser.close()
        await _terminate(self.process)
        self._watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._watcher
        shutil.rmtree(self.profile, ignore_errors=True)

    async def _watch(self) -> None:
        await self.process.wait()
        self._report_lost()

    def _report_lost(self) -> None:
        if self._ended:
            return
        self._ended = True
        for callback in self._lost_callbacks:
            callback(self)


async def _terminate(process: asyncio.subprocess.Process) -> None:
    """End Chromium and every process of its session (helpers it left behind included)."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_CLOSE_GRACE):
                await process.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.returncode is None:
        await process.wait()


def _remove_stale_profiles() -> None:
    """Remove the profile folders of browsers that are gone (their worker was killed
    before it could remove them): not named by any running process, and not new."""
    root = Path(tempfile.gettempdir())
    found = list(root.glob(PROFILE_PREFIX + "*"))
    if not found:
        return
    in_use = set()
    for pid in (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()):
        for arg in cmdline(pid):
            if arg.startswith("--user-data-dir=" + str(root / PROFILE_PREFIX)):
                in_use.add(arg.split("=", 1)[1])
    now = time.time()
    for folder in found:
        with contextlib.suppress(OSError):
            if str(folder) not in in_use and now - folder.stat().st_mtime > _STALE_PROFILE_AGE:
                shutil.rmtree(folder, ignore_errors=True)
