"""Starting and stopping what the API needs to know its callers: Postgres (migrated at
start-up), the key cache, the rate limiter and the usage writer.

Postgres being down never stops the API: anonymous callers and cached keys are still
served, usage rows wait in the writer's buffer, and the migrations are retried in the
background until they succeed. Daily partitions are kept ahead from here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from migrations.runner import migrate
from migrations.settings import DatabaseSettings
from workers.partitions import upkeep_partitions

from .access import Accounting
from .account_settings import AccountSettings
from .keystore import KeyStore
from .ratelimit import RateLimiter
from .ratelimit_settings import RateLimitSettings
from .usage import UsageSettings, UsageWriter

__all__ = ["AccountingRuntime"]

log = logging.getLogger(__name__)

MIGRATION_RETRY_SECONDS = 5.0
PARTITION_UPKEEP_SECONDS = 3600.0


class AccountingRuntime:
    """Owns the Postgres pool, the usage writer and the background upkeep of one API."""

    def __init__(
        self,
        database: DatabaseSettings | None = None,
        *,
        trust_forwarded_for: bool = False,
    ) -> None:
        self.database = database or DatabaseSettings()
        self.trust_forwarded_for = trust_forwarded_for
        self.pool: asyncpg.Pool | None = None
        self.usage: UsageWriter | None = None
        self.migrated = asyncio.Event()
        self._upkeep: asyncio.Task[None] | None = None

    async def start(self, redis: Redis, prefix: str, registry: CollectorRegistry) -> Accounting:
        """Connect what can be connected now and return the API's `Accounting`."""
        # min_size=0: creating the pool does not need Postgres up; connections come later.
        self.pool = await asyncpg.create_pool(
            self.database.database_url, min_size=0, max_size=4, command_timeout=5
        )
        self.usage = UsageWriter(self.database.database_url, UsageSettings(), registry=registry)
        await self.usage.start()
        self._upkeep = asyncio.create_task(self._keep_schema(), name="accounting-upkeep")
        accounts = AccountSettings()
        return Accounting(
            keystore=KeyStore(self.pool, accounts),
            limiter=RateLimiter(redis, prefix=prefix),
            usage=self.usage,
            limits=RateLimitSettings(),
            accounts=accounts,
            trust_forwarded_for=self.trust_forwarded_for,
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
            assert self.pool is not None
            try:
                changes = await upkeep_partitions(
                    self.pool,
                    ahead_days=self.database.partition_ahead_days,
                    retention_days=self.database.usage_retention_days,
                )
                for line in changes.describe():
                    log.info("database: %s", line)
            except Exception as error:
                log.warning("partition upkeep failed (%s); next try in an hour", error)

    async def close(self) -> None:
        """Write what the usage writer holds (within its timeout), then disconnect."""
        if self._upkeep is not None:
            self._upkeep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._upkeep
        if self.usage is not None:
            await self.usage.close()
        if self.pool is not None:
            await self.pool.close()
