"""What the console reads of `usage_logs`: one user's figures, charts and rows, and the
operator's views across users.

Every query of a user's rows has `user_id = $1` first, so it runs on the
`(user_id, created_at)` index and cannot reach another user's rows. Pages go by keyset
(`created_at`, `id` below the last row shown), never by OFFSET, so the hundredth page
costs what the first does.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from .people import Database

__all__ = [
    "MAX_PAGE_ROWS",
    "Bucket",
    "KeyTotal",
    "Overview",
    "RequestFilters",
    "UsageRecord",
    "list_requests",
    "minute_buckets",
    "recent_errors",
    "request_detail",
    "requests_query",
    "top_keys",
]

MAX_PAGE_ROWS = 500
MAX_SEARCH_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Overview:
    """A user's figures: request counts, and over the last 7 days success and latency."""

    today: int
    last_7_days: int
    last_30_days: int
    successes_7_days: int
    p50_ms: float | None
    p95_ms: float | None

    @property
    def success_rate(self) -> float | None:
        return self.successes_7_days / self.last_7_days if self.last_7_days else None


@dataclass(frozen=True, slots=True)
class Bucket:
    """Requests in one hour or minute starting at `start`, and how many failed."""

    start: datetime
    requests: int
    failures: int


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One usage row as the console shows it."""

    id: int
    created_at: datetime
    request_id: str
    api_key_id: uuid.UUID | None
    key_prefix: str | None
    route: str
    dialect: str
    target: str
    success: bool
    status_code: int
    error_type: str | None
    error_message: str | None
    response_time_ms: float
    queue_wait_ms: float | None
    worker_id: str | None
    profile: str | None
    client_ip: str | None
    user_email: str | None = None  # filled in the operator's views only

    @property
    def cursor(self) -> str:
        """Where the next page starts: this row's time and id."""
        return f"{self.created_at.astimezone(UTC).isoformat()}~{self.id}"


@dataclass(frozen=True, slots=True)
class RequestFilters:
    """What the requests page filters by; None or empty: no filter."""

    key_id: uuid.UUID | None = None
    success: bool | None = None
    status_code: int | None = None
    route: str | None = None
    error_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    search: str | None = None


_RECORD_COLUMNS = """
    l.id, l.created_at, l.request_id, l.api_key_id, l.key_prefix, l.route, l.dialect, l.target,
    l.success, l.status_code, l.error_type, l.error_message, l.response_time_ms,
    l.queue_wait_ms, l.worker_id, l.profile, host(l.client_ip) AS client_ip
"""


def _record(row: asyncpg.Record, with_email: bool = False) -> UsageRecord:
    return UsageRecord(
        id=row["id"],
        created_at=row["created_at"],
        request_id=row["request_id"],
        api_key_id=row["api_key_id"],
        key_prefix=row["key_prefix"],
        route=row["route"],
        dialect=row["dialect"],
        target=row["target"],
        success=row["success"],
        status_code=row["status_code"],
        error_type=row["error_type"],
        error_message=row["error_message"],
        response_time_ms=row["response_time_ms"],
        queue_wait_ms=row["queue_wait_ms"],
        worker_id=row["worker_id"],
        profile=row["profile"],
        client_ip=row["client_ip"],
        user_email=row["email"] if with_email else None,
    )


async def _buckets(
    conn: Database, user_id: uuid.UUID, unit: str, count: int, now: datetime | None
) -> list[Bucket]:
    step = timedelta(hours=1) if unit == "hour" else timedelta(minutes=1)
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    last = moment.replace(second=0, microsecond=0)
    if unit == "hour":
        last = last.replace(minute=0)
    first = last - step * (count - 1)
    rows = await conn.fetch(
        """
        SELECT date_trunc($2, created_at AT TIME ZONE 'UTC') AS bucket,
               count(*) AS requests, count(*) FILTER (WHERE NOT success) AS failures
        FROM usage_logs
        WHERE user_id = $1 AND created_at >= $3 AND created_at < $4
          -- A deactivated user's refresh shows nothing: the live chart needs no other query.
          AND EXISTS (SELECT 1 FROM users WHERE id = $1 AND is_active)
        GROUP BY bucket
        """,
        user_id,
        unit,
        first,
        last + step,
    )
    found = {row["bucket"].replace(tzinfo=UTC): row for row in rows}
    buckets = []
    for index in range(count):
        start = first + step * index
        row = found.get(start)
        buckets.append(
            Bucket(start, row["requests"], row["failures"]) if row else Bucket(start, 0, 0)
        )
    return buckets


async def minute_buckets(
    conn: Database, user_id: uuid.UUID, now: datetime | None = None
) -> list[Bucket]:
    """The last 60 minutes, the current one last (empty for an inactive user)."""
    return await _buckets(conn, user_id, "minute", 60, now)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def requests_query(
    user_id: uuid.UUID,
    filters: RequestFilters,
    *,
    before: tuple[datetime, int] | None = None,
    limit: int = 50,
) -> tuple[str, list[Any]]:
    """The SQL and arguments of `list_requests` (the benchmark EXPLAINs them)."""
    clauses = ["l.user_id = $1"]
    args: list[Any] = [user_id]

    def add(clause: str, value: object) -> None:
        args.append(value)
        clauses.append(clause.replace("?", f"${len(args)}"))

    if filters.key_id is not None:
        add("l.api_key_id = ?", filters.key_id)
    if filters.success is not None:
        add("l.success = ?", filters.success)
    if filters.status_code is not None:
        add("l.status_code = ?", filters.status_code)
    if filters.route:
        add("l.route = ?", filters.route)
    if filters.error_type:
        add("l.error_type = ?", filters.error_type)
    if filters.since is not None:
        add("l.created_at >= ?", filters.since)
    if filters.until is not None:
        add("l.created_at < ?", filters.until)
    if filters.search:
        text = filters.search.replace("\x00", "")[:MAX_SEARCH_LENGTH]
        args.append(_like(text))
        # The expression of the trigram index `usage_logs_search_idx` (migration 0004).
        clauses.append(f"(l.target || ' ' || coalesce(l.error_message, '')) ILIKE ${len(args)}")
    if before is not None:
        args.extend(before)
        clauses.append(f"(l.created_at, l.id) < (${len(args) - 1}, ${len(args)})")
    args.append(max(1, min(limit, MAX_PAGE_ROWS)))
    sql = (
        f"SELECT {_RECORD_COLUMNS} FROM usage_logs AS l WHERE {' AND '.join(clauses)} "
        f"ORDER BY l.created_at DESC, l.id DESC LIMIT ${len(args)}"
    )
    return sql, args


async def list_requests(
    conn: Database,
    user_id: uuid.UUID,
    filters: RequestFilters,
    *,
    before: tuple[datetime, int] | None = None,
    limit: int = 50,
) -> list[UsageRecord]:
    """The user's rows newest first, filtered; `before` is the last row of the page
    before (its time and id)."""
    sql, args = requests_query(user_id, filters, before=before, limit=limit)
    return [_record(row) for row in await conn.fetch(sql, *args)]


async def request_detail(conn: Database, user_id: uuid.UUID, request_id: str) -> UsageRecord | None:
    """The user's row of this request; None when the user made no such request."""
    if len(request_id) > 64 or "\x00" in request_id:
        return None
    row = await conn.fetchrow(
        f"SELECT {_RECORD_COLUMNS} FROM usage_logs AS l WHERE l.user_id = $1 AND "
        "l.request_id = $2 ORDER BY l.created_at DESC LIMIT 1",
        user_id,
        request_id,
    )
    return _record(row) if row is not None else None


@dataclass(frozen=True, slots=True)
class KeyTotal:
    """One key's requests over a period, for the operator."""

    key_prefix: str
    user_email: str | None
    requests: int
    failures: int


async def top_keys(
    conn: Database, *, hours: int = 24, limit: int = 20, now: datetime | None = None
) -> list[KeyTotal]:
    """The keys with the most requests in the last `hours`, across users."""
    moment = now or datetime.now(UTC)
    rows = await conn.fetch(
        """
        SELECT l.key_prefix, u.email, count(*) AS requests,
               count(*) FILTER (WHERE NOT l.success) AS failures
        FROM usage_logs AS l LEFT JOIN users AS u ON u.id = l.user_id
        WHERE l.created_at >= $1 AND l.key_prefix IS NOT NULL
        GROUP BY l.key_prefix, u.email
        ORDER BY requests DESC, l.key_prefix LIMIT $2
        """,
        moment - timedelta(hours=hours),
        limit,
    )
    return [KeyTotal(r["key_prefix"], r["email"], r["requests"], r["failures"]) for r in rows]


async def recent_errors(conn: Database, *, limit: int = 50) -> list[UsageRecord]:
    """The newest failed requests across users (over the last day)."""
    rows = await conn.fetch(
        f"SELECT {_RECORD_COLUMNS}, u.email FROM usage_logs AS l "
        "LEFT JOIN users AS u ON u.id = l.user_id "
        "WHERE NOT l.success AND l.created_at >= now() - interval '1 day' "
        "ORDER BY l.created_at DESC, l.id DESC LIMIT $1",
        limit,
    )
    return [_record(row, with_email=True) for row in rows]
