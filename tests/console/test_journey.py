"""A person's whole way through the console in a real Chromium: the first operator from
`signer users create --admin`, an invitation caught by the test's SMTP server, the
invited user setting a password, signing in with the keyboard alone, making a key,
signing through the real TikTokLive client, finding the request on the overview and in
requests, finding a failed one by search, revoking the key (then 401) and signing out."""

from __future__ import annotations

import asyncio
import importlib
import re
import time
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.console.conftest import PASSWORD, Mailbox, cli_env, fresh_address
from tests.service_stack import ServiceStack, run_signer

UNSIGNED = (
    "https://webcast.tiktok.com/webcast/im/fetch/?aid=1988&app_name=tiktok_web"
    "&device_platform=web_pc&room_id=7312345678901234567"
)
FOREIGN = "https://evil.example.org/webcast/im/fetch/?room_id=1"
CHROME_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
pytestmark = [
    pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:websockets.exceptions.InvalidStatusCode:DeprecationWarning"),
]


def _signer(base: str, key: str) -> Any:
    module = importlib.import_module("TikTokLive.client.web.web_signer")
    return module.TikTokSigner(sign_api_key=key, sign_api_base=base)


async def _sign(base: str, key: str, url: str) -> Any:
    return await _signer(base, key).webcast_sign(
        url=url, method="GET", sign_url_type="xhr", payload="", user_agent=CHROME_UA
    )


async def _refused_with(base: str, key: str, url: str) -> int:
    """The HTTP status TikTokLive's signer was refused with (it raises, the answer kept)."""
    with pytest.raises(Exception) as refused:  # noqa: PT011 (TikTokLive's own classes)
        await _sign(base, key, url)
    response = getattr(refused.value, "response", None)
    assert response is not None, refused.value
    return int(response.status_code)


async def _set_password(page: Page, link: str) -> None:
    await page.goto(link)
    await page.fill("#password", PASSWORD)
    await page.fill("#confirm", PASSWORD)
    await page.get_by_role("button", name="Set the password and sign in").click()
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()


async def _reload_until(page: Page, url: str, selector: str, pattern: str) -> None:
    """Open `url` again until `selector` holds text matching `pattern` (rows are written
    by the usage writer a fraction of a second after the request)."""
    deadline = time.monotonic() + 15
    text = ""
    while time.monotonic() < deadline:
        await page.goto(url)
        locator = page.locator(selector)
        if await locator.count():
            text = await locator.first.inner_text()
            if re.search(pattern, text):
                return
        await asyncio.sleep(0.3)
    raise AssertionError(f"{selector} on {url} never matched {pattern!r}: {text!r}")


async def test_the_whole_journey(
    browser: Browser, console_stack: ServiceStack, mailbox: Mailbox
) -> None:
    base = console_stack.base
    problems: list[str] = []

    def watch(page: Page) -> None:
        page.on(
            "console",
            lambda message: problems.append(message.text) if message.type == "error" else None,
        )

    # The first operator: the command prints a one-time link to choose a password.
    operator_email = fresh_address("operator")
    link = await asyncio.to_thread(
        run_signer, cli_env(console_stack), "users", "create", operator_email, "--admin"
    )
    assert link.startswith(f"{base}/console/accept?token="), link
    operator_context = await browser.new_context(base_url=base)
    operator = await operator_context.new_page()
    watch(operator)
    await _set_password(operator, link)

    # The operator invites someone; the mail arrives at the SMTP server.
    invited = fresh_address("journey")
    await operator.goto("/console/operator/users")
    await operator.fill("#invite-email", invited)
    await operator.get_by_role("button", name="Send invitation").click()
    await expect(operator.get_by_text(f"Invitation sent to {invited}")).to_be_visible()
    mail = await mailbox.wait_for(invited, "invited")

    context = await browser.new_context(base_url=base, viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    watch(page)
    await _set_password(page, mail.link)
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    # Signing in with the keyboard alone: the address field has the focus.
    assert await page.evaluate("document.activeElement.id") == "email"
    await page.keyboard.type(invited)
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()

    # A key, shown once, with a copy button.
    await page.goto("/console/keys")
    await page.fill("#name", "journey bot")
    await page.get_by_role("button", name="Create key").click()
    key = (await page.locator("#new-key").inner_text()).strip()
    assert re.fullmatch(r"sk_[0-9A-Za-z]{8}_[0-9A-Za-z]{32,}", key), key
    await page.get_by_role("button", name="Copy").click()
    await expect(page.get_by_role("button", name="Copied")).to_be_visible()
    await page.goto("/console/keys")
    assert key not in await page.content()  # shown that once only

    # Signing through the real TikTokLive client with that key.
    result = await _sign(base, key, UNSIGNED)
    assert "X-Bogus=" in str(result.signed_url)

    await _reload_until(page, "/console/", "#fig-today", r"^1$")
    await expect(page.locator("#live svg")).to_be_visible()
    await _reload_until(
        page, "/console/requests", "table.requests tbody", r"webcast\.tiktok\.com/webcast/im/fetch/"
    )

    # A failing request (a host that is not TikTok's), found by search with its error.
    assert await _refused_with(base, key, FOREIGN) == 400
    await _reload_until(page, "/console/requests?status=failed", "table.requests", "evil")
    await page.goto("/console/requests")
    await page.fill("#q", "evil.example.org")
    await page.get_by_role("button", name="Filter").click()
    rows = page.locator("table.requests tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("VALIDATION_ERROR")
    await expect(rows.first).to_contain_text("evil.example.org/webcast/im/fetch/")
    await rows.first.get_by_role("link").click()
    await expect(page.get_by_role("heading", name=re.compile("^Request "))).to_be_visible()
    await expect(page.locator("dl.detail")).to_contain_text("failed (400)")

    # The live chart refreshes itself through our script (every 5 s).
    await page.goto("/console/")
    first = await page.locator("#live .live-figures").inner_text()
    await expect(page.locator("#live .live-figures")).not_to_have_text(first, timeout=12_000)
    await expect(page.locator("#live .live-figures")).to_contain_text("2 requests")

    # Revoked: the client is refused at once (the test stack caches no key).
    await page.goto("/console/keys")
    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await page.get_by_role("button", name="Revoke").click()
    await expect(page.locator("table tbody tr").first).to_contain_text("revoked")
    assert await _refused_with(base, key, UNSIGNED) == 401

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.goto("/console/keys")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    assert not [p for p in problems if "Content Security Policy" in p], problems
    await context.close()
    await operator_context.close()
