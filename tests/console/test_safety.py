"""The console's defences: CSRF tokens and origins on every form, sessions that end when
signed out, one-time links that work once, sign-in throttling that says nothing about
which addresses exist, and the headers every page carries."""

from __future__ import annotations

import asyncio

import pytest

from tests.console.conftest import (
    PASSWORD,
    Mailbox,
    Person,
    csrf_of,
    fresh_address,
    invited_person,
)
from tests.service_stack import ServiceStack


@pytest.fixture
async def carol(console_stack: ServiceStack, mailbox: Mailbox) -> Person:
    return await invited_person(console_stack, mailbox, fresh_address("carol"))


async def _key_count(person: Person) -> int:
    _, page, _ = await person.get("/console/keys")
    return page.count("/revoke")


async def test_a_form_without_its_token_or_from_another_origin_is_refused(carol: Person) -> None:
    try:
        before = await _key_count(carol)
        status, body, _ = await carol.post("/console/keys", {"name": "no token"}, csrf="")
        assert status == 403
        assert "expired" in body
        status, _, _ = await carol.post("/console/keys", {"name": "wrong"}, csrf="x" * 43)
        assert status == 403
        status, body, _ = await carol.post(
            "/console/keys",
            {"name": "cross site"},
            form_page="/console/keys",
            headers={"Origin": "http://evil.example"},
        )
        assert status == 403
        assert "another site" in body
        status, _, _ = await carol.post(
            "/console/keys",
            {"name": "cross site referer"},
            form_page="/console/keys",
            headers={"Origin": "", "Referer": "http://evil.example/page"},
        )
        assert status == 403
        assert await _key_count(carol) == before  # nothing was made
        # The same form with its token, from our origin, works.
        status, _, _ = await carol.post("/console/keys", {"name": "ok"}, form_page="/console/keys")
        assert status == 201
        assert await _key_count(carol) == before + 1
    finally:
        await carol.close()


async def test_a_session_cookie_copied_before_sign_out_is_dead_after(
    console_stack: ServiceStack, carol: Person
) -> None:
    copied = carol.session_cookie()
    assert copied
    status, _, _ = await carol.post("/console/signout", {}, form_page="/console/")
    assert status == 303
    thief = Person(console_stack.base)
    try:
        thief.http.cookie_jar.update_cookies({"signer_console": copied})
        status, _, response = await thief.get("/console/keys")
        assert status == 303
        assert response.headers["Location"].startswith("/console/signin")
    finally:
        await thief.close()
        await carol.close()


async def test_sign_out_everywhere_ends_every_session(
    console_stack: ServiceStack, mailbox: Mailbox
) -> None:
    first = await invited_person(console_stack, mailbox, fresh_address("dave"))
    second = Person(console_stack.base)
    try:
        status, _, _ = await second.post(
            "/console/signin", {"email": first.email, "password": PASSWORD}
        )
        assert status == 303
        assert first.session_cookie() != second.session_cookie()  # a new id per sign-in
        status, _, _ = await second.post("/console/signout-everywhere", {}, form_page="/console/")
        assert status == 303
        status, _, _ = await first.get("/console/")
        assert status == 303  # sent to sign in
    finally:
        await first.close()
        await second.close()


async def test_a_reset_link_works_once(
    console_stack: ServiceStack, mailbox: Mailbox, carol: Person
) -> None:
    await carol.close()
    visitor = Person(console_stack.base)
    try:
        address = carol.email
        mailbox.take(address)
        status, body, _ = await visitor.post("/console/forgot", {"email": address})
        assert status == 200
        unknown_status, unknown_body, _ = await visitor.post(
            "/console/forgot", {"email": "nobody.here@example.com"}
        )
        # The same answer whether the address has an account or not.
        assert (unknown_status, unknown_body) == (status, body)
        link = (await mailbox.wait_for(address, "reset")).link
        token = link.split("token=", 1)[1]
        status, page, _ = await visitor.get(link)
        assert status == 200
        new_password = "a brand new password"
        fields = {"token": token, "password": new_password, "confirm": new_password}
        status, _, response = await visitor.post("/console/reset", fields, csrf=csrf_of(page))
        assert status == 303
        assert response.headers["Location"] == "/console/"
        status, body, _ = await visitor.post("/console/reset", fields, form_page=link)
        assert status == 400
        assert "not valid" in body
        # The new password signs in; the old one does not.
        other = Person(console_stack.base)
        try:
            status, _, _ = await other.post(
                "/console/signin", {"email": address, "password": PASSWORD}
            )
            assert status == 400
            status, _, _ = await other.post(
                "/console/signin", {"email": address, "password": new_password}
            )
            assert status == 303
        finally:
            await other.close()
    finally:
        await visitor.close()


async def test_sign_in_is_throttled_and_says_nothing_of_which_addresses_exist(
    console_stack: ServiceStack, mailbox: Mailbox
) -> None:
    erin = await invited_person(console_stack, mailbox, fresh_address("erin"))
    await erin.close()
    visitor = Person(console_stack.base)
    try:
        answers = []
        for address in (erin.email, fresh_address("nobody")):
            status, body, _ = await visitor.post(
                "/console/signin", {"email": address, "password": "wrong password!"}
            )
            answers.append((status, "Wrong email or password." in body))
        assert answers == [(400, True), (400, True)]
        # SIGNER_CONSOLE_SIGNIN_FAILURES_PER_ACCOUNT=3 in the test stack: two more fail,
        # then even the right password is refused until the hour ends.
        for _ in range(2):
            status, _, _ = await visitor.post(
                "/console/signin",
                {"email": erin.email, "password": "wrong password!"},
            )
            assert status == 400
        status, body, _ = await visitor.post(
            "/console/signin", {"email": erin.email, "password": PASSWORD}
        )
        assert status == 429
        assert "Too many failed sign-ins" in body
    finally:
        await visitor.close()


async def test_every_console_answer_carries_the_security_headers(
    console_stack: ServiceStack,
) -> None:
    visitor = Person(console_stack.base)
    try:
        _, page, response = await visitor.get("/console/signin")
        assert "<script>" not in page  # no inline script anywhere
        cookie = response.headers.getall("Set-Cookie")[0]
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        for path in ("/console/signin", "/console/nowhere", "/console/static/console.js"):
            _, _, response = await visitor.get(path)
            headers = response.headers
            assert "script-src 'self'" in headers["Content-Security-Policy"]
            assert "unsafe-inline" not in headers["Content-Security-Policy"]
            assert headers["X-Frame-Options"] == "DENY"
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert headers["Referrer-Policy"] == "same-origin"
    finally:
        await visitor.close()


async def test_the_root_sends_browsers_to_the_console_and_clients_to_the_index(
    console_stack: ServiceStack,
) -> None:
    visitor = Person(console_stack.base)
    try:
        status, _, response = await visitor.get("/")
        assert status == 302
        assert response.headers["Location"] == "/console/"
        async with visitor.http.get(
            console_stack.base + "/", headers={"Accept": "application/json"}
        ) as answer:
            body = await answer.json()
        assert body["name"] == "tiktok-signer"
        assert body["health"] == f"{console_stack.base}/health"
        assert body["docs"] == f"{console_stack.base}/docs"
        assert body["version"]
    finally:
        await visitor.close()


async def test_a_forged_host_header_does_not_point_mailed_links_elsewhere(
    console_stack: ServiceStack, mailbox: Mailbox
) -> None:
    victim = await invited_person(console_stack, mailbox, fresh_address("victim"))
    await victim.close()
    attacker = Person(console_stack.base)
    try:
        mailbox.take(victim.email)
        _, page, _ = await attacker.get("/console/forgot")
        forged = {"Host": "evil.example", "Origin": "http://evil.example"}
        status, _, _ = await attacker.post(
            "/console/forgot", {"email": victim.email}, csrf=csrf_of(page), headers=forged
        )
        assert status == 200
        link = (await mailbox.wait_for(victim.email, "reset")).link
        assert link.startswith(f"{console_stack.base}/console/reset?token="), link
    finally:
        await attacker.close()


async def test_nobody_can_flood_an_inbox_with_links(
    console_stack: ServiceStack, mailbox: Mailbox
) -> None:
    target = await invited_person(console_stack, mailbox, fresh_address("flooded"))
    await target.close()
    visitor = Person(console_stack.base)
    try:
        mailbox.take(target.email)
        answers = set()
        for _ in range(5):  # SIGNER_CONSOLE_MAILS_PER_ADDRESS=3 in the test stack
            status, body, _ = await visitor.post("/console/forgot", {"email": target.email})
            answers.add((status, body))
        assert len(answers) == 1  # the same answer every time

        def count() -> int:
            return len([m for m in mailbox.messages if m.to == target.email])

        for _ in range(100):  # mail goes out after the answer
            if count() >= 3:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # time for any further mail to arrive, were it sent
        assert count() == 3
    finally:
        await visitor.close()
