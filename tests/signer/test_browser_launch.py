"""The Chromium we launch: our switches only, no driver process, one renderer per page,
and nothing left behind when the pool closes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from signer import Signer, SignerSettings, SignRequest
from signer.browser import BrowserEngine
from signer.browser.chromium import PROFILE_PREFIX
from signer.browser.launch import DISABLED_FEATURES
from signer.browser.procs import cmdline, descendants

from .conftest import FETCH_URL


def _args(pid: int) -> list[str]:
    # Chromium's helper processes rewrite their command line as one string with spaces.
    raw = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    return [part for arg in raw.split("\0") for part in arg.split(" ") if part]


def _present(folder: Path) -> bool:
    return folder.is_dir()


def _pool(signer: Signer) -> BrowserEngine:
    assert isinstance(signer.engine, BrowserEngine)
    return signer.engine


async def test_chromium_runs_with_our_switches_alone(browser_signer: Signer) -> None:
    await browser_signer.sign(SignRequest(FETCH_URL))
    pid = _pool(browser_signer).pool.browser_pid
    assert pid is not None
    args = _args(pid)
    lists = [arg.split("=", 1)[1] for arg in args if arg.startswith("--disable-features=")]
    assert lists == [",".join(DISABLED_FEATURES)]  # Chromium obeys only the last one
    assert "--enable-automation" not in args
    assert "--headless" in args
    assert "--remote-debugging-port=0" in args
    assert not any(a.startswith("--remote-debugging-pipe") for a in args)


async def test_no_driver_process_runs_beside_chromium(browser_signer: Signer) -> None:
    # Chromium is our own child, and no Node (Playwright's driver) is.
    await browser_signer.sign(SignRequest(FETCH_URL))
    pid = _pool(browser_signer).pool.browser_pid
    ours = descendants(os.getpid())
    assert pid in ours
    assert not [p for p in ours if "node" in Path(cmdline(p)[0] if cmdline(p) else "").name]


async def test_one_renderer_per_warm_page(browser_signer: Signer) -> None:
    # No omnibox-popup WebUI renderer per context, no spare renderer: only the pages'.
    await browser_signer.sign(SignRequest(FETCH_URL))
    pool = _pool(browser_signer).pool
    pid = pool.browser_pid
    assert pid is not None
    renderers = [p for p in descendants(pid) if "--type=renderer" in _args(p)]
    assert 1 <= len(renderers) <= pool.stats.contexts_configured


async def test_close_leaves_no_process_and_no_profile(require_chromium: None) -> None:
    async with Signer(SignerSettings(engine="browser", contexts=1)) as signer:
        await signer.sign(SignRequest(FETCH_URL))
        browser = _pool(signer).pool._browser
        assert browser is not None
        tree = [browser.pid, *descendants(browser.pid)]
        profile = browser.profile
        assert profile.is_dir()
    assert not profile.exists()
    assert [p for p in tree if cmdline(p)] == []  # gone (a zombie's command line is empty)


def test_extra_switches_are_read_as_a_shell_would(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNER_CHROMIUM_ARGS", "--js-flags='--a --b' --disable-features=X,Y")
    assert SignerSettings().chromium_args == ["--js-flags=--a --b", "--disable-features=X,Y"]


async def test_extra_switches_reach_chromium_after_ours(require_chromium: None) -> None:
    settings = SignerSettings(engine="browser", contexts=1, chromium_args=["--signer-test-switch"])
    async with Signer(settings) as signer:
        pid = _pool(signer).pool.browser_pid
        assert pid is not None
        assert cmdline(pid)[-1] == "--signer-test-switch"


_HOST = """
import asyncio, sys
from signer import SignerSettings
from signer.browser.pool import ContextPool
from signer.profiles import PROFILES

async def main() -> None:
    pool = ContextPool(SignerSettings(engine="browser", contexts=1), PROFILES)
    await pool.start()
    print(pool.browser_pid, flush=True)
    await asyncio.sleep(120)

import uvloop
(uvloop.run if sys.argv[1] == "uvloop" else asyncio.run)(main())
"""


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_chromium_dies_with_a_worker_killed_hard(require_chromium: None, loop: str) -> None:
    host = subprocess.Popen([sys.executable, "-c", _HOST, loop], stdout=subprocess.PIPE, text=True)
    try:
        assert host.stdout is not None
        pid = int(host.stdout.readline())
        tree = [pid, *descendants(pid)]
        assert cmdline(pid), "Chromium is not running"
        host.send_signal(signal.SIGKILL)
        host.wait(timeout=10)
        deadline = time.monotonic() + 10
        while [p for p in tree if cmdline(p)] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [p for p in tree if cmdline(p)] == [], "Chromium outlived its worker"
    finally:
        host.kill()
        host.wait()


async def test_a_launch_removes_profiles_left_by_dead_browsers(require_chromium: None) -> None:
    root = Path(tempfile.gettempdir())
    stale = Path(tempfile.mkdtemp(prefix=PROFILE_PREFIX, dir=root))
    fresh = Path(tempfile.mkdtemp(prefix=PROFILE_PREFIX, dir=root))
    (stale / "Local State").write_text("{}")
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    try:
        async with Signer(SignerSettings(engine="browser", contexts=1)) as signer:
            live = _pool(signer).pool._browser
            assert live is not None
            assert (_present(stale), _present(fresh), _present(live.profile)) == (
                False,
                True,  # may be another pool's, launching
                True,
            )
    finally:
        shutil.rmtree(stale, ignore_errors=True)
        shutil.rmtree(fresh, ignore_errors=True)


async def test_a_hung_browser_is_closed_in_seconds(require_chromium: None) -> None:
    signer = Signer(SignerSettings(engine="browser", contexts=4))
    await signer.start()
    pool = _pool(signer).pool
    await pool.wait_warm()
    pid = pool.browser_pid
    assert pid is not None
    tree = [pid, *descendants(pid)]
    os.killpg(pid, signal.SIGSTOP)  # the browser and its helpers: nothing answers
    started = time.monotonic()
    await signer.close()
    assert time.monotonic() - started < 10
    assert [p for p in tree if cmdline(p)] == []


async def test_a_string_orjson_refuses_does_not_break_the_page(browser_signer: Signer) -> None:
    # Chromium escapes a lone surrogate as \\ud800, which orjson will not decode.
    warm = _pool(browser_signer).pool.contexts()[0]
    assert await warm.evaluate("'a\\ud800b'") == "a\ud800b"
    assert not warm.channel.closed
    await browser_signer.sign(SignRequest(FETCH_URL))
