"""The Chromium we launch: our switches only, no driver process, one renderer per page,
and nothing left behind when the pool closes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from signer import Signer, SignerSettings, SignRequest
from signer.browser import BrowserEngine
from signer.browser.launch import DISABLED_FEATURES
from signer.browser.procs import cmdline, descendants

from .conftest import FETCH_URL


def _args(pid: int) -> list[str]:
    # Chromium's helper processes rewrite their command line as one string with spaces.
    raw = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    return [part for arg in raw.split("\0") for part in arg.split(" ") if part]


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
