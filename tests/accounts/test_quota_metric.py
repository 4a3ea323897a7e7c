"""`signer_quota_use_ratio`: each tier's highest share of its daily budget, from Postgres."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from accounts import users as accounts
from accounts.runtime import QUOTA_TODAY_SQL, quota_use_by_tier


@pytest.fixture
def conn(migrated_conn: asyncpg.Connection[Any]) -> asyncpg.Connection[Any]:
    return migrated_conn


async def _used(conn: asyncpg.Connection[Any], email: str, count: int, days_ago: int = 0) -> None:
    await conn.execute(
        "INSERT INTO quota_usage (user_id, date, request_count)"
        " SELECT id, (now() AT TIME ZONE 'utc')::date - $2::int, $3 FROM users WHERE email = $1",
        email,
        days_ago,
        count,
    )


async def test_each_tier_reports_its_busiest_user_today(conn: asyncpg.Connection[Any]) -> None:
    await accounts.create_user(conn, "light@example.com")
    await accounts.create_user(conn, "heavy@example.com")
    await accounts.create_user(conn, "paying@example.com", "api_key")
    await accounts.create_user(conn, "unlimited@example.com", "api_key")
    await accounts.create_key(conn, "paying@example.com", "a", per_day=1000)
    await accounts.create_key(conn, "paying@example.com", "b", per_day=1000)
    await accounts.create_key(conn, "unlimited@example.com", "c")
    await _used(conn, "light@example.com", 100)
    await _used(conn, "heavy@example.com", 4500)
    await _used(conn, "heavy@example.com", 4999, days_ago=1)  # yesterday does not count
    await _used(conn, "paying@example.com", 1500)
    await _used(conn, "unlimited@example.com", 10**6)

    use = quota_use_by_tier(list(await conn.fetch(QUOTA_TODAY_SQL)), free_per_day=5000)

    assert use == {"free": pytest.approx(0.9), "api_key": pytest.approx(0.75)}
    assert quota_use_by_tier([], free_per_day=5000) == {"free": 0.0, "api_key": 0.0}
