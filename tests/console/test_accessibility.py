"""Every console page, at a desktop and a phone's size, passes axe-core (the npm package,
injected into the page) with no serious or critical violation."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, ViewportSize

from tests.console.conftest import Mailbox
from tests.console.tour import Stop, Tour, console_tour
from tests.service_stack import ServiceStack

NODE_DIR = Path(__file__).parent / "node"
AXE = NODE_DIR / "node_modules" / "axe-core" / "axe.min.js"
VIEWPORTS: tuple[ViewportSize, ...] = (
    {"width": 1280, "height": 800},
    {"width": 390, "height": 844},
)


def axe_script() -> Path:
    """axe-core's script, installed from npm when missing (`npm ci` in tests/console/node)."""
    if not AXE.is_file():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm not on PATH: install Debian's npm to run the accessibility check")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=300
        )
    return AXE


async def open_as(
    browser: Browser, stop: Stop, base: str, viewport: ViewportSize
) -> BrowserContext:
    """A browser context at `viewport`, signed in as the stop's visitor (their session
    cookie), or signed out. The page's CSP is bypassed only so axe can be injected."""
    context = await browser.new_context(base_url=base, viewport=viewport, bypass_csp=True)
    if stop.who is not None:
        cookie = stop.who.session_cookie()
        assert cookie
        await context.add_cookies(
            [{"name": "signer_console", "value": cookie, "url": base, "httpOnly": True}]
        )
    return context


@pytest.fixture
async def tour(console_stack: ServiceStack, mailbox: Mailbox) -> AsyncIterator[Tour]:
    made = await console_tour(console_stack, mailbox)
    try:
        yield made
    finally:
        await made.close()


async def test_every_page_passes_axe(
    browser: Browser, console_stack: ServiceStack, tour: Tour
) -> None:
    script = axe_script()
    failures: list[str] = []
    for viewport in VIEWPORTS:
        for stop in tour.stops:
            context = await open_as(browser, stop, console_stack.base, viewport)
            page = await context.new_page()
            answer = await page.goto(stop.path)
            assert answer is not None
            expected = 404 if stop.name == "not-found" else 200
            assert answer.status == expected, (stop.name, answer.status)
            await page.add_script_tag(path=str(script))
            result: dict[str, Any] = await page.evaluate(
                "async () => await axe.run(document, {resultTypes: ['violations']})"
            )
            for violation in result["violations"]:
                if violation["impact"] in ("serious", "critical"):
                    where = [node["target"] for node in violation["nodes"]][:3]
                    failures.append(
                        f"{stop.name} {viewport['width']}px: {violation['id']} "
                        f"({violation['impact']}) {violation['help']} at {json.dumps(where)}"
                    )
            await context.close()
    assert not failures, "\n".join(failures)
