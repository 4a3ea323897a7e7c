"""The console's account flows over HTTP: open sign-up with a verified address, the
same answer for an address already taken, change of email and password, and what an
operator does to users (tier, deactivation), in the real service."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiohttp
import pytest

from tests.console.conftest import (
    PASSWORD,
    Mailbox,
    Person,
    accept_invitation,
    cli_env,
    csrf_of,
    fresh_address,
    invited_person,
)
from tests.console.test_isolation import FETCH_URL, create_key, sign
from tests.service_stack import ServiceStack, run_signer, service_stack


@pytest.fixture(scope="module")
def open_stack(mailbox: Mailbox) -> Iterator[ServiceStack]:
    """The service with open sign-up, believing X-Forwarded-Proto (as behind a proxy)."""
    settings = {
        "SIGNER_SMTP_URL": f"smtp://127.0.0.1:{mailbox.port}",
        "SIGNER_CONSOLE_SIGNUP": "open",
        "SIGNER_API_TRUST_FORWARDED_FOR": "true",
    }
    with service_stack(env=settings) as stack:
        run_signer(stack.env, "migrate")
        yield stack


async def _confirm(person: Person, link: str) -> str:
    status, page, _ = await person.get(link)
    assert status == 200, page
    token = link.split("token=", 1)[1]
    status, body, _ = await person.post("/console/verify", {"token": token}, csrf=csrf_of(page))
    assert status == 200, body
    return body


async def test_open_sign_up_verifies_the_address_and_never_says_who_exists(
    open_stack: ServiceStack, mailbox: Mailbox
) -> None:
    address = fresh_address("newcomer")
    visitor = Person(open_stack.base, address)
    try:
        status, page, _ = await visitor.get("/console/signup")
        assert 'action="/console/signup"' in page
        fields = {"email": address, "password": PASSWORD}
        status, first_answer, _ = await visitor.post("/console/signup", fields)
        assert status == 200
        assert "Check your inbox" in first_answer
        await mailbox.wait_for(address, "Confirm your email")

        # Not verified yet: the right password is not enough; a new link is mailed (and
        # only the newest link works).
        mailbox.take(address)
        status, body, _ = await visitor.post("/console/signin", fields)
        assert status == 400
        assert "Confirm your address first" in body
        mail = await mailbox.wait_for(address, "Confirm your email")

        # Signing up again with the address taken: the same answer; the owner is mailed.
        mailbox.take(address)
        _, again, _ = await visitor.post("/console/signup", {**fields, "password": "x" * 12})
        assert again == first_answer
        await mailbox.wait_for(address, "Reset your password")

        assert "Address confirmed" in await _confirm(visitor, mail.link)
        status, _, response = await visitor.post("/console/signin", fields)
        assert status == 303
        assert response.headers["Location"] == "/console/"
        status, body, _ = await visitor.post(
            "/console/signup",
            {"email": "not an address", "password": PASSWORD},
            form_page="/console/signup",
        )
        assert status == 400
        assert "not an email address" in body
    finally:
        await visitor.close()


async def test_cookies_are_secure_behind_https(open_stack: ServiceStack) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{open_stack.base}/console/signin", headers={"X-Forwarded-Proto": "https"}
        ) as response,
    ):
        assert "Secure" in response.headers["Set-Cookie"]
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{open_stack.base}/console/signin") as response,
    ):
        assert "Secure" not in response.headers["Set-Cookie"]


async def test_change_of_email_and_of_password(
    console_stack: ServiceStack, mailbox: Mailbox
) -> None:
    person = await invited_person(console_stack, mailbox, fresh_address("mover"))
    elsewhere = Person(console_stack.base)
    try:
        new_address = fresh_address("moved")
        status, body, _ = await person.post(
            "/console/account/email",
            {"email": new_address, "password": "wrong password"},
            form_page="/console/account",
        )
        assert status == 400
        assert "Wrong password" in body
        status, body, _ = await person.post(
            "/console/account/email",
            {"email": new_address, "password": PASSWORD},
            form_page="/console/account",
        )
        assert status == 200
        assert "We sent a link to the new address" in body
        mail = await mailbox.wait_for(new_address, "new email")
        assert f"now {new_address}" in await _confirm(person, mail.link)

        status, _, _ = await elsewhere.post(
            "/console/signin", {"email": new_address, "password": PASSWORD}
        )
        assert status == 303
        new_password = "another fine password"
        status, body, _ = await person.post(
            "/console/account/password",
            {"current": PASSWORD, "password": new_password, "confirm": new_password},
            form_page="/console/account",
        )
        assert status == 200
        assert "Password changed" in body
        status, _, _ = await person.get("/console/keys")
        assert status == 200  # this session goes on
        status, _, _ = await elsewhere.get("/console/keys")
        assert status == 303  # the other one was signed out
    finally:
        await person.close()
        await elsewhere.close()


async def test_invite_mode_takes_no_sign_up(console_stack: ServiceStack) -> None:
    visitor = Person(console_stack.base)
    try:
        _, page, _ = await visitor.get("/console/signup")
        assert "by invitation" in page
        status, _, _ = await visitor.post(
            "/console/signup", {"email": fresh_address("x"), "password": PASSWORD}
        )
        assert status == 403
    finally:
        await visitor.close()


async def test_an_operator_runs_users(console_stack: ServiceStack, mailbox: Mailbox) -> None:
    operator_address = fresh_address("boss")
    link = await asyncio.to_thread(
        run_signer, cli_env(console_stack), "users", "create", operator_address, "--admin"
    )
    boss = Person(console_stack.base, operator_address)
    user = await invited_person(console_stack, mailbox, fresh_address("worker"))
    try:
        await accept_invitation(boss, link)
        key, _ = await create_key(user, "will stop")
        assert (await sign(console_stack.base, key, FETCH_URL))[0] == 200

        status, page, _ = await boss.get("/console/operator/users", params={"q": user.email})
        assert status == 200
        assert user.email in page
        assert operator_address not in page.split("<tbody>", 1)[1]  # the search filtered
        user_id = page.split("/console/operator/users/", 1)[1].split("/", 1)[0]

        status, _, _ = await boss.post(
            f"/console/operator/users/{user_id}/tier",
            {"tier": "api_key"},
            form_page="/console/operator/users",
        )
        assert status == 303
        _, overview, _ = await user.get("/console/")
        assert "api_key" in overview

        for path in ("/console/operator/health", "/console/operator/keys"):
            status, page, _ = await boss.get(path)
            assert status == 200, path
        _, health, _ = await boss.get("/console/operator/health")
        assert "1 / 1" in health  # the stack's one worker, alive

        status, _, _ = await boss.post(
            f"/console/operator/users/{user_id}/active",
            {"active": "false"},
            form_page="/console/operator/users",
        )
        assert status == 303
        status, _, _ = await user.get("/console/keys")
        assert status == 303  # their session no longer works
        assert (await sign(console_stack.base, key, FETCH_URL))[0] == 401
        # The refusal is among the recent errors once the usage writer has written it.
        for _ in range(50):
            status, page, _ = await boss.get("/console/operator/errors")
            assert status == 200
            if "AUTHENTICATION_ERROR" in page:
                break
            await asyncio.sleep(0.2)
        assert "AUTHENTICATION_ERROR" in page
    finally:
        await boss.close()
        await user.close()
