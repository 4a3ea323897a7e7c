"""Settings of the database, shared by `signer migrate`, the API and the workers."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DatabaseSettings"]


class DatabaseSettings(BaseSettings):
    """Read from the environment: `DATABASE_URL` and `SIGNER_*`."""

    model_config = SettingsConfigDict(env_prefix="SIGNER_", extra="ignore")

    database_url: str = Field(
        "postgresql://postgres@127.0.0.1:5432/signer",
        validation_alias="DATABASE_URL",
        description="Postgres holding users, API keys, quotas and usage rows.",
    )
    usage_retention_days: int = Field(
        30,
        ge=1,
        description="Days of usage kept before today: older daily partitions of usage_logs "
        "and older quota_usage rows are dropped by the partition upkeep.",
    )
    partition_ahead_days: int = Field(
        3,
        ge=1,
        description="Daily partitions of usage_logs created ahead of today, so midnight "
        "never finds its partition missing even if one upkeep run is skipped.",
    )
