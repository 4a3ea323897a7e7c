"""Settings of the queue, shared by API processes and workers, and of a worker process's
metrics endpoint. Built in `service/` and passed down."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["HEARTBEAT_SECONDS", "QueueSettings", "WorkerSettings"]

HEARTBEAT_SECONDS = 3.0  # a worker silent for three beats is counted as gone


class QueueSettings(BaseSettings):
    """Read from the environment: `REDIS_URL` and `SIGNER_QUEUE_*`."""

    model_config = SettingsConfigDict(env_prefix="SIGNER_QUEUE_", extra="ignore")

    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        validation_alias="REDIS_URL",
        description="Redis holding the queue, results and wake-ups.",
    )
    prefix: str = Field("signer", description="Prefix of every Redis key (one per deployment).")
    redis_timeout: float = Field(
        2.0,
        gt=0,
        le=30,
        description="Seconds an API process waits for Redis to connect or answer before the "
        "request gets 503 (within the request's own deadline).",
    )
    max_depth: int = Field(
        1000, ge=1, description="Jobs waiting beyond which new requests get 503 at once."
    )
    default_deadline: float = Field(5.0, gt=0, le=30, description="Seconds a request may take.")
    max_deadline: float = Field(30.0, gt=0, le=30, description="Longest deadline accepted.")
    safety_poll: float = Field(
        1.0,
        gt=0,
        description="Seconds an idle worker waits for a wake-up before looking at the queue "
        "anyway (a lost wake-up costs at most this).",
    )
    lease: float = Field(
        2.0,
        gt=0,
        le=30,
        description="Seconds a worker holds a job without renewing it; a worker that dies "
        "holding jobs has them signed by another after at most this (renewed every "
        "quarter of it while in hand).",
    )
    max_jobs: int = Field(32, ge=1, description="Jobs one worker process signs at once.")
    max_batch: int = Field(128, ge=1, description="Most requests one job carries.")
    max_inflight: int = Field(
        4,
        ge=1,
        description="Jobs one API process keeps in flight; more requests wait for a slot "
        "and then travel together as one job.",
    )


class WorkerSettings(BaseSettings):
    """`SIGNER_WORKER_*`: where each worker process serves its Prometheus metrics."""

    model_config = SettingsConfigDict(env_prefix="SIGNER_WORKER_", extra="ignore")

    metrics_port: int = Field(
        9100,
        ge=0,
        le=65535,
        description="Port of the first worker process's /metrics; process n of "
        "`signer worker --processes N` serves on this plus n. 0: no metrics endpoint.",
    )
    metrics_host: str = Field(
        "127.0.0.1", description="Address the metrics endpoints listen on (0.0.0.0 in containers)."
    )

    def metrics_port_of(self, index: int) -> int:
        """The metrics port of worker process `index` (0: none)."""
        return self.metrics_port + index if self.metrics_port else 0
