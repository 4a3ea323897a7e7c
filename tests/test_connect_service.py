"""A connect through the service as users run it (`signer api`, `signer worker`, Postgres,
Redis) to the sandbox run as users run it: its usage row and what it counts."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from sandbox import DEFAULT_ROOM_ID
from tests.sandbox_process import SandboxProcess, sandbox_process
from tests.service_stack import ServiceStack, issue_key, service_stack

WEIGHT = 3


@pytest.fixture(scope="module")
def tiktok() -> Iterator[SandboxProcess]:
    with sandbox_process() as running:
        yield running


@pytest.fixture(scope="module")
def stack(tiktok: SandboxProcess) -> Iterator[ServiceStack]:
    env = {
        **tiktok.signer_env(),
        "SIGNER_LIMIT_CONNECT_WEIGHT": str(WEIGHT),
        "SIGNER_USAGE_FLUSH_INTERVAL_SECONDS": "0.1",
    }
    with service_stack(limits=True, env=env) as running:
        yield running


def _get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


async def _fetch(database_url: str, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


def _wait_for(database_url: str, query: str, *args: object) -> list[Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        rows = asyncio.run(_fetch(database_url, query, *args))
        if rows:
            return rows
        time.sleep(0.2)
    raise AssertionError(f"no rows for {query}")


def test_a_connect_leaves_its_usage_row_and_counts_its_weight(stack: ServiceStack) -> None:
    key = issue_key(stack.env, "connect@example.com")
    headers = {"X-Api-Key": key, "x-cookie-header": "sessionid=never-stored-anywhere"}
    status, answer, _ = _get(f"{stack.base}/webcast/fetch?unique_id=sandbox", headers)
    assert status == 200
    assert answer["X-Room-Id"] == DEFAULT_ROOM_ID
    request_id = answer["X-Request-Id"]
    database_url = stack.env["DATABASE_URL"]
    [row] = _wait_for(database_url, "SELECT * FROM usage_logs WHERE request_id = $1", request_id)
    assert row["route"] == "webcast_fetch"
    assert row["success"] is True
    assert row["room_id"] == DEFAULT_ROOM_ID
    assert row["strategy"] == "fetch"
    assert row["upstream_status"] == 200
    assert row["upstream_ms"] > 0
    assert row["cost"] == WEIGHT
    assert row["worker_id"]  # the signature came from a worker through the queue
    assert row["profile"]
    assert row["target"] == f"room/{DEFAULT_ROOM_ID}"
    assert "never-stored" not in json.dumps({k: str(v) for k, v in dict(row).items()})

    [quota] = _wait_for(
        database_url,
        "SELECT q.request_count FROM quota_usage q JOIN users u ON u.id = q.user_id"
        " WHERE u.email = $1",
        "connect@example.com",
    )
    assert quota["request_count"] == WEIGHT

    # A user TikTok does not know: a 404 row of its own, with nothing from upstream.
    status, answer, body = _get(f"{stack.base}/webcast/fetch?unique_id=nobody_at_all", headers)
    assert status == 404
    assert json.loads(body)["code"] == 404
    [missing] = _wait_for(
        database_url,
        "SELECT * FROM usage_logs WHERE request_id = $1",
        answer["X-Request-Id"],
    )
    assert missing["error_type"] == "NOT_FOUND"
    assert missing["room_id"] is None
