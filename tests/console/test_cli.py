"""`signer users create --admin` and `signer users invite` as a user runs them: the first
operator gets a one-time link on stdout; an invitation without SMTP prints its link."""

from __future__ import annotations

import asyncio
import os
import re

import asyncpg

from tests.postgres_server import PostgresServer
from tests.service_stack import run_signer

BASE = "https://sign.example.com"
ACCEPT = re.compile(rf"{re.escape(BASE)}/console/accept\?token=[A-Za-z0-9_-]{{43}}")


async def _flags(url: str, email: str) -> tuple[bool, bool]:
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT is_admin, password_hash IS NULL AS no_password FROM users WHERE email = $1",
            email,
        )
    finally:
        await conn.close()
    assert row is not None
    return row["is_admin"], row["no_password"]


def test_the_first_operator_and_an_invitation_get_their_links(postgres: PostgresServer) -> None:
    url = asyncio.run(postgres.fresh_database())
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNER_SMTP")}
        env.update(DATABASE_URL=url, SIGNER_CONSOLE_BASE_URL=BASE)
        run_signer(env, "migrate")
        link = run_signer(env, "users", "create", "root@example.com", "--admin")
        assert ACCEPT.fullmatch(link), link
        assert asyncio.run(_flags(url, "root@example.com")) == (True, True)

        said = run_signer(env, "users", "invite", "guest@example.com")
        assert "no SIGNER_SMTP_URL" in said
        assert ACCEPT.search(said), said
        assert asyncio.run(_flags(url, "guest@example.com")) == (False, True)
    finally:
        asyncio.run(postgres.drop(url))
