"""`/docs`: the OpenAPI document drawn as a page to read, grouped, with examples, and a
search box that works offline (our own script), in a real Chromium."""

from __future__ import annotations

import re

from playwright.async_api import Browser, Route, expect

from api.app import VERSION
from api.openapi import openapi_document
from api.reference import REFERENCE_ASSETS, reference_html, sample

ORIGIN = "http://signer.test"


def test_every_route_is_on_the_page_grouped_by_tag() -> None:
    document = openapi_document(VERSION)
    page = reference_html(document, ORIGIN)
    for path, operations in document["paths"].items():
        for method in operations:
            assert f'<span class="method {method}">{method.upper()}</span>' in page
            assert f"<code>{path}</code>" in page.replace("&#x27;", "'"), path
    tags = {op["tags"][0] for ops in document["paths"].values() for op in ops.values()}
    for tag in tags:
        assert re.search(rf"<h2>{re.escape(tag)}</h2>", page), tag
    # Examples address this server; nothing is loaded from anywhere else.
    assert f"{ORIGIN}/webcast/sign_url" in page
    assert not re.search(r'(src|href)="https?://', page)
    assert "<script>" not in page
    assert page.count("<pre><code>curl") == sum(len(ops) for ops in document["paths"].values())


def test_examples_follow_the_schemas() -> None:
    document = openapi_document(VERSION)
    body = sample({"$ref": "#/components/schemas/OwnRequest"}, document, lean=True)
    assert isinstance(body, dict)
    assert body["url"].startswith("https://webcast.tiktok.com/")
    error = sample({"$ref": "#/components/schemas/StructuredError"}, document)
    assert isinstance(error, dict)
    assert error["status"] == "error"


async def test_the_search_box_filters_the_routes(browser: Browser) -> None:
    page_html = reference_html(openapi_document(VERSION), ORIGIN)

    async def serve(route: Route) -> None:
        name = route.request.url.rsplit("/", 1)[-1]
        if name in REFERENCE_ASSETS:
            content_type, text = REFERENCE_ASSETS[name]
            await route.fulfill(body=text, content_type=content_type)
        else:
            await route.fulfill(body=page_html, content_type="text/html")

    context = await browser.new_context()
    await context.route(f"{ORIGIN}/**", serve)
    page = await context.new_page()
    await page.goto(f"{ORIGIN}/docs")
    operations = page.locator("section.operation:visible")
    everything = await operations.count()
    assert everything > 10
    await page.fill("#filter", "rate_limits")
    await expect(operations).to_have_count(1)
    await expect(operations.first).to_contain_text("/webcast/rate_limits")
    await page.fill("#filter", "no such route at all")
    await expect(page.locator(".nomatch")).to_be_visible()
    await page.fill("#filter", "")
    await expect(operations).to_have_count(everything)
    await context.close()
