"""Hostile input on every sign route of a real browser-engine stack (issues 15 and 9).

Each kind of input that once gave a 500, killed a signing loop or slipped past the host
allow-list is sent to each route it concerns: the answer must be a 4xx in the route's
own dialect, and afterwards the stack must still sign everyone (`assert_still_serving`).
A lone surrogate in `userAgent` only showed its full effect (a dead browser loop) with
the browser engine, which is why this runs on the hostile stack.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from tests.hostile.conftest import assert_still_serving
from tests.service_stack import ServiceStack
from tests.signer.conftest import FETCH_URL

pytestmark = pytest.mark.browser

# (path, dialect, how the URL and user agent travel)
ROUTES = [
    ("/webcast/sign_url", "eulerstream", "query"),
    ("/webcast/sign_url", "eulerstream", "json"),
    ("/tiktok/sign_url", "eulerstream", "json"),
    ("/api/signature", "structured", "json"),
    ("/signature", "structured", "json"),
]

# Raw JSON text, so a lone surrogate travels as the `\ud800` escape a client would send.
SURROGATE = "\\ud800"

BAD_URLS = [
    "https://[www.tiktok.com]/",  # 15.3: urlsplit raised in the API itself
    FETCH_URL + "&x=" + SURROGATE,  # 15.5: poisoned the whole batch
    "https://www.tiktok.com/\\u0000/x",  # 15.11: NUL, which Postgres refuses
    "https://evil.com\\\\.tiktok.com/",  # 15.10: a browser's host is evil.com
    "https://tiktok.com@evil.com/",
    "https://..tiktok.com/",
    "https://evil.com%2f.tiktok.com/",
    "https://evil.com%00.tiktok.com/",
    "https://evil.com\\t.tiktok.com/",
    "https://www.tiktok\\u3002com/",
    "https://www.tiktok\\uff0ecom/",
    "https://www.tiktok.com./",
    "https://127.0.0.1/",
    "https://www.tiktok.com:99999/",
]


def _json_text(url: str, user_agent: str | None = None) -> str:
    agent = f', "userAgent": "{user_agent}"' if user_agent is not None else ""
    return f'{{"url": "{url}"{agent}}}'


async def _send(
    session: aiohttp.ClientSession, base: str, path: str, how: str, body: str
) -> tuple[int, Any]:
    if how == "query":
        # The same fields, percent-encoded in the query.
        fields = json.loads(body, strict=False)
        request = session.get(f"{base}{path}?{urlencode(fields)}")
    else:
        request = session.post(
            f"{base}{path}", data=body.encode(), headers={"Content-Type": "application/json"}
        )
    async with request as answer:
        return answer.status, await answer.json(content_type=None)


def _assert_refused(status: int, body: Any, dialect: str, what: str) -> None:
    assert 400 <= status < 500, (what, status, body)
    if dialect == "eulerstream":
        assert (body["code"], bool(body["message"])) == (status, True), (what, body)
    else:
        assert body["status"] == "error", (what, body)
        error = body["error"]
        assert (error["code"], bool(error["message"])) == (status, True), (what, body)


async def _attack(base: str) -> None:
    depth_bomb = '{"url": ' + "[" * 1000 + "]" * 1000 + "}"
    int_bomb = '{"url": ' + "9" * 4301 + "}"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        for path, dialect, how in ROUTES:
            bodies = [_json_text(url) for url in BAD_URLS]
            if how == "json":
                bodies.append(_json_text(FETCH_URL, "Mozilla/5.0 " + SURROGATE))  # 15.1
                bodies.append(_json_text(FETCH_URL, "Mozilla/5.0\\u0000"))
                bodies += [depth_bomb, int_bomb]  # 15.4
            else:
                # A query carries bytes, not code points: a surrogate cannot be sent in one.
                bodies = [body for body in bodies if SURROGATE not in body]
            for body in bodies:
                status, answer = await _send(session, base, path, how, body)
                _assert_refused(status, answer, dialect, f"{how} {path} {body[:80]}")
        # Admin: the one safe JSON parser guards it too (a 400, or 401/403 without a token).
        for body in (depth_bomb, int_bomb):
            async with session.post(
                f"{base}/admin/users", data=body, headers={"Content-Type": "application/json"}
            ) as answer:
                assert 400 <= answer.status < 500, answer.status
        # 9.7 in reverse: merged slashes serve the real route, never an unknown one.
        for path in ("//nope/sign_url", "//webcast//nothing"):
            async with session.post(f"{base}{path}", json={"url": FETCH_URL}) as answer:
                _assert_refused(answer.status, await answer.json(), "structured", path)
        async with session.post(f"{base}//tiktok/sign_url", json={"url": FETCH_URL}) as answer:
            assert answer.status == 200


def test_hostile_inputs_are_refused_and_the_stack_keeps_serving(
    hostile_stack: ServiceStack,
) -> None:
    asyncio.run(_attack(hostile_stack.base))
    assert_still_serving(hostile_stack.base)
