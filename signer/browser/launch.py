"""Finding Chromium, the switches we run it with, and the DevTools endpoint it opens."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from ..errors import EngineUnavailable

__all__ = [
    "CHROMIUM_ARGS",
    "DEVTOOLS_ENDPOINT_FILE",
    "DISABLED_FEATURES",
    "HEADLESS_ARGS",
    "devtools_endpoint",
    "resolve_executable",
]

# Chromium obeys only the last `--disable-features` it is given: this is the one list.
# - features a driven headless browser does without: bounded shutdown and unload, no
#   HTTPS upgrade of the page we serve by interception, no paint holding, no third-party
#   storage partitioning, no Google services (optimization hints, network time, lens,
#   search preconnect, AI mode, media router);
# - WebUIOmniboxPopup, WebUIOmniboxAimPopup: headless Chromium still builds a browser
#   window per context, and each window's omnibox popup is a WebUI page, never shown, in
#   a renderer of its own: a second renderer for every context (see BENCHMARKS.md);
# - SpareRendererForSitePerProcess: a renderer kept started for the next tab, which a
#   signer opens only when it recycles a context (that open now starts its renderer).
DISABLED_FEATURES = (
    "AvoidUnnecessaryBeforeUnloadCheckSync",
    "DestroyProfileOnBrowserClose",
    "HttpsUpgrades",
    "HttpsFirstBalancedModeAutoEnable",
    "LensOverlay",
    "MediaRouter",
    "PaintHolding",
    "ThirdPartyStoragePartitioning",
    "AvoidCorsURLLoaderRestartOnRedirect",
    "OptimizationHints",
    "NetworkTimeServiceQuerying",
    "AimEnabled",
    "PreconnectToSearch",
    "WebUIOmniboxPopup",
    "WebUIOmniboxAimPopup",
    "SpareRendererForSitePerProcess",
)

# What every Chromium of ours runs with (the signer's, and the tests' web-page browser):
# - network-quiet: this service's hosts often have no route to Google, and Chromium's
#   background services would otherwise retry connections all day;
# - nothing a person would be asked: first run, default browser, keychain, search engine;
# - nothing throttled: pages in windows nobody sees still run their timers at full rate,
#   and DevTools messages at thousands a second are not "IPC flooding";
# - a stable look: sRGB colours (the canvas fingerprint is drawn with them), a fine
#   pointer that hovers (a desktop's), no scrollbars eating the viewport;
# - not flagged as driven: no `--enable-automation`, and `navigator.webdriver` false.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--enable-unsafe-swiftshader",
    "--disable-field-trial-config",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-component-extensions-with-background-pages",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-breakpad",
    "--disable-quic",
    "--metrics-recording-only",
    "--no-service-autorun",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-search-engine-choice-screen",
    "--password-store=basic",
    "--use-mock-keychain",
    "--disable-dev-shm-usage",
    "--disable-back-forward-cache",
    "--disable-hang-monitor",
    "--disable-ipc-flooding-protection",
    "--disable-popup-blocking",
    "--disable-prompt-on-repost",
    "--allow-pre-commit-input",
    "--disable-renderer-backgrounding",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--force-color-profile=srgb",
    "--blink-settings=primaryHoverType=2,availableHoverTypes=2,"
    "primaryPointerType=4,availablePointerTypes=4",
    "--disable-blink-features=AutomationControlled",
    "--disable-features=" + ",".join(DISABLED_FEATURES),
)
# Headless, with no window at start: the signer opens its pages in contexts of its own.
HEADLESS_ARGS = ("--headless", "--hide-scrollbars", "--mute-audio", "--no-startup-window")

_SYSTEM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")

# Chromium writes the port its DevTools server listens on (asked for as port 0) and the
# browser socket's path here, in its profile folder, once it listens.
DEVTOOLS_ENDPOINT_FILE = "DevToolsActivePort"
DEVTOOLS_ENDPOINT_POLL = 0.01


def resolve_executable(configured: str | None) -> str:
    """The Chromium to run: configured, else the system's."""
    if configured:
        if not Path(configured).is_file():
            raise EngineUnavailable(f"SIGNER_CHROMIUM_PATH {configured!r} does not exist")
        return configured
    for candidate in _SYSTEM_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    raise EngineUnavailable(
        "no Chromium found: install Debian's `chromium` package, or set SIGNER_CHROMIUM_PATH"
    )


def _written_endpoint(profile: Path) -> tuple[int, str] | None:
    """(port, browser socket path) from the profile; None while the file is missing or
    half written. (A small file in a private folder: the read does not block.)"""
    try:
        lines = (profile / DEVTOOLS_ENDPOINT_FILE).read_text().split()
        return int(lines[0]), lines[1]
    except (OSError, ValueError, IndexError):
        return None


async def devtools_endpoint(
    profile: Path, timeout: float, alive: asyncio.Future[int] | None = None
) -> tuple[int, str]:
    """The DevTools port and browser socket path of the Chromium using `profile`, waited
    for up to `timeout` seconds; `alive`, when given, is the process's exit (a Chromium
    that exits before it listens fails at once, not at the timeout)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (endpoint := _written_endpoint(profile)) is None:
        if alive is not None and alive.done():
            raise EngineUnavailable(f"Chromium exited with status {alive.result()} at start")
        if loop.time() >= deadline:
            raise EngineUnavailable(f"Chromium did not open its DevTools port within {timeout:g} s")
        await asyncio.sleep(DEVTOOLS_ENDPOINT_POLL)
    return endpoint
