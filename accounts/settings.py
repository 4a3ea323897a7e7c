"""Settings of the accounts: API keys and the admin token (`SIGNER_*`), the rate limiter
(`SIGNER_LIMIT_*`) and the usage writer (`SIGNER_USAGE_*`).

The classes are defined here, next to what they configure, but built only in `service/`
(the one place that reads the environment) and passed down.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["MIN_ADMIN_TOKEN_LENGTH", "AccountSettings", "RateLimitSettings", "UsageSettings"]

# A short token can be guessed online; 16 characters of anything random is out of reach.
MIN_ADMIN_TOKEN_LENGTH = 16


class AccountSettings(BaseSettings):
    """How keys are hashed and cached, and the token that opens `/admin/...`."""

    model_config = SettingsConfigDict(env_prefix="SIGNER_", extra="ignore")

    key_secret: SecretStr = Field(
        SecretStr(""),
        description="Server secret for HMAC-SHA-256 of API keys; empty: plain SHA-256. The "
        "API and the `signer keys` commands must share it, and changing it invalidates every "
        "key already issued.",
    )
    key_cache_ttl: float = Field(
        30.0,
        ge=0,
        description="Seconds a valid key stays cached in each API process; a key revoked "
        "elsewhere keeps working for at most this long (0: ask Postgres every time).",
    )
    key_negative_ttl: float = Field(
        5.0,
        ge=0,
        description="Seconds an unknown, revoked or inactive key stays cached as refused, so "
        "a flood of bad keys does not reach Postgres.",
    )
    key_stale_ttl: float = Field(
        3600.0,
        ge=0,
        description="Seconds past its cache TTL a valid key's last answer is still served "
        "while Postgres cannot be asked (down or too slow), so an outage does not stop "
        "signing for known keys; a key revoked meanwhile keeps working that long (0: none).",
    )
    key_lookup_timeout: float = Field(
        2.0,
        gt=0,
        description="Seconds a key look-up may wait for Postgres before the request gets 503.",
    )
    admin_token: SecretStr = Field(
        SecretStr(""),
        description="Token of the `/admin/...` routes (`Authorization: Bearer` or "
        f"`X-Admin-Token`), at least {MIN_ADMIN_TOKEN_LENGTH} characters; empty: admin "
        "routes disabled.",
    )

    admin_auth_failures_per_minute: int = Field(
        10,
        ge=1,
        description="Wrong admin tokens per client address and UTC minute; past it the "
        "address gets 429 on every admin route, the right token included, until the "
        "minute ends.",
    )

    @field_validator("admin_token")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value()
        if token and len(token) < MIN_ADMIN_TOKEN_LENGTH:
            raise ValueError(
                f"SIGNER_ADMIN_TOKEN must be at least {MIN_ADMIN_TOKEN_LENGTH} characters"
            )
        return value


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
    connect_weight: int = Field(
        1,
        ge=1,
        le=1000,
        description="Requests one connect (`/webcast/fetch`, `/webcast/rooms/{id}/connect`) "
        "counts as against its caller's limits and daily quota; it costs a signature and a "
        "TikTok round trip.",
    )


class UsageSettings(BaseSettings):
    """How usage rows are batched, how many may wait, and how Postgres is retried."""

    model_config = SettingsConfigDict(env_prefix="SIGNER_USAGE_", extra="ignore")

    batch_size: int = Field(
        1000,
        ge=1,
        description="Rows written in one COPY; a full batch is written without waiting for "
        "the flush interval.",
    )
    flush_interval_seconds: float = Field(
        0.25,
        gt=0,
        description="Longest a row waits in the buffer before it is written while Postgres "
        "is up, when fewer than `batch_size` rows are waiting.",
    )
    max_buffered: int = Field(
        100_000,
        ge=1,
        description="Rows kept in memory while Postgres is down or slow; past this, the "
        "oldest rows are dropped and counted in signer_usage_rows_dropped_total.",
    )
    retry_initial_seconds: float = Field(
        0.5,
        gt=0,
        description="First wait before reconnecting or retrying after Postgres failed; "
        "doubled after each failure in a row.",
    )
    retry_max_seconds: float = Field(
        5.0, gt=0, description="Longest wait between two attempts while Postgres stays down."
    )
    connect_timeout_seconds: float = Field(
        5.0, gt=0, description="Time allowed to open a connection to Postgres."
    )
    write_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="Time allowed to each statement writing a batch; past it the connection "
        "is dropped and the batch retried on a new one.",
    )
    last_used_resolution_seconds: float = Field(
        60.0,
        ge=0,
        description="api_keys.last_used moves only when a use is this much later than the "
        "stored time, so it is right to within this. A busy key then costs one row update a "
        "minute instead of one per flush: each update leaves a dead row and new index entries "
        "in the table every key look-up reads. 0 keeps it exact.",
    )
    max_message_chars: int = Field(
        1000,
        ge=0,
        description="Error messages are cut to this many characters before they are stored.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.batch_size > self.max_buffered:
            raise ValueError("batch_size cannot exceed max_buffered")
        if self.retry_max_seconds < self.retry_initial_seconds:
            raise ValueError("retry_max_seconds cannot be below retry_initial_seconds")
        return self
