"""Screenshots of every console page at 1280x800 and 390x844, into docs/console/.

    .venv/bin/python -m tests.console.screenshots [--out docs/console]

Runs the real service on private Redis and Postgres with a local SMTP server, populates
it as people would (`tests.console.tour`), and photographs each page in Debian's
Chromium. The README shows some of them.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from aiosmtpd.controller import Controller
from playwright.async_api import async_playwright

from service.stack.services import free_port
from signer.browser.launch import CHROMIUM_ARGS
from tests.console.conftest import Mailbox
from tests.console.test_accessibility import VIEWPORTS, open_as
from tests.console.tour import console_tour
from tests.service_stack import ServiceStack, run_signer, service_stack

ROOT = Path(__file__).resolve().parents[2]


async def photograph(stack: ServiceStack, mailbox: Mailbox, out: Path) -> list[Path]:
    tour = await console_tour(stack, mailbox)
    written: list[Path] = []
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=list(CHROMIUM_ARGS), headless=True
            )
            for viewport in VIEWPORTS:
                for stop in tour.stops:
                    context = await open_as(browser, stop, stack.base, viewport)
                    page = await context.new_page()
                    await page.goto(stop.path)
                    path = out / f"{stop.name}-{viewport['width']}x{viewport['height']}.png"
                    await page.screenshot(path=str(path))
                    written.append(path)
                    await context.close()
            await browser.close()
    finally:
        await tour.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "console")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    mailbox = Mailbox(port=free_port())
    controller = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port)
    controller.start()
    settings = {
        "SIGNER_SMTP_URL": f"smtp://127.0.0.1:{mailbox.port}",
        "SIGNER_CONSOLE_SIGNUP": "invite",
    }
    try:
        with service_stack(env=settings) as stack:
            run_signer(stack.env, "migrate")
            for path in asyncio.run(photograph(stack, mailbox, args.out)):
                print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
