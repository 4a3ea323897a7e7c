"""Every page of the console with something on it: a service populated as people use it
(an operator, a user with keys and requests, signed and failed, and the one-time links
of each kind), then each page's address and whose session opens it.

Shared by the accessibility test (axe-core on every page) and the screenshot script
(`python -m tests.console.screenshots`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from tests.console.conftest import (
    Mailbox,
    Person,
    accept_invitation,
    cli_env,
    fresh_address,
    invited_person,
)
from tests.console.test_isolation import FETCH_URL, FOREIGN_URL, create_key, sign, wait_for_rows
from tests.service_stack import ServiceStack, run_signer

__all__ = ["Stop", "Tour", "console_tour"]


@dataclass(frozen=True)
class Stop:
    """One page: its name (for the screenshot's file), address and visitor (None:
    signed out)."""

    name: str
    path: str
    who: Person | None


@dataclass
class Tour:
    stops: list[Stop]
    people: list[Person]

    async def close(self) -> None:
        for person in self.people:
            await person.close()


async def console_tour(stack: ServiceStack, mailbox: Mailbox, requests: int = 24) -> Tour:
    """Populate the service and list its pages."""
    boss_address = fresh_address("operator")
    link = await asyncio.to_thread(
        run_signer, cli_env(stack), "users", "create", boss_address, "--admin"
    )
    boss = Person(stack.base, boss_address)
    await accept_invitation(boss, link)
    user = await invited_person(stack, mailbox, fresh_address("maria"))
    key, _ = await create_key(user, "chat bot")
    await create_key(user, "gift tracker")
    ids = []
    for index in range(requests):
        url = FOREIGN_URL if index % 6 == 5 else FETCH_URL
        ids.append((await sign(stack.base, key, url))[1])
    await wait_for_rows(user, ids[-1:])
    detail = f"/console/requests/{ids[5]}"

    # The links of each kind, as their mail carries them.
    invited = fresh_address("guest")
    mailbox.take(invited)
    await asyncio.to_thread(run_signer, cli_env(stack), "users", "invite", invited)
    accept = (await mailbox.wait_for(invited, "invited")).link
    stranger = Person(stack.base)
    await stranger.post("/console/forgot", {"email": user.email})
    reset = (await mailbox.wait_for(user.email, "reset")).link
    new_address = fresh_address("maria.new")
    await user.post(
        "/console/account/email",
        {"email": new_address, "password": "correct horse battery"},
        form_page="/console/account",
    )
    verify = (await mailbox.wait_for(new_address, "new email")).link

    def local(url: str) -> str:
        return url.removeprefix(stack.base)

    stops = [
        Stop("signin", "/console/signin", None),
        Stop("signup", "/console/signup", None),
        Stop("forgot", "/console/forgot", None),
        Stop("reset", local(reset), None),
        Stop("accept", local(accept), None),
        Stop("verify", local(verify), None),
        Stop("not-found", "/console/nothing-here", None),
        Stop("overview", "/console/", user),
        Stop("keys", "/console/keys", user),
        Stop("requests", "/console/requests", user),
        Stop("requests-failed", "/console/requests?status=failed", user),
        Stop("request-detail", detail, user),
        Stop("connect", "/console/connect", user),
        Stop("account", "/console/account", user),
        Stop("operator-users", "/console/operator/users", boss),
        Stop("operator-health", "/console/operator/health", boss),
        Stop("operator-keys", "/console/operator/keys", boss),
        Stop("operator-errors", "/console/operator/errors", boss),
        Stop("api-docs", "/docs", None),
    ]
    return Tour(stops, [boss, user, stranger])
