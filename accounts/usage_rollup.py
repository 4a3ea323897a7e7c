"""A user's requests per UTC hour and latency bucket, kept in `usage_rollup`, so the
console's overview reads a few thousand small rows instead of a month of raw ones.

Hours are rolled up once they have ended, by the first overview after that
(`refresh_rollup`: one INSERT ... SELECT over the raw rows since the last hour done; the
other overviews of the hour only read). Usage rows can arrive late (the writer holds them
while Postgres is away), so each pass counts the last `LATE_HOURS` hours done again: a
late row shows once the next hour ends; rows later than that are missed by the rollup
(they stay in `usage_logs` and on the requests page). The hour in progress is read from
the raw rows. Latency percentiles come from the buckets (each 15 % wider than the one
before, interpolated within), as a Prometheus histogram's do.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .people import Database, connection_of
from .usage_queries import Bucket, Overview

__all__ = [
    "BUCKET_COUNT",
    "LATE_HOURS",
    "OverviewFigures",
    "bucket_bounds",
    "overview_figures",
    "percentile",
    "refresh_rollup",
]

LOW_MS, HIGH_MS, BUCKET_COUNT = 0.1, 100_000.0, 96
LATE_HOURS = 2
KEPT = timedelta(days=31)
_RATIO = (HIGH_MS / LOW_MS) ** (1 / BUCKET_COUNT)
# Bucket of a row's latency, as migrations/0004_console.sql describes it.
BUCKET_SQL = (
    "width_bucket(ln(greatest(response_time_ms, 0.001)::float8), "
    f"ln({LOW_MS}), ln({HIGH_MS}), {BUCKET_COUNT})"
)
_HOUR_SQL = "date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"


@dataclass(frozen=True, slots=True)
class OverviewFigures:
    """The overview's figures and its chart of the last 24 hours."""

    overview: Overview
    hourly: list[Bucket]


def bucket_bounds(bucket: int) -> tuple[float, float]:
    """The latencies (ms) bucket `bucket` holds: from, to."""
    if bucket <= 0:
        return 0.0, LOW_MS
    if bucket > BUCKET_COUNT:
        return HIGH_MS, HIGH_MS
    return LOW_MS * _RATIO ** (bucket - 1), LOW_MS * _RATIO**bucket


def percentile(counts: dict[int, int], quantile: float) -> float | None:
    """The latency below which `quantile` of the requests fall, from bucket counts."""
    total = sum(counts.values())
    if not total:
        return None
    rank = quantile * total
    seen = 0
    for bucket in sorted(counts):
        count = counts[bucket]
        if seen + count >= rank:
            low, high = bucket_bounds(bucket)
            return low + (high - low) * ((rank - seen) / count)
        seen += count
    return bucket_bounds(max(counts))[1]


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


async def refresh_rollup(db: Database, user_id: uuid.UUID, now: datetime | None = None) -> int:
    """Roll up the user's hours that have ended since the last time; hours rolled now."""
    current = _hour(now or datetime.now(UTC))
    oldest = current - timedelta(days=30)
    async with connection_of(db) as conn, conn.transaction():
        through = await conn.fetchval(
            "SELECT through FROM usage_rollup_marks WHERE user_id = $1 FOR UPDATE", user_id
        )
        if through is not None and through >= current:
            return 0  # done this hour: the next pass comes when it ends
        start = oldest if through is None else max(oldest, through - timedelta(hours=LATE_HOURS))
        await conn.execute(
            f"""
            INSERT INTO usage_rollup AS r (user_id, hour, bucket, requests, failures)
            SELECT $1, {_HOUR_SQL}, {BUCKET_SQL}, count(*), count(*) FILTER (WHERE NOT success)
            FROM usage_logs
            WHERE user_id = $1 AND created_at >= $2 AND created_at < $3
            GROUP BY 2, 3
            ON CONFLICT (user_id, hour, bucket)
            DO UPDATE SET requests = excluded.requests, failures = excluded.failures
            """,
            user_id,
            start,
            current,
        )
        await conn.execute(
            "INSERT INTO usage_rollup_marks (user_id, through) VALUES ($1, $2) "
            "ON CONFLICT (user_id) DO UPDATE SET through = excluded.through",
            user_id,
            current,
        )
        await conn.execute(
            "DELETE FROM usage_rollup WHERE user_id = $1 AND hour < $2", user_id, current - KEPT
        )
    return math.ceil((current - start).total_seconds() / 3600)


async def overview_figures(
    db: Database, user_id: uuid.UUID, now: datetime | None = None
) -> OverviewFigures:
    """Requests today, in 7 and 30 days; success and p50/p95 over 7 days; the last 24
    hours per hour. Rolls up what has ended first, then one query."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    current = _hour(moment)
    await refresh_rollup(db, user_id, moment)
    week = current - timedelta(days=7)
    # Per hour (counts and the chart) and, over the week, per latency bucket: about 750
    # rows whatever the traffic.
    rows = await db.fetch(
        f"""
        WITH counted AS (
            SELECT hour, bucket, requests, failures FROM usage_rollup
            WHERE user_id = $1 AND hour >= $2 AND hour < $3
            UNION ALL
            SELECT {_HOUR_SQL}, {BUCKET_SQL}, count(*), count(*) FILTER (WHERE NOT success)
            FROM usage_logs
            WHERE user_id = $1 AND created_at >= $3 AND created_at <= $4
            GROUP BY 1, 2
        )
        SELECT hour, NULL::smallint AS bucket, sum(requests)::bigint AS requests,
               sum(failures)::bigint AS failures
        FROM counted GROUP BY hour
        UNION ALL
        SELECT NULL, bucket, sum(requests)::bigint, 0 FROM counted
        WHERE hour >= $5 GROUP BY bucket
        """,
        user_id,
        current - timedelta(days=30),
        current,
        moment,
        week,
    )
    midnight = current.replace(hour=0)
    day_ago = current - timedelta(hours=23)
    today = week_total = month = week_failures = 0
    latency: dict[int, int] = {}
    per_hour: dict[datetime, list[int]] = {}
    for row in rows:
        if row["hour"] is None:
            latency[row["bucket"]] = row["requests"]
            continue
        hour, requests, failures = row["hour"].astimezone(UTC), row["requests"], row["failures"]
        month += requests
        if hour >= midnight:
            today += requests
        if hour >= week:
            week_total += requests
            week_failures += failures
        if hour >= day_ago:
            per_hour[hour] = [requests, failures]
    hourly = [
        Bucket(day_ago + timedelta(hours=n), *per_hour.get(day_ago + timedelta(hours=n), [0, 0]))
        for n in range(24)
    ]
    overview = Overview(
        today=today,
        last_7_days=week_total,
        last_30_days=month,
        successes_7_days=week_total - week_failures,
        p50_ms=percentile(latency, 0.5),
        p95_ms=percentile(latency, 0.95),
    )
    return OverviewFigures(overview, hourly)
