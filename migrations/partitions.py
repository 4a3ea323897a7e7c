"""Daily partitions of `usage_logs`: created days ahead, dropped past retention.

`signer migrate` runs the upkeep once, so a fresh database takes usage rows at once, and
the service runs it periodically after that. One run is one transaction under an advisory
lock: re-running changes nothing, and replicas running it at the same moment take turns.

Days are UTC days: the partition `usage_logs_20261123` holds rows with
`2026-11-23 00:00+00 <= created_at < 2026-11-24 00:00+00`, whatever the session's
time zone. Retention keeps today and the `retention_days` days before it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    import asyncpg
    from asyncpg.pool import PoolConnectionProxy

__all__ = [
    "PARTITION_LOCK_KEY",
    "Connection",
    "PartitionChanges",
    "ensure_partitions",
    "partition_name",
    "upkeep_partitions",
    "utc_today",
]

# "signpart" in ASCII: a fixed advisory-lock key no other part of the service uses.
PARTITION_LOCK_KEY = int.from_bytes(b"signpart", "big")

Connection: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"

_DAY_PARTITION = re.compile(r"usage_logs_(\d{8})")
_DEFAULT_PARTITION = "usage_logs_default"
_MOVING = "usage_logs_moving"


@dataclass(frozen=True)
class PartitionChanges:
    """What one upkeep run did; false when it had nothing to do."""

    created: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    rescued_rows: int = 0  # moved out of the default partition into their day's partition
    expired_rows: int = 0  # deleted from the default partition, being past retention
    quota_rows_deleted: int = 0

    def __bool__(self) -> bool:
        return bool(self.describe())

    def describe(self) -> list[str]:
        """One line per change, for a command's output or a log."""
        lines = [f"created partition {name}" for name in self.created]
        lines += [f"dropped partition {name}" for name in self.dropped]
        if self.rescued_rows:
            lines.append(f"moved {self.rescued_rows} usage rows out of {_DEFAULT_PARTITION}")
        if self.expired_rows:
            lines.append(f"deleted {self.expired_rows} expired rows from {_DEFAULT_PARTITION}")
        if self.quota_rows_deleted:
            lines.append(f"deleted {self.quota_rows_deleted} expired quota_usage rows")
        return lines


def partition_name(day: date) -> str:
    """The name of the partition holding `day` (UTC), e.g. `usage_logs_20261123`."""
    return f"usage_logs_{day:%Y%m%d}"


def utc_today(now: datetime | None = None) -> date:
    """Today's UTC date (of `now` when given, which must be time-zone aware)."""
    return (now or datetime.now(UTC)).astimezone(UTC).date()


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _literal(moment: datetime) -> str:
    # DDL takes no bind parameters; a value formatted from a datetime cannot inject SQL.
    return f"'{moment:%Y-%m-%d %H:%M:%S}+00'"


async def ensure_partitions(
    conn: Connection, *, today: date, ahead_days: int, retention_days: int
) -> PartitionChanges:
    """Create partitions for `today`..`today + ahead_days` and drop those past retention.

    Rows that landed in the default partition (for a day that had no partition yet) are
    moved into their day's partition when it is created; those past retention are deleted,
    as are `quota_usage` rows past retention.
    """
    if ahead_days < 0 or retention_days < 1:
        raise ValueError("ahead_days must be >= 0 and retention_days >= 1")
    cutoff = today - timedelta(days=retention_days)
    last = today + timedelta(days=ahead_days)
    async with conn.transaction():
        # Waits for a concurrent run to commit; the catalog read below then sees its work.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", PARTITION_LOCK_KEY)
        existing = await _day_partitions(conn)
        dropped = sorted(name for day, name in existing.items() if day < cutoff)
        expired = await conn.execute(
            f"DELETE FROM {_DEFAULT_PARTITION} WHERE created_at < $1", _start_of(cutoff)
        )
        quota = await conn.execute("DELETE FROM quota_usage WHERE date < $1", cutoff)
        # Past days found in the default partition get their partition too, keeping the
        # default partition empty: Postgres scans it whenever a partition is added.
        stray = await conn.fetch(
            f"SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date AS day"
            f" FROM {_DEFAULT_PARTITION} WHERE created_at < $1",
            _start_of(last + timedelta(days=1)),
        )
        wanted = {today + timedelta(days=n) for n in range(ahead_days + 1)}
        wanted |= {record["day"] for record in stray}
        missing = sorted(wanted - existing.keys())
        rescued = 0
        if dropped or missing:
            # Adding or dropping a partition needs this lock on the parent anyway. Taken
            # first, it is taken parent before partitions, the order queries use, where
            # DROP TABLE would lock the partition before the parent (and could deadlock
            # with a reader). It also holds writers off until commit: a row inserted into
            # the default partition for a day being created would make the creation fail.
            await conn.execute("LOCK TABLE usage_logs IN ACCESS EXCLUSIVE MODE")
            for name in dropped:
                await conn.execute(f"DROP TABLE {name}")
            for day in missing:
                rescued += await _create_partition(conn, day)
    return PartitionChanges(
        created=tuple(partition_name(day) for day in missing),
        dropped=tuple(dropped),
        rescued_rows=rescued,
        expired_rows=_row_count(expired),
        quota_rows_deleted=_row_count(quota),
    )


async def upkeep_partitions(
    pool: asyncpg.Pool[Any], *, ahead_days: int, retention_days: int
) -> PartitionChanges:
    """The periodic job: `ensure_partitions` for today's UTC date on a pooled connection."""
    async with pool.acquire() as conn:
        return await ensure_partitions(
            conn, today=utc_today(), ahead_days=ahead_days, retention_days=retention_days
        )


async def _day_partitions(conn: Connection) -> dict[date, str]:
    records = await conn.fetch(
        "SELECT child.relname FROM pg_inherits"
        " JOIN pg_class child ON child.oid = pg_inherits.inhrelid"
        " WHERE pg_inherits.inhparent = 'usage_logs'::regclass"
    )
    days: dict[date, str] = {}
    for record in records:
        name: str = record["relname"]
        found = _DAY_PARTITION.fullmatch(name)
        if found:
            days[datetime.strptime(found[1], "%Y%m%d").date()] = name
    return days


async def _create_partition(conn: Connection, day: date) -> int:
    """Create the partition of `day`, moving its rows out of the default partition first."""
    start, end = _start_of(day), _start_of(day + timedelta(days=1))
    # Postgres refuses to add a partition while the default one holds rows of its range,
    # so those rows wait in a temporary table and are inserted again once it exists.
    await conn.execute(f"CREATE TEMP TABLE {_MOVING} (LIKE usage_logs)")
    moved = await conn.execute(
        f"WITH moved AS (DELETE FROM {_DEFAULT_PARTITION}"
        " WHERE created_at >= $1 AND created_at < $2 RETURNING *)"
        f" INSERT INTO {_MOVING} SELECT * FROM moved",
        start,
        end,
    )
    await conn.execute(
        f"CREATE TABLE {partition_name(day)} PARTITION OF usage_logs"
        f" FOR VALUES FROM ({_literal(start)}) TO ({_literal(end)})"
    )
    # The rows keep their ids: they were generated once, when the rows first came in.
    await conn.execute(f"INSERT INTO usage_logs OVERRIDING SYSTEM VALUE SELECT * FROM {_MOVING}")
    await conn.execute(f"DROP TABLE {_MOVING}")
    return _row_count(moved)


def _row_count(status: str) -> int:
    # asyncpg returns the command tag, e.g. "DELETE 3" or "INSERT 0 3".
    return int(status.rsplit(" ", 1)[-1])
