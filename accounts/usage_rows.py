"""`UsageRow`, one request as `usage_logs` stores it, and what a batch of rows adds to
`quota_usage` and `api_keys.last_used`.

What counts toward a user's quota: every request made with one of the user's keys that the
rate limiter let in, whatever came of it (signed, invalid URL, engine busy). That is what
the limiter itself counts, so the daily figure in `quota_usage` and the limiter's day
window agree. Refusals by the limiter (429) are not counted, just as the limiter does not
count them; anonymous rows (no user) have no quota row at all.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

__all__ = [
    "USAGE_COLUMNS",
    "BatchTotals",
    "PreparedRow",
    "UsageRow",
    "batch_totals",
    "counts_toward_quota",
    "decode_inet",
    "encode_inet",
    "prepare_row",
    "storable",
    "utc",
]

# The order of `PreparedRow.record`; `id` is an identity column Postgres fills.
USAGE_COLUMNS = (
    "created_at",
    "request_id",
    "user_id",
    "api_key_id",
    "key_prefix",
    "client_ip",
    "route",
    "dialect",
    "target",
    "success",
    "status_code",
    "error_type",
    "error_message",
    "response_time_ms",
    "queue_wait_ms",
    "worker_id",
    "profile",
    "room_id",
    "strategy",
    "upstream_status",
    "upstream_ms",
    "cost",
)

RATE_LIMIT_STATUS = 429
RATE_LIMIT_ERROR = "RATE_LIMIT_ERROR"


@dataclass(slots=True)
class UsageRow:
    """One request, signed or refused, as it is stored in `usage_logs`."""

    created_at: datetime  # tz-aware UTC; a naive value is taken as UTC
    request_id: str
    route: str
    dialect: str
    target: str  # signed host+path, or room url
    success: bool
    status_code: int
    response_time_ms: float
    user_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None
    key_prefix: str | None = None
    client_ip: str | None = None
    error_type: str | None = None
    error_message: str | None = None  # cut to `max_message_chars` when written
    queue_wait_ms: float | None = None
    worker_id: str | None = None
    profile: str | None = None
    # The connect routes' own: the room, how it was answered, TikTok's status and time.
    room_id: str | None = None
    strategy: str | None = None
    upstream_status: int | None = None
    upstream_ms: float | None = None
    cost: int = 1  # requests it counted as against its caller's limits and quota


def utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive value is taken as UTC already, as asyncpg stores it."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class PreparedRow:
    """A row ready to write: its COPY record and what it adds to the quota and the key."""

    record: tuple[Any, ...]  # in `USAGE_COLUMNS` order
    quota_day: tuple[uuid.UUID, date] | None  # (user, UTC day) it counts toward
    cost: int  # what it adds to that day
    key_use: tuple[uuid.UUID, datetime] | None  # (key, when) for `api_keys.last_used`


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str | None) -> str | None:
    """`text` as Postgres will take it: a NUL (which no text column holds) and lone
    surrogates (which UTF-8 cannot encode) become U+FFFD. Rows record what callers sent,
    so anything may arrive; refusing the row would leave the request without a trace."""
    if text is None or (text.isascii() and "\x00" not in text):
        return text  # nearly every value: no copy
    return _UNSTORABLE.sub("\ufffd", text)


def prepare_row(row: UsageRow, max_message_chars: int) -> PreparedRow:
    """The row as it will be written, every text column made `storable`. Raises on a row
    that is not a `UsageRow`'s shape (no time, an unhashable id): such a row must be
    dropped before it reaches a batch."""
    moment = utc(row.created_at)
    message = row.error_message
    if message is not None and len(message) > max_message_chars:
        message = message[:max_message_chars]
    record = (
        moment,
        storable(row.request_id),
        row.user_id,
        row.api_key_id,
        storable(row.key_prefix),
        row.client_ip,
        storable(row.route),
        storable(row.dialect),
        storable(row.target),
        row.success,
        row.status_code,
        storable(row.error_type),
        storable(message),
        row.response_time_ms,
        row.queue_wait_ms,
        storable(row.worker_id),
        storable(row.profile),
        storable(row.room_id),
        storable(row.strategy),
        row.upstream_status,
        row.upstream_ms,
        row.cost,
    )
    quota_day = None
    if row.user_id is not None and counts_toward_quota(row):
        quota_day = (row.user_id, moment.date())
    key_use = (row.api_key_id, moment) if row.api_key_id is not None else None
    # Hashed now, so that a strange id fails here, alone, rather than its whole batch.
    hash((quota_day, key_use))
    return PreparedRow(record, quota_day, row.cost, key_use)


def counts_toward_quota(row: UsageRow) -> bool:
    """Whether the row adds its cost (one request, or a connect's weight) to its user's
    daily quota (see the module docstring)."""
    if row.user_id is None:
        return False
    return row.status_code != RATE_LIMIT_STATUS and row.error_type != RATE_LIMIT_ERROR


@dataclass(frozen=True, slots=True)
class BatchTotals:
    """A batch's additions to `quota_usage` and `api_keys.last_used`, as parallel arrays
    sorted by key, so that concurrent writers lock the rows they share in the same order."""

    quota_users: list[uuid.UUID]
    quota_dates: list[date]
    quota_counts: list[int]
    key_ids: list[uuid.UUID]
    key_last_used: list[datetime]


def batch_totals(rows: Iterable[PreparedRow]) -> BatchTotals:
    """Requests per (user, UTC day) and the latest use of each key, over `rows`."""
    quota: dict[tuple[uuid.UUID, date], int] = {}
    last_used: dict[uuid.UUID, datetime] = {}
    for row in rows:
        if row.quota_day is not None:
            quota[row.quota_day] = quota.get(row.quota_day, 0) + row.cost
        if row.key_use is not None:
            key, moment = row.key_use
            seen = last_used.get(key)
            if seen is None or moment > seen:
                last_used[key] = moment
    # Any order shared by every writer will do; str() sorts even an id of the wrong type.
    days = sorted(quota, key=lambda day: (str(day[0]), day[1]))
    keys = sorted(last_used, key=str)
    return BatchTotals(
        quota_users=[user for user, _ in days],
        quota_dates=[day for _, day in days],
        quota_counts=[quota[day] for day in days],
        key_ids=keys,
        key_last_used=[last_used[key] for key in keys],
    )


# asyncpg's own inet encoder parses each address with the ipaddress module, which was
# two thirds of a COPY's client-side time. Client addresses repeat, so each is parsed once.
_INET_CACHE: dict[str, bytes] = {}
_INET_CACHE_SIZE = 65_536
_PGSQL_AF_INET = 2  # Postgres's own family numbers in the binary format, not the OS's
_PGSQL_AF_INET6 = 3


def encode_inet(value: str) -> bytes:
    """`value` in Postgres's binary inet format, as asyncpg would encode it; raises
    ValueError on anything that is not an address (with an optional prefix length)."""
    found = _INET_CACHE.get(value)
    if found is not None:
        return found
    try:
        address = ipaddress.ip_address(value)
        bits: int = address.max_prefixlen
        is_cidr, packed = 0, address.packed
    except ValueError:
        interface = ipaddress.ip_interface(value)
        bits, is_cidr, packed = interface.network.prefixlen, 1, interface.packed
    family = _PGSQL_AF_INET if len(packed) == 4 else _PGSQL_AF_INET6
    found = bytes((family, bits, is_cidr, len(packed))) + packed
    if len(_INET_CACHE) >= _INET_CACHE_SIZE:
        _INET_CACHE.clear()
    _INET_CACHE[value] = found
    return found


def decode_inet(
    data: bytes,
) -> (
    ipaddress.IPv4Address
    | ipaddress.IPv6Address
    | ipaddress.IPv4Interface
    | ipaddress.IPv6Interface
):
    """The address (or interface, with a prefix) of Postgres's binary inet format."""
    bits, size = data[1], data[3]
    packed = data[4 : 4 + size]
    address = ipaddress.ip_address(packed)
    if bits == address.max_prefixlen:
        return address
    return ipaddress.ip_interface((packed, bits))
