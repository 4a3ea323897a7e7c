"""One warm browser context: a profile, a page with our bundle, and its channel."""

from __future__ import annotations

import asyncio
import time
from importlib.resources import files
from typing import Any

import aiohttp
from playwright.async_api import Browser, BrowserContext, Page, Route

from ..errors import EngineUnavailable
from ..models import Navigator
from ..profiles import Profile, browser_params
from .devtools import PageChannel
from .page_contract import PageItem, PageResult

__all__ = ["PAGE_URL", "WarmContext", "page_html"]

# The signing page is served by Playwright's router, never fetched: it has TikTok's origin,
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
        context: BrowserContext,
        page: Page,
        channel: PageChannel,
        canvas: int,
        navigator: Navigator,
    ) -> None:
        self.slot = slot
        self.profile = profile
        self.context = context
        self.page = page
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
        browser: Browser,
        devtools_port: int,
        session: aiohttp.ClientSession,
        html: str,
        profile: Profile,
        slot: str,
        vendor_scripts: list[str],
        timeout: float,
    ) -> WarmContext:
        """Create the context, load the page, compute its canvas and connect its channel."""
        full_version = browser.version
        user_agent = profile.user_agent(int(full_version.split(".")[0]))
        async with asyncio.timeout(timeout):
            context = await browser.new_context(
                user_agent=user_agent,
                locale=profile.language,
                timezone_id=profile.timezone,
                viewport={"width": profile.viewport_width, "height": profile.viewport_height},
                screen={"width": profile.screen_width, "height": profile.screen_height},
                device_scale_factor=profile.device_scale_factor,
            )
        channel = PageChannel(slot)

        async def serve(route: Route) -> None:
            # Our page, and nothing else: a vendor script's own requests go nowhere.
            if route.request.url == PAGE_URL:
                await route.fulfill(status=200, content_type="text/html", body=html)
            else:
                await route.abort()

        try:
            async with asyncio.timeout(timeout):
                await context.route("**/*", serve)
                for script in vendor_scripts:
                    await context.add_init_script(script=script)
                page = await context.new_page()
                page.on("crash", lambda _page: channel.fail(f"page {slot} crashed"))
                cdp = await context.new_cdp_session(page)
                # Chromium derives navigator.languages from this list and adds q-values
                # to the Accept-Language header itself.
                accept_language = ",".join(profile.languages)
                await cdp.send(
                    "Emulation.setUserAgentOverride",
                    {
                        "userAgent": user_agent,
                        "acceptLanguage": accept_language,
                        "platform": profile.platform,
                        "userAgentMetadata": _client_hints(profile, full_version),
                    },
                )
                await page.goto(PAGE_URL)
                report: dict[str, Any] = await page.evaluate(
                    "(config) => globalThis.__ttsigner.init(config)",
                    {
                        "profileId": profile.id,
                        "header": list(profile.header),
                        "canvasVariant": profile.canvas_variant.to_js(),
                        "vendor": bool(vendor_scripts),
                    },
                )
                # The session stays open: the overrides above last only as long as it does.
                target = (await cdp.send("Target.getTargetInfo"))["targetInfo"]["targetId"]
                url = f"ws://127.0.0.1:{devtools_port}/devtools/page/{target}"
                await channel.connect(session, url, timeout)
        except BaseException:
            await channel.close()
            await _close_quietly(context)
            raise
        live = report["navigator"]
        if (
            live["webdriver"]
            or "Headless" in live["user_agent"]
            or live["user_agent"] != user_agent
        ):
            await _close_quietly(context)
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
        return cls(slot, profile, context, page, channel, int(report["canvas"]), navigator)

    async def sign(self, items: list[PageItem], timeout: float) -> list[PageResult]:
        results = await self.channel.call(items, timeout)
        self.signed += len(items)
        return results

    def due_for_recycle(self, max_signatures: int, max_age: float) -> bool:
        return self.signed >= max_signatures or time.monotonic() - self.created >= max_age

    async def close(self) -> None:
        await self.channel.close()
        await _close_quietly(self.context)


async def _close_quietly(context: BrowserContext) -> None:
    # Closing a context of a dead browser raises or hangs; either way it is gone.
    try:
        async with asyncio.timeout(5):
            await context.close()
    except Exception:
        pass
