"""The Chromium we launch: Playwright's disabled features kept, and one renderer per page."""

from __future__ import annotations

from pathlib import Path

from signer import Signer, SignRequest
from signer.browser import BrowserEngine
from signer.browser.launch import DISABLED_FEATURES
from signer.browser.procs import descendants

from .conftest import FETCH_URL


def _args(pid: int) -> list[str]:
    # Chromium's helper processes rewrite their command line as one string with spaces.
    raw = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    return [part for arg in raw.split("\0") for part in arg.split(" ") if part]


async def test_playwrights_disabled_features_survive_ours(browser_signer: Signer) -> None:
    # Chromium obeys only the last --disable-features: ours must hold Playwright's too.
    await browser_signer.sign(SignRequest(FETCH_URL))
    assert isinstance(browser_signer.engine, BrowserEngine)
    pid = browser_signer.engine.pool.browser_pid
    assert pid is not None
    lists = [
        set(arg.split("=", 1)[1].split(","))
        for arg in _args(pid)
        if arg.startswith("--disable-features=")
    ]
    assert len(lists) >= 2, "Playwright no longer passes --disable-features: simplify ours"
    effective = lists[-1]
    assert effective == set(DISABLED_FEATURES)
    for earlier in lists[:-1]:
        assert earlier <= effective, f"Playwright now disables {earlier - effective} too"


async def test_one_renderer_per_warm_page(browser_signer: Signer) -> None:
    # No omnibox-popup WebUI renderer per context, no spare renderer: only the pages'.
    await browser_signer.sign(SignRequest(FETCH_URL))
    assert isinstance(browser_signer.engine, BrowserEngine)
    pool = browser_signer.engine.pool
    pid = pool.browser_pid
    assert pid is not None
    renderers = [p for p in descendants(pid) if "--type=renderer" in _args(p)]
    assert 1 <= len(renderers) <= pool.stats.contexts_configured
