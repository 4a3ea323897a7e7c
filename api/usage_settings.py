"""Settings of the usage writer, read from `SIGNER_USAGE_*`."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["UsageSettings"]


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
