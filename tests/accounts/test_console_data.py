"""The console's data in a real Postgres: passwords, one-time tokens, people, one user's
keys and usage rows, each query held to its user."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from accounts import passwords, people, tokens, usage_queries, usage_rollup, user_keys
from accounts.errors import DuplicateUser, InvalidInput


async def _person(conn: asyncpg.Connection[Any], email: str) -> people.Person:
    person = await people.create_person(conn, email)
    await passwords.set_password(conn, person.id, "long enough password")
    return await people.mark_verified(conn, person.id)


async def test_passwords_are_argon2id_and_checked(migrated_conn: asyncpg.Connection[Any]) -> None:
    person = await _person(migrated_conn, "Pat@Example.com")
    stored = await migrated_conn.fetchval(
        "SELECT password_hash FROM users WHERE id = $1", person.id
    )
    assert stored.startswith("$argon2id$")
    assert "long enough password" not in stored
    found = await passwords.authenticate(migrated_conn, "pat@example.COM", "long enough password")
    assert found is not None
    assert found.id == person.id
    assert await passwords.authenticate(migrated_conn, "pat@example.com", "wrong password") is None
    assert await passwords.authenticate(migrated_conn, "nobody@example.com", "x" * 12) is None
    await people.set_active(migrated_conn, person.id, False)
    assert (
        await passwords.authenticate(migrated_conn, "pat@example.com", "long enough password")
        is None
    )
    with pytest.raises(InvalidInput, match="at least 10"):
        await passwords.set_password(migrated_conn, person.id, "short")
    with pytest.raises(DuplicateUser):
        await people.create_person(migrated_conn, "PAT@example.com")


async def test_a_token_works_once_for_its_purpose_within_the_hour(
    migrated_conn: asyncpg.Connection[Any],
) -> None:
    person = await _person(migrated_conn, "tok@example.com")
    raw = await tokens.issue_token(migrated_conn, person.id, "reset", person.email)
    stored = await migrated_conn.fetchval("SELECT token_hash FROM one_time_tokens")
    assert raw not in stored  # only the digest is kept
    assert await tokens.redeem_token(migrated_conn, raw, "verify") is None  # other purpose
    assert await tokens.peek_token(migrated_conn, raw, "reset") is not None
    used = await tokens.redeem_token(migrated_conn, raw, "reset")
    assert used is not None
    assert used.user_id == person.id
    assert await tokens.redeem_token(migrated_conn, raw, "reset") is None  # once only
    # A newer link voids the older one; an expired one never works.
    older = await tokens.issue_token(migrated_conn, person.id, "invite", person.email)
    newer = await tokens.issue_token(migrated_conn, person.id, "invite", person.email)
    assert await tokens.redeem_token(migrated_conn, older, "invite") is None
    assert await tokens.redeem_token(migrated_conn, newer, "invite") is not None
    stale = await tokens.issue_token(
        migrated_conn, person.id, "verify", person.email, lifetime=timedelta(seconds=-1)
    )
    assert await tokens.redeem_token(migrated_conn, stale, "verify") is None


async def _rows(
    conn: asyncpg.Connection[Any], user_id: uuid.UUID, count: int, start: datetime
) -> None:
    await conn.executemany(
        "INSERT INTO usage_logs (created_at, request_id, user_id, route, dialect, target,"
        " success, status_code, error_type, error_message, response_time_ms)"
        " VALUES ($1, $2, $3, 'api_signature', 'structured', $4, $5, $6, $7, $8, $9)",
        [
            (
                start + timedelta(seconds=i),
                f"{user_id.hex[:8]}-{i}",
                user_id,
                "evil.example.org/x" if i % 10 == 0 else "webcast.tiktok.com/webcast/im/fetch/",
                i % 10 != 0,
                400 if i % 10 == 0 else 200,
                "VALIDATION_ERROR" if i % 10 == 0 else None,
                "not a TikTok host" if i % 10 == 0 else None,
                float(i),
            )
            for i in range(count)
        ],
    )


async def test_usage_queries_page_filter_and_stay_within_the_user(
    migrated_conn: asyncpg.Connection[Any],
) -> None:
    mine = await _person(migrated_conn, "mine@example.com")
    theirs = await _person(migrated_conn, "theirs@example.com")
    start = datetime.now(UTC) - timedelta(minutes=30)
    await _rows(migrated_conn, mine.id, 120, start)
    await _rows(migrated_conn, theirs.id, 50, start)

    seen: list[str] = []
    before = None
    while True:
        page = await usage_queries.list_requests(
            migrated_conn, mine.id, usage_queries.RequestFilters(), before=before, limit=50
        )
        seen += [row.request_id for row in page]
        if len(page) < 50:
            break
        before = (page[-1].created_at, page[-1].id)
    assert len(seen) == len(set(seen)) == 120
    assert all(request_id.startswith(mine.id.hex[:8]) for request_id in seen)
    assert seen[0].endswith("-119")  # newest first

    failed = await usage_queries.list_requests(
        migrated_conn, mine.id, usage_queries.RequestFilters(search="evil.example")
    )
    assert len(failed) == 12
    assert {row.error_type for row in failed} == {"VALIDATION_ERROR"}
    by_message = await usage_queries.list_requests(
        migrated_conn, mine.id, usage_queries.RequestFilters(search="TikTok host", success=False)
    )
    assert len(by_message) == 12

    figures = (await usage_rollup.overview_figures(migrated_conn, mine.id)).overview
    assert figures.last_30_days == 120
    assert figures.successes_7_days == 108
    minutes = await usage_queries.minute_buckets(migrated_conn, mine.id)
    assert len(minutes) == 60
    assert sum(b.requests for b in minutes) == 120

    theirs_id = f"{theirs.id.hex[:8]}-3"
    assert await usage_queries.request_detail(migrated_conn, mine.id, theirs_id) is None
    assert await usage_queries.request_detail(migrated_conn, theirs.id, theirs_id) is not None


async def test_a_users_keys_are_theirs_alone(migrated_conn: asyncpg.Connection[Any]) -> None:
    owner = await _person(migrated_conn, "owner@example.com")
    other = await _person(migrated_conn, "other@example.com")
    info, key = await user_keys.create_user_key(
        migrated_conn,
        owner.id,
        "bot",
        10,
        None,
        most_per_minute=60,
        most_per_day=None,
        key_secret="",
    )
    assert key.startswith(info.prefix)
    with pytest.raises(InvalidInput, match="at most 60"):
        await user_keys.create_user_key(
            migrated_conn,
            owner.id,
            "x",
            61,
            None,
            most_per_minute=60,
            most_per_day=None,
            key_secret="",
        )
    assert await user_keys.get_user_key(migrated_conn, other.id, info.id) is None
    assert not await user_keys.revoke_user_key(migrated_conn, other.id, info.id)
    assert (await user_keys.list_user_keys(migrated_conn, owner.id))[0].is_active
    assert await user_keys.revoke_user_key(migrated_conn, owner.id, info.id)
    assert not (await user_keys.list_user_keys(migrated_conn, owner.id))[0].is_active


async def test_the_rollup_counts_what_the_raw_rows_hold(
    migrated_conn: asyncpg.Connection[Any],
) -> None:
    person = await _person(migrated_conn, "rolled@example.com")
    now = datetime.now(UTC)
    # 300 rows over the last three days (latency i ms), 30 of them failed.
    await _rows(migrated_conn, person.id, 300, now - timedelta(days=3))
    await migrated_conn.execute(
        "UPDATE usage_logs SET created_at = created_at + (id % 300) * interval '14 minutes'"
    )
    exact = await migrated_conn.fetchrow(
        "SELECT count(*) AS n, count(*) FILTER (WHERE success) AS ok,"
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY response_time_ms) AS p50,"
        " percentile_cont(0.95) WITHIN GROUP (ORDER BY response_time_ms) AS p95,"
        " count(*) FILTER (WHERE created_at >= $2) AS day"
        " FROM usage_logs WHERE user_id = $1 AND created_at <= $3",
        person.id,
        now.replace(hour=0, minute=0, second=0, microsecond=0),
        now,
    )
    assert exact is not None
    first = await usage_rollup.overview_figures(migrated_conn, person.id, now)
    rolled = await migrated_conn.fetchval(
        "SELECT sum(requests) FROM usage_rollup WHERE user_id = $1", person.id
    )
    assert rolled is not None
    assert rolled > 0
    for figures in (first, await usage_rollup.overview_figures(migrated_conn, person.id, now)):
        overview = figures.overview
        assert overview.last_30_days == overview.last_7_days == exact["n"]
        assert overview.successes_7_days == exact["ok"]
        assert overview.today == exact["day"]
        # Within a bucket's width (15 %) of the exact percentiles.
        assert overview.p50_ms == pytest.approx(exact["p50"], rel=0.16)
        assert overview.p95_ms == pytest.approx(exact["p95"], rel=0.16)
        assert sum(b.requests for b in figures.hourly) <= exact["n"]
        assert len(figures.hourly) == 24

    # A row landing late in an hour already rolled up is counted once the next hour ends.
    late = now.replace(minute=0, second=0, microsecond=0) - timedelta(minutes=30)
    await migrated_conn.execute(
        "INSERT INTO usage_logs (created_at, request_id, user_id, route, dialect, target,"
        " success, status_code, response_time_ms) VALUES ($1, 'late', $2, 'api_signature',"
        " 'structured', 'x', true, 200, 3)",
        late,
        person.id,
    )
    again = await usage_rollup.overview_figures(migrated_conn, person.id, now)
    assert again.overview.last_30_days == exact["n"]
    later = await usage_rollup.overview_figures(migrated_conn, person.id, now + timedelta(hours=1))
    assert later.overview.last_30_days == exact["n"] + 1


def test_percentiles_from_buckets() -> None:
    low, high = usage_rollup.bucket_bounds(40)
    assert high / low == pytest.approx(1.155, rel=0.01)
    assert usage_rollup.percentile({}, 0.5) is None
    assert usage_rollup.percentile({40: 10}, 0.5) == pytest.approx((low + high) / 2)
