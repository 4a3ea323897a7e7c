"""One user sees nothing of another's: every page, form and export of the console, given
the first user's key ids, request ids and row cursors, answers the second user 404 (or
shows only the second user's own), and no body holds anything of the first user's."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest

from tests.console.conftest import Mailbox, Person, fresh_address, invited_person
from tests.service_stack import ServiceStack

FETCH_URL = (
    "https://webcast.tiktok.com/webcast/im/fetch/?aid=1988&app_name=tiktok_web"
    "&device_platform=web_pc&room_id=7312345678901234567"
)
FOREIGN_URL = "https://evil.example.org/steal/?room_id=1"
KEY = re.compile(r"sk_[0-9A-Za-z]{8}_[0-9A-Za-z]{32,64}")
KEY_ID = re.compile(r"/console/keys/([0-9a-f-]{36})/revoke")
CURSOR = re.compile(r"after=([^\"&]+)")


async def sign(base: str, key: str, url: str) -> tuple[int, str]:
    """Sign `url` over the API with `key`; the status and the request id."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{base}/api/signature", json={"url": url}, headers={"X-Api-Key": key}) as r,
    ):
        await r.read()
        return r.status, r.headers["X-Request-Id"]


async def create_key(person: Person, name: str) -> tuple[str, str]:
    """Make a key in the console; the whole key and its id."""
    status, page, _ = await person.post("/console/keys", {"name": name}, form_page="/console/keys")
    assert status == 201, page
    found = KEY.search(page)
    assert found, "the new key is not on the page"
    key_id = KEY_ID.search(page)
    assert key_id
    return found[0], key_id[1]


async def wait_for_rows(person: Person, request_ids: list[str], timeout: float = 10.0) -> str:
    """The requests page, once it lists every id in `request_ids`."""
    page = ""
    for _ in range(int(timeout / 0.2)):
        _, page, _ = await person.get("/console/requests")
        if all(request_id in page for request_id in request_ids):
            return page
        await asyncio.sleep(0.2)
    raise AssertionError(f"requests {request_ids} never listed")


@pytest.fixture
async def alice_and_bob(
    console_stack: ServiceStack, mailbox: Mailbox
) -> tuple[Person, Person, dict[str, str]]:
    alice = await invited_person(console_stack, mailbox, fresh_address("alice"))
    bob = await invited_person(console_stack, mailbox, fresh_address("bob"))
    key, key_id = await create_key(alice, "alice bot")
    ok_status, ok_id = await sign(console_stack.base, key, FETCH_URL)
    bad_status, bad_id = await sign(console_stack.base, key, FOREIGN_URL)
    assert (ok_status, bad_status) == (200, 400)
    # Enough rows for a second page would take 50; one row's cursor is enough to try.
    page = await wait_for_rows(alice, [ok_id, bad_id])
    secrets = {
        "email": alice.email,
        "key": key,
        "key_id": key_id,
        "prefix": key[:11],
        "ok_id": ok_id,
        "bad_id": bad_id,
        "page": page,
    }
    return alice, bob, secrets


def _clean(body: str, secrets: dict[str, str]) -> None:
    for name in ("email", "key", "key_id", "prefix", "ok_id", "bad_id"):
        assert secrets[name] not in body, f"{name} of the first user leaked"


async def test_a_second_user_reaches_nothing_of_the_first(
    alice_and_bob: tuple[Person, Person, dict[str, str]],
) -> None:
    alice, bob, secrets = alice_and_bob
    try:
        key_id, ok_id, bad_id = secrets["key_id"], secrets["ok_id"], secrets["bad_id"]
        # Bob's own key and request, so his pages have rows of their own to show.
        bob_key, _ = await create_key(bob, "bob bot")
        await sign(bob.base, bob_key, FETCH_URL)

        refused = [
            ("GET", f"/console/requests/{ok_id}"),
            ("GET", f"/console/requests/{bad_id}"),
            ("GET", f"/console/requests?key={key_id}"),
            ("GET", f"/console/requests.csv?key={key_id}"),
            ("POST", f"/console/keys/{key_id}/revoke"),
            ("GET", "/console/operator/users"),
            ("GET", "/console/operator/health"),
            ("GET", "/console/operator/keys"),
            ("GET", "/console/operator/errors"),
            ("POST", "/console/operator/invite"),
            ("POST", f"/console/operator/users/{alice_user_id(secrets)}/active"),
        ]
        for method, path in refused:
            if method == "GET":
                status, body, _ = await bob.get(path)
            else:
                status, body, _ = await bob.post(
                    path, {"active": "false", "email": "x@example.com"}, form_page="/console/"
                )
            assert status == 404, (method, path, status)
            _clean(body, secrets)

        # Pages that list: only Bob's own, whatever cursor or filter he sends.
        cursor = CURSOR.search(secrets["page"])
        after = f"?after={cursor[1]}" if cursor else "?after=2999-01-01T00:00:00%2B00:00~999999999"
        for path in (
            "/console/",
            "/console/overview/live",
            "/console/keys",
            "/console/requests",
            f"/console/requests{after}",
            "/console/requests.csv",
            "/console/connect",
            "/console/account",
        ):
            status, body, _ = await bob.get(path)
            assert status == 200, (path, status)
            _clean(body, secrets)

        # Searches for what only Alice's rows hold find nothing (the page echoes the
        # words searched for in its search box, so that is taken out first).
        for words in (bad_id, ok_id, "evil.example.org", secrets["prefix"]):
            status, body, _ = await bob.get("/console/requests", params={"q": words})
            assert status == 200
            assert "No requests match." in body
            echoed = body.replace(f'value="{words}"', "").replace(f"q={words}", "")
            _clean(echoed, secrets)
            status, body, _ = await bob.get("/console/requests.csv", params={"q": words})
            assert status == 200
            assert body.strip().count("\n") == 0, body  # the header line alone

        # Alice's key was not revoked by Bob's attempt.
        _, alice_keys, _ = await alice.get("/console/keys")
        assert f"/console/keys/{key_id}/revoke" in alice_keys
    finally:
        await alice.close()
        await bob.close()


def alice_user_id(secrets: dict[str, str]) -> str:
    # Any well-formed id serves: the operator's routes refuse a non-operator before
    # looking at it. The key's id is well formed and names Alice's key, not Bob's.
    return secrets["key_id"]
