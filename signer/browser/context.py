"""One warm browser context: a profile, a page with our bundle, and its channel."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from importlib.resources import files
from typing import Any

import aiohttp

from ..errors import EngineUnavailable
from ..models import Navigator
from ..profiles import Profile, browser_params
from .cdp import CdpConnection
from .chromium import Chromium
from .devtools import PageChannel
from .page_contract import PageItem, PageResult

__all__ = ["PAGE_URL", "WarmContext", "page_html"]

# The signing page is served by request interception, never fetched: it has TikTok's origin,
# as a vendor script would expect, and is a secure context.
PAGE_URL = "https://www.tiktok.com/"


def page_html() -> str:
    """The signing page: our in-page bundle, inline."""
    bundle = files("signer.bundle").joinpath("signer.js").read_text(encoding="utf-8")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>TikTok</title></head>"
        f"<body><script>{bundle}</script></body></html>"
    )


def _client_hints(profile: Profile, full_version: str) -> dict[str, Any]:
    # Without these the page's userAgentData names only "Chromium" (and the headless
    # build's own brands), contradicting a Chrome User-Agent.
    major = full_version.split(".")[0]
    brands = [("Chromium", major), ("Google Chrome", major), ("Not_A Brand", "24")]
    return {
        "brands": [{"brand": b, "version": v} for b, v in brands],
        "fullVersionList": [
            {"brand": b, "version": full_version if v == major else f"{v}.0.0.0"} for b, v in brands
        ],
        "fullVersion": full_version,
        "platform": profile.ua_platform,
        "platformVersion": profile.ua_platform_version,
        "architecture": "x86",
        "model": "",
        "mobile": False,
        "bitness": "64",
        "wow64": False,
    }


class WarmContext:
    """A browser context bound to one profile, its page loaded and connected."""

    def __init__(
        self,
        slot: str,
        profile: Profile,
        browser: Chromium,
        context_id: str,
        channel: PageChannel,
        canvas: int,
        navigator: Navigator,
    ) -> None:
        self.slot = slot
        self.profile = profile
        self.browser = browser
        self.context_id = context_id
        self.channel = channel
        self.canvas = canvas
        self.navigator = navigator
        self.created = time.monotonic()
        self.signed = 0
        self.broken = False

    @classmethod
    async def open(
        cls,
        *,
        browser: Chromium,
        session: aiohttp.ClientSession,
        html: str,
        profile: Profile,
        slot: str,
        vendor_scripts: list[str],
        timeout: float,
    ) -> WarmContext:
        """Create the context and its page, present the profile, load our page, compute
        its canvas; the page's connection stays open (the overrides last as long as it)."""
        user_agent = profile.user_agent(int(browser.version.split(".")[0]))
        channel = PageChannel(slot)
        context_id = ""
        try:
            async with asyncio.timeout(timeout):
                context_id = await browser.new_context()
                target = await browser.new_page(
                    context_id, profile.viewport_width, profile.viewport_height
                )
                await channel.connect(session, browser.page_socket_url(target), timeout)
                loaded = _serve_page(channel.cdp, html)
                await _present(channel.cdp, profile, user_agent, browser.version)
                for script in vendor_scripts:
                    await channel.cdp.send(
                        "Page.addScriptToEvaluateOnNewDocument", {"source": script}
                    )
                navigated = await channel.cdp.send("Page.navigate", {"url": PAGE_URL})
                if navigated.get("errorText"):
                    raise EngineUnavailable(f"page {slot}: {navigated['errorText']}")
                await loaded
                config = {
                    "profileId": profile.id,
                    "header": list(profile.header),
                    "canvasVariant": profile.canvas_variant.to_js(),
                    "vendor": bool(vendor_scripts),
                }
                report: dict[str, Any] = await channel.evaluate(
                    f"globalThis.__ttsigner.init({json.dumps(config)})", timeout
                )
                await channel.bind(timeout)
                navigator, canvas = _presented(report, user_agent, slot)
        except BaseException as error:
            await channel.close()
            if context_id:
                await browser.close_context(context_id)
            if isinstance(error, TimeoutError):
                raise EngineUnavailable(f"page {slot} did not open in {timeout:g} s") from None
            raise
        return cls(slot, profile, browser, context_id, channel, canvas, navigator)

    async def sign(self, items: list[PageItem], timeout: float) -> list[PageResult]:
        results = await self.channel.call(items, timeout)
        self.signed += len(items)
        return results

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in this context's page."""
        return await self.channel.evaluate(expression)

    def due_for_recycle(self, max_signatures: int, max_age: float) -> bool:
        return self.signed >= max_signatures or time.monotonic() - self.created >= max_age

    async def close(self, *, dispose: bool = True) -> None:
        """Close the page's connection and, unless the browser is closing anyway
        (`dispose` false), the context."""
        await self.channel.close()
        if dispose:
            await self.browser.close_context(self.context_id)


def _presented(report: dict[str, Any], user_agent: str, slot: str) -> tuple[Navigator, int]:
    """The navigator and canvas our page's `init` reported; `EngineUnavailable` when the
    page does not present its profile (or reported something else than it should)."""
    try:
        live = report["navigator"]
        if (
            live["webdriver"]
            or "Headless" in live["user_agent"]
            or live["user_agent"] != user_agent
        ):
            raise EngineUnavailable(f"context {slot} does not present its profile: {live}")
        name, version = browser_params(live["user_agent"])
        navigator = Navigator(
            user_agent=live["user_agent"],
            platform=live["platform"],
            language=live["language"],
            languages=tuple(live["languages"]),
            device_scale_factor=float(live["device_scale_factor"]),
            screen_width=int(live["screen_width"]),
            screen_height=int(live["screen_height"]),
            timezone=live["timezone"],
            browser_name=name,
            browser_version=version,
        )
        return navigator, int(report["canvas"])
    except (KeyError, TypeError, ValueError) as error:
        raise EngineUnavailable(
            f"context {slot} reported an unreadable profile: {error!r}"
        ) from None


def _serve_page(cdp: CdpConnection, html: str) -> asyncio.Future[None]:
    """Serve our page for `PAGE_URL` and fail every other request the page makes (a
    vendor script's own requests go nowhere); the future is the page's load event."""
    body = base64.b64encode(html.encode()).decode()
    loaded: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def paused(params: dict[str, Any]) -> None:
        request_id = params["requestId"]
        if params["request"]["url"] == PAGE_URL:
            headers = [{"name": "Content-Type", "value": "text/html; charset=utf-8"}]
            cdp.post(
                "Fetch.fulfillRequest",
                {
                    "requestId": request_id,
                    "responseCode": 200,
                    "responseHeaders": headers,
                    "body": body,
                },
            )
        else:
            cdp.post("Fetch.failRequest", {"requestId": request_id, "errorReason": "Failed"})

    def load(_params: dict[str, Any]) -> None:
        if not loaded.done():
            loaded.set_result(None)

    def lost(reason: str) -> None:
        if not loaded.done():
            loaded.set_exception(EngineUnavailable(reason))
            loaded.exception()  # retrieved: the open that awaits it (if any) raises it

    cdp.on("Fetch.requestPaused", paused)
    cdp.on("Page.loadEventFired", load)
    cdp.on_close(lost)
    return loaded


async def _present(cdp: CdpConnection, profile: Profile, user_agent: str, version: str) -> None:
    """Make the page present `profile`: its User-Agent and client hints, languages, time
    zone, screen and viewport, and a focused window (as a person's would be)."""
    await cdp.send("Fetch.enable", {"patterns": [{"urlPattern": "*"}]})
    await cdp.send("Page.enable")
    # Chromium derives navigator.languages from this list and adds q-values to the
    # Accept-Language header itself.
    await cdp.send(
        "Emulation.setUserAgentOverride",
        {
            "userAgent": user_agent,
            "acceptLanguage": ",".join(profile.languages),
            "platform": profile.platform,
            "userAgentMetadata": _client_hints(profile, version),
        },
    )
    await cdp.send("Emulation.setLocaleOverride", {"locale": profile.language})
    await cdp.send("Emulation.setTimezoneOverride", {"timezoneId": profile.timezone})
    await cdp.send(
        "Emulation.setDeviceMetricsOverride",
        {
            "width": profile.viewport_width,
            "height": profile.viewport_height,
            "deviceScaleFactor": profile.device_scale_factor,
            "mobile": False,
            "screenWidth": profile.screen_width,
            "screenHeight": profile.screen_height,
            "screenOrientation": {"type": "landscapePrimary", "angle": 0},
        },
    )
    await cdp.send("Emulation.setFocusEmulationEnabled", {"enabled": True})
