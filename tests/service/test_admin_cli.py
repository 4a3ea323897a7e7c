"""`signer migrate`, `users`, `keys` and `usage` as an operator runs them: real processes
on a fresh Postgres database."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest

from tests.postgres_server import PostgresServer

KEY = re.compile(r"sk_[0-9A-Za-z]{8}_[0-9A-Za-z]{32}")


@dataclass
class Ran:
    code: int
    out: str
    err: str


def signer(database_url: str, *args: str, **env: str) -> Ran:
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("SIGNER_KEY_SECRET", "SIGNER_ADMIN_TOKEN")
    }
    environment.update(DATABASE_URL=database_url, **env)
    done = subprocess.run(
        [sys.executable, "-m", "service", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def failed(ran: Ran, *words: str) -> None:
    """A clean failure: status 1, one line on stderr naming `words`, no traceback."""
    assert ran.code == 1, ran
    assert ran.err.count("\n") == 1, ran.err
    assert ran.err.startswith("signer: ")
    assert "Traceback" not in ran.err
    for word in words:
        assert word in ran.err


def fetch(database_url: str, query: str) -> list[asyncpg.Record]:
    """Run one query in a loop of its own (the tests are synchronous, like the commands)."""

    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetch(query)
        finally:
            await conn.close()

    return asyncio.run(run())


@pytest.fixture
async def database_url(postgres: PostgresServer) -> AsyncIterator[str]:
    async with postgres.database() as url:
        yield url


@pytest.fixture
def migrated(database_url: str) -> str:
    ran = signer(database_url, "migrate")
    assert ran.code == 0, ran
    return database_url


def test_commands_refuse_an_unmigrated_database_then_migrate_applies(database_url: str) -> None:
    failed(signer(database_url, "users", "list"), "signer migrate")
    first = signer(database_url, "migrate")
    assert first.code == 0, first
    assert "applied 0001_accounts.sql" in first.out
    assert "applied 0002_usage.sql" in first.out
    again = signer(database_url, "migrate")
    assert again.code == 0
    assert "applied" not in again.out


def test_unreachable_postgres_is_one_line() -> None:
    url = "postgresql://someone:hunter2@127.0.0.1:1/signer"
    for args in (("users", "list"), ("migrate",), ("keys", "revoke", "sk_AbCd1234")):
        ran = signer(url, *args)
        failed(ran, "127.0.0.1:1/signer")
        assert "hunter2" not in ran.err


def test_users(migrated: str) -> None:
    created = signer(migrated, "users", "create", "Ada@example.com", "--tier", "api_key")
    assert created.code == 0, created
    assert "Ada@example.com" in created.out
    assert signer(migrated, "users", "create", "bob@example.com").code == 0
    failed(signer(migrated, "users", "create", "ADA@EXAMPLE.COM"), "already exists")
    failed(signer(migrated, "users", "create", "not-an-email"), "not an email address")
    assert signer(migrated, "users", "create", "x@example.com", "--tier", "gold").code == 2

    table = signer(migrated, "users", "list").out.splitlines()
    assert table[0].split() == ["email", "tier", "active", "keys", "created", "(UTC)"]
    assert table[1].split()[:4] == ["Ada@example.com", "api_key", "yes", "0"]
    assert table[2].split()[:4] == ["bob@example.com", "free", "yes", "0"]
    listed = json.loads(signer(migrated, "users", "list", "--json").out)
    assert [user["email"] for user in listed] == ["Ada@example.com", "bob@example.com"]

    moved = signer(migrated, "users", "set-tier", "BOB@example.com", "api_key", "--json")
    assert json.loads(moved.out)[0]["tier"] == "api_key"
    failed(signer(migrated, "users", "set-tier", "carol@example.com", "free"), "no user")


def test_keys(migrated: str) -> None:
    assert signer(migrated, "users", "create", "ada@example.com").code == 0
    created = signer(
        migrated,
        "keys",
        "create",
        "--user",
        "ADA@example.com",
        "--name",
        "laptop",
        "--per-minute",
        "10",
        SIGNER_KEY_SECRET="cli-secret",
    )
    assert created.code == 0, created
    key = created.out.strip()
    assert KEY.fullmatch(key)  # stdout is the key alone, for $(...)
    assert "will not be shown again" in created.err
    prefix = key[:11]

    (row,) = fetch(migrated, "SELECT key_hash, k::text AS everything FROM api_keys AS k")
    stored, everything = row["key_hash"], row["everything"]
    assert stored == hmac.new(b"cli-secret", key.encode(), hashlib.sha256).hexdigest()
    assert key.split("_")[2] not in everything

    as_json = signer(
        migrated, "keys", "create", "--user", "ada@example.com", "--name", "ci", "--json"
    )
    assert KEY.fullmatch(json.loads(as_json.out)["key"])

    table = signer(migrated, "keys", "list", "--user", "ada@example.com")
    assert table.code == 0
    assert prefix in table.out
    assert key not in table.out
    rows = [line.split() for line in table.out.splitlines()[1:]]
    assert rows[0][:7] == [prefix, "laptop", "ada@example.com", "free", "active", "10", "-"]
    failed(signer(migrated, "keys", "list", "--user", "bob@example.com"), "no user")
    failed(
        signer(migrated, "keys", "create", "--user", "bob@example.com", "--name", "x"), "no user"
    )
    assert (
        signer(migrated, "keys", "create", "--user", "a@b.c", "--name", "x", "--per-day", "0").code
        == 2
    )

    revoked = signer(migrated, "keys", "revoke", prefix)
    assert revoked.code == 0, revoked
    assert f"revoked {prefix}" in revoked.out
    listed = json.loads(signer(migrated, "keys", "list", "--json").out)
    assert (listed[0]["prefix"], listed[0]["is_active"]) == (prefix, False)
    failed(signer(migrated, "keys", "revoke", "sk_00000000"), "no key")
    failed(signer(migrated, "keys", "revoke", "garbage"), "not a key prefix")


def test_usage(migrated: str) -> None:
    assert signer(migrated, "users", "create", "ada@example.com").code == 0
    fetch(
        migrated,
        "INSERT INTO usage_logs (request_id, user_id, route, dialect, target, success,"
        " status_code, response_time_ms) SELECT 'r', id, '/signature', 'structured', 't',"
        " ms < 40, 200, ms FROM users, unnest(ARRAY[10, 20, 30, 40]::real[]) AS ms",
    )
    table = signer(migrated, "usage", "--user", "ada@example.com", "--days", "3")
    assert table.code == 0, table
    lines = table.out.splitlines()
    assert lines[0].split() == ["day", "(UTC)", "requests", "success", "p50", "ms", "p95", "ms"]
    assert len(lines) == 4
    assert lines[1].split()[1:] == ["0", "-", "-", "-"]
    assert lines[3].split()[1:] == ["4", "75.0%", "25.0", "38.5"]
    report = json.loads(signer(migrated, "usage", "--json").out)
    assert len(report) == 7
    assert report[-1]["requests"] == 4
    failed(signer(migrated, "usage", "--user", "bob@example.com"), "no user")
    assert signer(migrated, "usage", "--days", "0").code == 2
