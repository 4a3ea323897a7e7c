"""Finding and launching Chromium."""

from __future__ import annotations

import shutil
from pathlib import Path

from playwright.async_api import Browser, Playwright

from ..errors import EngineUnavailable
from .devtools import DEVTOOLS_PORT_ARG

__all__ = ["CHROMIUM_ARGS", "launch_browser", "resolve_executable"]

# Network-quiet flags: this service's hosts often have no route to Google, and Chromium's
# background services would otherwise retry connections all day.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-blink-features=AutomationControlled",
    "--disable-renderer-backgrounding",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
)
_SYSTEM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


def resolve_executable(playwright: Playwright, configured: str | None) -> str:
    """The Chromium to run: configured, else Playwright's own, else the system's."""
    if configured:
        if not Path(configured).is_file():
            raise EngineUnavailable(f"SIGNER_CHROMIUM_PATH {configured!r} does not exist")
        return configured
    try:
        own = playwright.chromium.executable_path
    except Exception:
        own = ""
    if own and Path(own).is_file():
        return own
    for candidate in _SYSTEM_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    raise EngineUnavailable(
        "no Chromium found: install Debian's `chromium` package, or set SIGNER_CHROMIUM_PATH"
    )


async def launch_browser(
    playwright: Playwright, executable: str, timeout: float, marker: str
) -> Browser:
    """Launch headless Chromium without the automation switches that flag it as driven.

    `marker` is an extra switch Chromium ignores; it lets us find this browser's process.
    """
    try:
        return await playwright.chromium.launch(
            executable_path=executable,
            args=[*CHROMIUM_ARGS, DEVTOOLS_PORT_ARG, marker],
            ignore_default_args=["--enable-automation"],
            headless=True,
            timeout=timeout * 1000,
        )
    except Exception as error:
        raise EngineUnavailable(f"Chromium failed to start ({executable}): {error}") from error
