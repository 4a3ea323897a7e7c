"""Finding and launching Chromium."""

from __future__ import annotations

import shutil
from pathlib import Path

from playwright.async_api import Browser, Playwright

from ..errors import EngineUnavailable
from .devtools import DEVTOOLS_PORT_ARG

__all__ = [
    "CHROMIUM_ARGS",
    "DISABLED_FEATURES",
    "PLAYWRIGHT_DISABLED_FEATURES",
    "launch_browser",
    "resolve_executable",
]

# Chromium obeys only the last `--disable-features` it is given, and Playwright passes its
# own list first, so ours repeats Playwright's (as of 1.65; tests/signer/test_browser_launch.py
# fails when Playwright's list gains a feature ours lacks) and adds:
# - WebUIOmniboxPopup, WebUIOmniboxAimPopup: headless Chromium still builds a browser
#   window per context, and each window's omnibox popup is a WebUI page, never shown, in
#   a renderer of its own: a second renderer for every context (see BENCHMARKS.md);
# - SpareRendererForSitePerProcess: a renderer kept started for the next tab, which a
#   signer opens only when it recycles a context (that open now starts its renderer).
PLAYWRIGHT_DISABLED_FEATURES = (
    "AvoidUnnecessaryBeforeUnloadCheckSync",
    "DestroyProfileOnBrowserClose",
    "HttpsUpgrades",
    "HttpsFirstBalancedModeAutoEnable",
    "LensOverlay",
    "MediaRouter",
    "PaintHolding",
    "ThirdPartyStoragePartitioning",
    "AvoidCorsURLLoaderRestartOnRedirect",
    "TcpPortRandomizationWin",
    "OptimizationHints",
    "NetworkTimeServiceQuerying",
    "AimEnabled",
    "PreconnectToSearch",
    "msForceBrowserSignIn",
    "msEdgeUpdateLaunchServicesPreferredVersion",
)
DISABLED_FEATURES = (
    *PLAYWRIGHT_DISABLED_FEATURES,
    "WebUIOmniboxPopup",
    "WebUIOmniboxAimPopup",
    "SpareRendererForSitePerProcess",
)

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
    "--disable-features=" + ",".join(DISABLED_FEATURES),
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
