"""What `signer users create --admin` and `signer users invite` do: people who will sign
in to the console, each given a one-time link to choose their password.

`--admin` prints the link (the first operator has nobody to mail it); `invite` mails it
through `SIGNER_SMTP_URL`, or prints it when no SMTP server is configured. Links start
with `SIGNER_CONSOLE_BASE_URL`, else the API's own address.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import asyncpg

from accounts import people, tokens
from accounts.errors import AccountError, DuplicateUser
from console.app import listen_origin
from console.mail import Mailer, invite_mail

from .admin_cli import _fail, _run
from .environment import Environment

__all__ = ["console_base_url", "users_create_admin", "users_invite"]


def console_base_url(env: Environment) -> str:
    """Where mailed links point: the configured base URL, else the API's address."""
    configured = env.console.base_url.rstrip("/")
    return configured or listen_origin(env.api.host, env.api.port)


def _accept_link(env: Environment, token: str) -> str:
    return f"{console_base_url(env)}/console/accept?token={token}"


def users_create_admin(env: Environment, email: str, tier: str, *, if_missing: bool = False) -> int:
    """`signer users create EMAIL --admin`: an operator, and the link to set a password
    alone on stdout (so `$(...)` captures it); the rest on stderr. With `if_missing`, an
    existing user is made an operator, and gets a link unless they have a password."""

    async def work(conn: asyncpg.Connection[Any]) -> None:
        try:
            person = await people.create_person(conn, email, tier=tier, admin=True)
        except DuplicateUser:
            existing = await people.find_person(conn, email) if if_missing else None
            if existing is None:
                raise
            person = await people.set_admin(conn, existing.id, True)
        if person.has_password:
            print(f"{person.email} is an operator; their password is unchanged", file=sys.stderr)
            return
        token = await tokens.issue_token(conn, person.id, "invite", person.email)
        print(
            f"operator {person.email} ({person.tier}): open this link within an hour to "
            "choose a password:",
            file=sys.stderr,
        )
        print(_accept_link(env, token))

    return _run(env, work)


def users_invite(env: Environment, email: str, tier: str) -> int:
    """`signer users invite EMAIL`: a user who chooses a password by the mailed link."""
    link: list[str] = []

    async def work(conn: asyncpg.Connection[Any]) -> None:
        person = await people.find_person(conn, email)
        if person is None:
            person = await people.create_person(conn, email, tier=tier)
        elif person.has_password:
            raise AccountError(f"{person.email} has an account already")
        token = await tokens.issue_token(conn, person.id, "invite", person.email)
        link.append(_accept_link(env, token))
        link.append(person.email)

    status = _run(env, work)
    if status != 0:
        return status
    accept, address = link
    mailer = Mailer(env.mail)
    if not mailer.configured:
        print(f"no SIGNER_SMTP_URL: send {address} this link (valid for an hour): {accept}")
        return 0
    if not asyncio.run(mailer.send(invite_mail(address, accept))):
        return _fail(f"the invitation to {address} could not be mailed: {accept}")
    print(f"invitation mailed to {address}")
    return 0
