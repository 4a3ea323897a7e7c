"""Starting and stopping what the API needs to know its callers: Postgres (migrated at
start-up), the key cache, the rate limiter and the usage writer.

Postgres being down never stops the API: anonymous callers and known keys are still
served (a valid key's last answer, for up to `SIGNER_KEY_STALE_TTL`), usage rows wait in
the writer's buffer, and the migrations are retried in the background until they
succeed. Daily partitions are kept ahead from here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from prometheus_client import CollectorRegistry, Gauge
from redis.asyncio import Redis

from migrations.runner import migrate
from migrations.settings import DatabaseSettings

from .admission import Accounting
from .keystore import KeyStore
from .ratelimit import RateLimiter
from .settings import AccountSettings, RateLimitSettings, UsageSettings
from .tiers import TIERS
from .usage import UsageWriter

__all__ = ["QUOTA_TODAY_SQL", "AccountingRuntime", "quota_use_by_tier"]

log = logging.getLogger(__name__)

MIGRATION_RETRY_SECONDS = 5.0
PARTITION_UPKEEP_SECONDS = 3600.0
QUOTA_REFRESH_SECONDS = 30.0

# Today's requests of each active user, with the daily budget of their keys that have one.
QUOTA_TODAY_SQL = """
SELECT u.tier, q.request_count,
       (SELECT sum(k.per_day) FROM api_keys k
         WHERE k.user_id = u.id AND k.is_active AND k.per_day IS NOT NULL) AS keys_per_day
  FROM quota_usage q JOIN users u ON u.id = q.user_id
 WHERE q.date = (now() AT TIME ZONE 'utc')::date AND u.is_active
"""


def quota_use_by_tier(rows: list[asyncpg.Record], free_per_day: int | None) -> dict[str, float]:
    """The highest share of its daily budget any user of each tier has used today.

    A `free` user's budget is the tier's daily limit; an `api_key` user's is the sum of
    their keys' own daily limits (users with none are unlimited and left out).
    """
    use: dict[str, float] = {tier: 0.0 for tier in TIERS}
    for row in rows:
        budget = free_per_day if row["tier"] == "free" else row["keys_per_day"]
        if budget:
            use[row["tier"]] = max(use[row["tier"]], row["request_count"] / budget)
    return use


class AccountingRuntime:
    """Owns the Postgres pool, the usage writer and the background upkeep of one API."""

    def __init__(
        self,
        database: DatabaseSettings,
        accounts: AccountSettings,
        limits: RateLimitSettings,
        usage: UsageSettings,
    ) -> None:
        self.database = database
        self.accounts = accounts
        self.limits = limits
        self.usage_settings = usage
        self.pool: asyncpg.Pool | None = None
        self.usage: UsageWriter | None = None
        self.migrated = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._quota_use: Gauge | None = None

    async def start(self, redis: Redis, prefix: str, registry: CollectorRegistry) -> Accounting:
        """Connect what can be connected now and return the API's `Accounting`."""
        # min_size=0: creating the pool does not need Postgres up; connections come later.
        self.pool = await asyncpg.create_pool(
            self.database.database_url, min_size=0, max_size=4, command_timeout=5
        )
        self.usage = UsageWriter(self.database.database_url, self.usage_settings, registry=registry)
        await self.usage.start()
        self._quota_use = Gauge(
            "signer_quota_use_ratio",
            "Highest share of its daily budget any user of the tier has used today (0..1+).",
            ["tier"],
            registry=registry,
        )
        limits = self.limits
        self._tasks = [
            asyncio.create_task(self._keep_schema(), name="accounting-schema"),
            asyncio.create_task(self._watch_quota(limits), name="accounting-quota"),
        ]
        return Accounting(
            keystore=KeyStore(self.pool, self.accounts, registry=registry),
            limiter=RateLimiter(redis, prefix=prefix),
            usage=self.usage,
            limits=limits,
            database=self.pool,
        )

    async def _keep_schema(self) -> None:
        """Migrate (retrying while Postgres is away), then keep partitions ahead hourly."""
        while True:
            try:
                for line in await migrate(self.database):
                    log.info("database: %s", line)
                break
            except Exception as error:
                log.warning(
                    "database not ready (%s); retrying in %.0f s", error, MIGRATION_RETRY_SECONDS
                )
                await asyncio.sleep(MIGRATION_RETRY_SECONDS)
        self.migrated.set()
        while True:
            await asyncio.sleep(PARTITION_UPKEEP_SECONDS)
            # Through `migrate` (its own connection, no statement timeout): moving a day of
            # stray rows out of the default partition may take longer than the pool's 5 s.
            try:
                for line in await migrate(self.database):
                    log.info("database: %s", line)
            except Exception as error:
                log.warning("partition upkeep failed (%s); next try in an hour", error)

    async def _watch_quota(self, limits: RateLimitSettings) -> None:
        """Keep `signer_quota_use_ratio` current for the quota alert (every 30 s)."""
        await self.migrated.wait()
        assert self.pool is not None
        assert self._quota_use is not None
        while True:
            try:
                rows = await self.pool.fetch(QUOTA_TODAY_SQL)
                for tier, ratio in quota_use_by_tier(rows, limits.free_per_day).items():
                    self._quota_use.labels(tier).set(ratio)
            except Exception as error:  # Postgres away: the gauge keeps its last value
                log.debug("quota refresh failed: %s", error)
            await asyncio.sleep(QUOTA_REFRESH_SECONDS)

    async def close(self) -> None:
        """Write what the usage writer holds (within its timeout), then disconnect."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.usage is not None:
            await self.usage.close()
        if self.pool is not None:
            await self.pool.close()
