"""`UsageWriter`: every request, signed or refused, becomes one `usage_logs` row, written in
batches by one background task so that nothing on the request path waits for Postgres.

How a row travels: `add` appends it to an in-memory buffer (O(1), never blocks, never
raises). The task wakes when `batch_size` rows wait, or every `flush_interval_seconds`,
takes up to `batch_size` rows and writes them in one transaction: COPY into `usage_logs`,
then one statement adding the batch's requests to `quota_usage` (per user and UTC day,
counted as `accounts.usage_rows` explains) and moving `api_keys.last_used` forward (one UPDATE
for all the keys seen, never backwards, to within `last_used_resolution_seconds`). All of
a batch lands or none of it, so a retried batch is never counted twice nor half-written.
If the connection drops while COMMIT is on its way, the task asks Postgres on its next
connection whether that transaction committed (`pg_xact_status`) before writing the batch
again.

When Postgres is down (or the tables are not there yet, or anything else fails that is not
the rows' fault) the batch stays first in line, the task backs off (`retry_initial_seconds`
doubling up to `retry_max_seconds`, with jitter) and reconnects, and rows keep arriving.
At most `max_buffered` rows wait, the batch in flight included. Past that the OLDEST waiting
rows are dropped: the newest describe the present (today's quota, the keys in use now, what
is failing now), and an outage longer than the buffer would otherwise leave everything
after its first minutes blank. Dropped rows are counted in
`signer_usage_rows_dropped_total{reason="buffer_full"}` and logged twice per episode: when
dropping starts, and with the total once the buffer is back under half full.

Rows Postgres or asyncpg rejects for their content (a data or constraint error, a value that
cannot be encoded) must not block the queue: a batch failing that way is split in halves
and each half retried, down to single rows; a row that fails alone is dropped
(`reason="invalid"`) and logged, once per batch. One bad row in a batch of 1000 costs about
20 extra transactions, and every step makes progress, so it cannot spin.

`close` writes what is left within its timeout; rows it could not write are counted as
dropped (`reason="shutdown"`), as are rows added after it. A batch cut off by that timeout
in the middle of its COMMIT may in fact have landed, and is still counted as dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Literal, TypeAlias

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .settings import UsageSettings
from .usage_rows import (
    USAGE_COLUMNS,
    PreparedRow,
    UsageRow,
    batch_totals,
    decode_inet,
    encode_inet,
    prepare_row,
)

__all__ = ["DropReason", "UsageRow", "UsageSettings", "UsageWriter"]

log = logging.getLogger(__name__)

DropReason = Literal["buffer_full", "invalid", "shutdown"]
_DROP_REASONS: tuple[DropReason, ...] = ("buffer_full", "invalid", "shutdown")

FLUSH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

Connection: TypeAlias = "asyncpg.Connection[Any]"

# Errors that belong to the rows written, not to Postgres being unavailable: Postgres's
# data (22xxx) and constraint (23xxx) classes, and what asyncpg raises when it cannot
# encode a value (its own DataError is a ValueError; an int16 overflow is not).
_ROW_ERRORS = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    ValueError,
    TypeError,
    OverflowError,
)

# Errors by which Postgres says it cannot serve us now, rather than that a query is wrong.
_UNAVAILABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
)

# The quota of users deleted meanwhile is skipped (their usage rows are kept: usage_logs
# has no foreign keys). last_used only moves forward, and by more than the resolution ($6
# seconds): a backlog written after an outage must not put back an older time another
# replica has already moved past.
_ACCOUNT_SQL = """
WITH quota AS (
    INSERT INTO quota_usage AS q (user_id, date, request_count)
    SELECT t.user_id, t.date, t.n
    FROM unnest($1::uuid[], $2::date[], $3::bigint[]) AS t (user_id, date, n)
    WHERE EXISTS (SELECT 1 FROM users WHERE users.id = t.user_id)
    ON CONFLICT (user_id, date)
    DO UPDATE SET request_count = q.request_count + EXCLUDED.request_count
), keys AS (
    UPDATE api_keys SET last_used = t.used
    FROM unnest($4::uuid[], $5::timestamptz[]) AS t (id, used)
    WHERE api_keys.id = t.id
      AND (api_keys.last_used IS NULL
           OR api_keys.last_used < t.used - make_interval(secs => $6))
)
SELECT pg_current_xact_id()::text
"""

_Waiting: TypeAlias = tuple[int, UsageRow]  # (sequence number, row)
_Pending: TypeAlias = tuple[int, UsageRow, PreparedRow]


class _CommitUnknown(Exception):
    """COMMIT was sent and no answer came back: the first `count` pending rows may be in."""

    def __init__(self, xid: str, count: int) -> None:
        super().__init__(f"no answer to the COMMIT of transaction {xid}")
        self.xid = xid
        self.count = count


class _UsageMetrics:
    def __init__(self, registry: CollectorRegistry, buffered: Callable[[], int]) -> None:
        self.buffered = Gauge(
            "signer_usage_rows_buffered",
            "Usage rows waiting to be written to Postgres, the batch in flight included.",
            registry=registry,
        )
        # Read when scraped: add() stays free of metric locks.
        self.buffered.set_function(buffered)
        self.written = Counter(
            "signer_usage_rows_written",
            "Usage rows written to Postgres.",
            registry=registry,
        )
        self.dropped = Counter(
            "signer_usage_rows_dropped",
            "Usage rows never written: buffer_full (Postgres away too long), invalid "
            "(rejected by Postgres) or shutdown (left over when the writer closed).",
            ["reason"],
            registry=registry,
        )
        # Made now, so that every reason shows from the start (at 0).
        self.dropped_by = {reason: self.dropped.labels(reason) for reason in _DROP_REASONS}
        self.flush_seconds = Histogram(
            "signer_usage_flush_seconds",
            "Time to write one batch of usage rows (its whole transaction).",
            buckets=FLUSH_BUCKETS,
            registry=registry,
        )
        self.postgres_up = Gauge(
            "signer_usage_postgres_up",
            "1 when the usage writer's last contact with Postgres succeeded, else 0.",
            registry=registry,
        )


class UsageWriter:
    """Buffers usage rows and writes them to Postgres in batches from one background task.

    `add` is for the request path; `start`, `flush` and `close` for start-up, tests and
    shutdown. Use it from the thread of the event loop it was started on. `on_flush`, when
    given, is called with the size and duration in seconds of every batch written.
    """

    def __init__(
        self,
        database_url: str,
        settings: UsageSettings | None = None,
        registry: CollectorRegistry | None = None,
        *,
        on_flush: Callable[[int, float], None] | None = None,
    ) -> None:
        self.database_url = database_url
        self.settings = settings or UsageSettings.model_construct()
        self._on_flush = on_flush
        self._metrics = _UsageMetrics(registry or CollectorRegistry(), lambda: self.buffered)
        self._waiting: deque[_Waiting] = deque()
        # The batch being written. After a failure it goes back to the front of `_waiting`,
        # except a batch whose COMMIT went unanswered: that one stays here, out of reach of
        # the bound, until Postgres says whether it committed.
        self._pending: list[_Pending] = []
        self._uncertain: _CommitUnknown | None = None
        self._next_seq = 0  # the sequence number the next row added gets
        self._written = 0
        self._dropped = 0
        self._up: bool | None = None  # None until the first contact
        self._down_since = 0.0
        self._full_drops = 0  # dropped for the bound in the current episode
        self._flush_until = 0  # rows numbered below this are wanted written now
        self._flush_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._closed = False
        self._delay = self.settings.retry_initial_seconds
        self._conn: Connection | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def buffered(self) -> int:
        """Rows added and not yet written nor dropped."""
        return len(self._waiting) + len(self._pending)

    @property
    def written(self) -> int:
        """Rows written to Postgres since the writer was made."""
        return self._written

    @property
    def dropped(self) -> int:
        """Rows that will never be written, for any reason."""
        return self._dropped

    @property
    def postgres_up(self) -> bool:
        """Whether the last contact with Postgres (connecting or writing) succeeded."""
        return bool(self._up)

    async def start(self) -> None:
        """Start the background task. Returns at once: Postgres being down is its business."""
        if self._task is None and not self._closed:
            self._task = asyncio.create_task(self._run(), name="usage-writer")

    def add(self, row: UsageRow) -> None:
        """Queue one row for writing. O(1); never blocks, never raises."""
        if self._closed:
            self._drop(1, "shutdown")
            return
        if len(self._waiting) + len(self._pending) >= self.settings.max_buffered:
            self._drop_for_bound()
            if len(self._waiting) + len(self._pending) >= self.settings.max_buffered:
                return  # the whole bound is the batch in flight: the new row is the one to go
        self._waiting.append((self._next_seq, row))
        self._next_seq += 1
        if len(self._waiting) >= self.settings.batch_size and not self._wake.is_set():
            self._wake.set()

    async def flush(self) -> None:
        """Wait until every row added before this call is written (or dropped).

        While Postgres is down this waits for it to return; bound the wait with a timeout
        where that matters.
        """
        target = self._next_seq
        if self._oldest_unsettled() >= target:
            return
        if self._task is None or self._task.done():
            raise RuntimeError("the usage writer is not running: start() it first")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (target, waiter)
        self._flush_waiters.append(entry)
        self._flush_until = max(self._flush_until, target)
        self._wake.set()
        try:
            await waiter
        finally:
            if entry in self._flush_waiters:
                self._flush_waiters.remove(entry)

    async def close(self, timeout: float = 5.0) -> None:
        """Write what is buffered within `timeout` seconds, then stop; what is left then
        is counted as dropped. Rows added afterwards are dropped too."""
        if self._closed:
            return
        self._closed = True
        self._stopping = True
        self._wake.set()
        task = self._task
        if task is not None:
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if not done:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        left = self.buffered
        if left:
            self._waiting.clear()
            self._pending.clear()
            self._uncertain = None
            self._drop(left, "shutdown")
            log.warning(
                "usage writer closed with %d rows unwritten (Postgres %s)",
                left,
                "up but too slow" if self._up else "unavailable",
            )

    # --- dropping ------------------------------------------------------------------------

    def _drop(self, count: int, reason: DropReason) -> None:
        self._dropped += count
        self._metrics.dropped_by[reason].inc(count)
        self._notify_flush_waiters()

    def _drop_for_bound(self) -> None:
        if self._full_drops == 0:
            log.warning(
                "usage buffer full (%d rows): dropping the oldest rows until Postgres "
                "takes them again",
                self.settings.max_buffered,
            )
        if self._waiting:
            self._waiting.popleft()
        self._full_drops += 1
        self._drop(1, "buffer_full")

    def _end_drop_episode(self) -> None:
        # Half full as the end, so a writer hovering at the bound logs no pair per batch.
        if self._full_drops and self.buffered < self.settings.max_buffered // 2:
            log.warning(
                "usage buffer has room again: %d rows were dropped while it was full",
                self._full_drops,
            )
            self._full_drops = 0

    # --- flush bookkeeping ---------------------------------------------------------------

    def _oldest_unsettled(self) -> int:
        """The sequence number of the oldest row neither written nor dropped."""
        if self._pending:
            return self._pending[0][0]
        if self._waiting:
            return self._waiting[0][0]
        return self._next_seq

    def _notify_flush_waiters(self) -> None:
        if not self._flush_waiters:
            return
        oldest = self._oldest_unsettled()
        for target, waiter in self._flush_waiters:
            if target <= oldest and not waiter.done():
                waiter.set_result(None)

    def _due(self) -> bool:
        """Whether everything waiting is wanted now (a flush, or closing)."""
        return self._stopping or self._flush_until > self._oldest_unsettled()

    # --- the background task -------------------------------------------------------------

    async def _run(self) -> None:
        try:
            # Once now, so that the gauge and the log tell at start-up whether Postgres is
            # reachable; after this, only rows to write make the task connect.
            await self._open()
            while True:
                drain = await self._wait_for_work()
                if self._stopping and not self.buffered:
                    break
                try:
                    await self._write(drain)
                except Exception:  # a bug of ours: say so, and keep the rows for later
                    log.exception("usage writer failed; retrying")
                    self._disconnect()
                    await self._back_off()
        except BaseException:
            self._disconnect()
            raise
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=1)
            self._conn = None

    async def _wait_for_work(self) -> bool:
        """Wait for a full batch, a flush or the interval; True when all waiting rows
        should be written, not only full batches."""
        self._wake.clear()
        if self._pending or len(self._waiting) >= self.settings.batch_size or self._due():
            return self._due()
        try:
            async with asyncio.timeout(self.settings.flush_interval_seconds):
                await self._wake.wait()
        except TimeoutError:
            return True
        return self._due()

    async def _write(self, drain: bool) -> None:
        """Write batches while any is due; back off after each failure."""
        batch_size = self.settings.batch_size
        while (
            self._pending
            or len(self._waiting) >= batch_size
            or (self._waiting and (drain or self._due()))
        ):
            conn = await self._connection()
            if not self._pending:
                self._take_batch()
            if self._pending and not await self._write_pending(conn):
                drain = True  # what was due still is, after the back-off
                await self._back_off()

    def _take_batch(self) -> None:
        invalid = 0
        example = ""
        for _ in range(min(self.settings.batch_size, len(self._waiting))):
            seq, row = self._waiting.popleft()
            try:
                self._pending.append((seq, row, prepare_row(row, self.settings.max_message_chars)))
            except Exception as error:
                invalid += 1
                example = example or f"{row!r:.300}: {error!r}"
        if invalid:
            self._drop(invalid, "invalid")
            log.warning("dropped %d malformed usage rows, e.g. %s", invalid, example)

    async def _write_pending(self, conn: Connection) -> bool:
        """Write the pending batch, splitting it around rows Postgres rejects. Returns False
        when Postgres failed; what is not written yet then goes back to the buffer's front."""
        sizes = [len(self._pending)]  # runs still to write, the next one last
        invalid = 0
        example = ""
        try:
            while sizes:
                size = sizes.pop()
                chunk = self._pending[:size]
                try:
                    seconds = await self._write_chunk(conn, chunk)
                except _CommitUnknown as unknown:
                    self._uncertain = unknown
                    self._requeue(after=size)
                    self._lost(conn, unknown.__cause__ or unknown)
                    return False
                except asyncpg.ForeignKeyViolationError as error:
                    # A user deleted while the batch was written, not a bad row: the
                    # retry's EXISTS skips their quota and keeps their usage rows.
                    self._requeue(after=0)
                    self._lost(conn, error)
                    return False
                except _ROW_ERRORS as error:
                    if size > 1:
                        sizes += [size - size // 2, size // 2]
                        continue
                    del self._pending[:1]
                    invalid += 1
                    example = example or f"request {chunk[0][1].request_id!r:.100}: {error!r:.300}"
                    self._drop(1, "invalid")
                    continue
                except Exception as error:
                    self._requeue(after=0)
                    self._lost(conn, error)
                    return False
                del self._pending[:size]
                self._settle_written(size, seconds)
            return True
        finally:
            if invalid:
                log.warning("dropped %d usage rows Postgres rejected, e.g. %s", invalid, example)

    def _requeue(self, after: int) -> None:
        """Put the pending rows from index `after` on back at the front of the buffer."""
        back = self._pending[after:]
        del self._pending[after:]
        self._waiting.extendleft((seq, row) for seq, row, _ in reversed(back))

    async def _write_chunk(self, conn: Connection, chunk: list[_Pending]) -> float:
        """Write `chunk` and its totals in one transaction; returns the seconds it took."""
        timeout = self.settings.write_timeout_seconds
        records = [prepared.record for _, _, prepared in chunk]
        totals = batch_totals(prepared for _, _, prepared in chunk)
        started = time.perf_counter()
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.copy_records_to_table(
                "usage_logs", records=records, columns=USAGE_COLUMNS, timeout=timeout
            )
            xid: str = await conn.fetchval(
                _ACCOUNT_SQL,
                totals.quota_users,
                totals.quota_dates,
                totals.quota_counts,
                totals.key_ids,
                totals.key_last_used,
                self.settings.last_used_resolution_seconds,
                timeout=timeout,
            )
        except Exception:
            # Best effort: on a broken connection there is nothing left to roll back.
            with contextlib.suppress(Exception):
                await transaction.rollback()
            raise
        try:
            await transaction.commit()
        except Exception as error:
            raise _CommitUnknown(xid, len(chunk)) from error
        return time.perf_counter() - started

    def _settle_written(self, count: int, seconds: float | None) -> None:
        self._written += count
        self._metrics.written.inc(count)
        if seconds is not None:
            self._metrics.flush_seconds.observe(seconds)
            if self._on_flush is not None:
                self._on_flush(count, seconds)
        self._set_up()
        self._delay = self.settings.retry_initial_seconds
        self._end_drop_episode()
        self._notify_flush_waiters()

    # --- the connection ------------------------------------------------------------------

    async def _connection(self) -> Connection:
        """The open connection, or a new one, once Postgres answers (backing off till then)."""
        while self._conn is None or self._conn.is_closed():
            if not await self._open():
                await self._back_off()
        return self._conn

    async def _open(self) -> bool:
        """One attempt at a connection (settling an unanswered COMMIT first)."""
        try:
            conn = await asyncpg.connect(
                self.database_url,
                timeout=self.settings.connect_timeout_seconds,
                command_timeout=self.settings.write_timeout_seconds,
            )
        except Exception as error:  # refused, timed out, starting up, no such database
            self._set_down(error)
            return False
        try:
            await conn.set_type_codec(
                "inet",
                schema="pg_catalog",
                encoder=encode_inet,
                decoder=decode_inet,
                format="binary",
            )
            if self._uncertain is not None:
                await self._resolve_uncertain(conn)
        except Exception as error:
            conn.terminate()
            self._set_down(error)
            return False
        except BaseException:  # cancelled by close(): leave no connection behind
            conn.terminate()
            raise
        self._conn = conn
        self._set_up()
        return True

    async def _resolve_uncertain(self, conn: Connection) -> None:
        """Settle the batch whose COMMIT went unanswered, by asking whether it committed."""
        assert self._uncertain is not None
        unknown = self._uncertain
        try:
            status = await conn.fetchval("SELECT pg_xact_status($1::text::xid8)", unknown.xid)
        except _UNAVAILABLE:
            raise
        except asyncpg.PostgresError as error:
            # Postgres answers but cannot tell (too old a transaction, before version 13):
            # writing the batch again risks a duplicate, which beats losing it.
            log.warning("cannot tell whether a usage batch committed (%r); writing it again", error)
            status = None
        if status == "in progress":  # its session has not noticed it lost us yet
            raise RuntimeError(f"transaction {unknown.xid} of a usage batch is still running")
        self._uncertain = None
        if status == "committed":
            del self._pending[: unknown.count]
            self._settle_written(unknown.count, None)
            log.info("a usage batch of %d rows had committed; not writing it again", unknown.count)

    def _lost(self, conn: Connection, error: BaseException) -> None:
        """Give up `conn` after an error that is not the rows' fault."""
        conn.terminate()
        self._conn = None
        self._set_down(error)

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None

    async def _back_off(self) -> None:
        # Jitter, so that replicas that lost Postgres together do not return in step.
        delay = self._delay * random.uniform(0.8, 1.0)
        self._delay = min(self._delay * 2, self.settings.retry_max_seconds)
        await asyncio.sleep(delay)

    def _set_up(self) -> None:
        if self._up is False:
            log.warning(
                "usage rows are written to Postgres again after %.1f s; %d rows waiting",
                time.monotonic() - self._down_since,
                self.buffered,
            )
        self._up = True
        self._metrics.postgres_up.set(1)

    def _set_down(self, error: BaseException) -> None:
        if self._up is not False:
            log.warning(
                "usage rows cannot be written to Postgres (%r); keeping up to %d rows and retrying",
                error,
                self.settings.max_buffered,
            )
            self._down_since = time.monotonic()
        else:
            log.debug("usage writer: Postgres still unavailable: %r", error)
        self._up = False
        self._metrics.postgres_up.set(0)
