"""Settings of the rate limiter, read from `SIGNER_LIMIT_*`."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["RateLimitSettings"]


class RateLimitSettings(BaseSettings):
    """Budgets of the callers that have no limits of their own.

    A budget set to `none` (for example `SIGNER_LIMIT_ANONYMOUS_PER_DAY=none`) leaves that
    window unlimited. Keys of the `api_key` tier carry their own limits in the database.
    """

    model_config = SettingsConfigDict(
        env_prefix="SIGNER_LIMIT_", extra="ignore", env_parse_none_str="none"
    )

    enabled: bool = Field(True, description="Count and refuse requests; false lets every one in.")
    anonymous_per_minute: int | None = Field(
        30, ge=0, description="Requests per UTC minute for each client IP calling without a key."
    )
    anonymous_per_hour: int | None = Field(
        None, ge=0, description="Requests per UTC hour for each client IP calling without a key."
    )
    anonymous_per_day: int | None = Field(
        1000, ge=0, description="Requests per UTC day for each client IP calling without a key."
    )
    free_per_minute: int | None = Field(
        60, ge=0, description="Requests per UTC minute for a free account, all its keys together."
    )
    free_per_hour: int | None = Field(
        None, ge=0, description="Requests per UTC hour for a free account, all its keys together."
    )
    key_lookups_per_minute: int | None = Field(
        60,
        ge=1,
        description="Look-ups of keys not in an API process's cache, per client address and "
        "UTC minute: each asks Postgres, so made-up keys past this get 429 before it.",
    )
    free_per_day: int | None = Field(
        5000, ge=0, description="Requests per UTC day for a free account, all its keys together."
    )
