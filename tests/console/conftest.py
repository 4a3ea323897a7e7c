"""The console's test bed: the real service (`signer api` and a native `signer worker` on
private Redis and Postgres) with its mail going to a real SMTP server run here (aiosmtpd),
and helpers that act as a person would, over HTTP with a cookie jar."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiosmtpd.controller import Controller

from service.stack.services import free_port
from tests.service_stack import ServiceStack, run_signer, service_stack

LINK = re.compile(r"https?://\S+?token=[A-Za-z0-9_\-]+")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
PASSWORD = "correct horse battery"


@dataclass
class Message:
    to: str
    subject: str
    text: str

    @property
    def link(self) -> str:
        found = LINK.search(self.text)
        assert found, f"no link in the mail: {self.text!r}"
        return found[0]


@dataclass
class Mailbox:
    """What the SMTP server received, for the tests to wait on."""

    port: int = 0
    messages: list[Message] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = parsed.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        with self.arrived:
            for to in envelope.rcpt_tos:
                self.messages.append(Message(to, str(parsed["Subject"]), text))
            self.arrived.notify_all()
        return "250 OK"

    def find(self, to: str, subject: str) -> Message | None:
        for message in reversed(self.messages):
            if message.to == to and subject.lower() in message.subject.lower():
                return message
        return None

    async def wait_for(self, to: str, subject: str, timeout: float = 10.0) -> Message:
        """The newest mail to `to` whose subject holds `subject`, once it has come."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.arrived:
                found = self.find(to, subject)
            if found is not None:
                return found
            await asyncio.sleep(0.05)
        raise AssertionError(f"no mail '{subject}' to {to}: {self.messages}")

    def take(self, to: str) -> None:
        """Forget the mail to `to`, so the next wait sees only newer mail."""
        with self.arrived:
            self.messages = [m for m in self.messages if m.to != to]


@pytest.fixture(scope="session")
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox(port=free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def console_stack(mailbox: Mailbox) -> Iterator[ServiceStack]:
    """The service with the console in `invite` mode, mailing through `mailbox`."""
    settings = {
        "SIGNER_SMTP_URL": f"smtp://127.0.0.1:{mailbox.port}",
        "SIGNER_CONSOLE_SIGNUP": "invite",
        # A revoked key is refused at once (no cache), so the test can watch it happen.
        "SIGNER_KEY_CACHE_TTL": "0",
        "SIGNER_KEY_STALE_TTL": "0",
        "SIGNER_CONSOLE_SIGNIN_FAILURES_PER_ACCOUNT": "3",
        "SIGNER_CONSOLE_MAILS_PER_ADDRESS": "3",
    }
    with service_stack(env=settings) as stack:
        run_signer(stack.env, "migrate")
        yield stack


def cli_env(stack: ServiceStack) -> dict[str, str]:
    """The stack's settings, with mailed links pointing at its API."""
    return dict(stack.env, SIGNER_CONSOLE_BASE_URL=stack.base)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF field in the page"
    return found[1]


class Person:
    """A browser without a browser: a cookie jar, forms sent with their CSRF token."""

    def __init__(self, base: str, email: str = "") -> None:
        self.base = base
        self.email = email
        self.http = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),  # cookies for 127.0.0.1
            headers={"Accept": "text/html"},
        )

    async def close(self) -> None:
        await self.http.close()

    async def get(self, path: str, **kwargs: Any) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.http.get(self.url(path), allow_redirects=False, **kwargs) as response:
            return response.status, await response.text(), response

    def url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.base}{path}"

    async def post(
        self,
        path: str,
        fields: dict[str, str],
        *,
        form_page: str | None = None,
        csrf: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str, aiohttp.ClientResponse]:
        """POST `fields` with the CSRF token of `form_page` (default: the console's
        overview or, signed out, the sign-in page) unless `csrf` is given ('' for none)."""
        if csrf is None:
            _, page, _ = await self.get(form_page or "/console/signin")
            csrf = csrf_of(page)
        data = dict(fields)
        if csrf:
            data["csrf"] = csrf
        sent = {"Origin": self.base, **(headers or {})}
        async with self.http.post(
            self.url(path), data=data, headers=sent, allow_redirects=False
        ) as response:
            return response.status, await response.text(), response

    def session_cookie(self) -> str | None:
        for cookie in self.http.cookie_jar:
            if cookie.key == "signer_console":
                return cookie.value
        return None


async def accept_invitation(person: Person, link: str, password: str = PASSWORD) -> None:
    status, page, _ = await person.get(link)
    assert status == 200, page
    token = link.split("token=", 1)[1]
    status, body, response = await person.post(
        "/console/accept",
        {"token": token, "password": password, "confirm": password},
        csrf=csrf_of(page),
    )
    assert status == 303, body
    assert response.headers["Location"] == "/console/"


async def invited_person(
    stack: ServiceStack, mailbox: Mailbox, address: str, password: str = PASSWORD
) -> Person:
    """A user invited with `signer users invite`, signed in after following the mail."""
    mailbox.take(address)
    await asyncio.to_thread(run_signer, cli_env(stack), "users", "invite", address)
    mail = await mailbox.wait_for(address, "invited")
    person = Person(stack.base, address)
    await accept_invitation(person, mail.link, password)
    return person


def fresh_address(name: str) -> str:
    """An address no earlier test of the session has used."""
    return f"{name}.{uuid.uuid4().hex[:8]}@example.com"
