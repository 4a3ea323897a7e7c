"""The API process's Prometheus metrics: requests, and the queue as this process sees it.

The queue's depth and the workers alive are gauges read from Redis by `refresh_queue`,
on a timer (see `service.api_process`) and on `/health`, never per request: a scrape cannot wait
on Redis (collectors are synchronous) and the hot path must not pay for it. Waits,
expiries and refusals are counted from each request's `SignOutcome` as it is answered.
"""

from __future__ import annotations

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)

from signer import DeadlineExceeded
from workers import QueueFull, SignOutcome, SignQueue
from workers.client import QueueState
from workers.metrics import LATENCY_BUCKETS

from .connect_metrics import ConnectMetrics

__all__ = ["LATENCY_BUCKETS", "ApiMetrics"]


class ApiMetrics:
    """One registry per application, so several apps in one process do not collide."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        # The default process_* and python_* metrics, which the global registry has.
        for default in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(default)
        self.requests = Counter(
            "signer_api_requests",
            "HTTP requests answered, by route, dialect, status and error type.",
            ["route", "dialect", "status", "error_type"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "signer_api_request_duration_seconds",
            "Time to answer a request.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "signer_api_rate_limited",
            "Requests refused by a rate limit, by limit label.",
            ["label"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "signer_api_requests_in_flight", "Requests being answered.", registry=self.registry
        )
        self.workers = Gauge(
            "signer_workers_alive", "Workers seen alive recently.", registry=self.registry
        )
        self.workers_expected = Gauge(
            "signer_workers_expected",
            "Workers their supervisors (`signer worker`) mean to run; above "
            "signer_workers_alive while one is dead or restarting.",
            registry=self.registry,
        )
        self.queue_ready = Gauge(
            "signer_queue_ready_jobs",
            "Jobs waiting for a worker (the queue's sorted set).",
            registry=self.registry,
        )
        self.queue_jobs = Gauge(
            "signer_queue_jobs",
            "Jobs not yet answered: waiting plus held by workers.",
            registry=self.registry,
        )
        self.queue_wait = Histogram(
            "signer_queue_wait_seconds",
            "Time from a request's job entering the queue to a worker taking it.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_expired = Counter(
            "signer_queue_expired",
            "Requests whose deadline passed before they were signed (503).",
            registry=self.registry,
        )
        self.queue_rejected = Counter(
            "signer_queue_rejected",
            "Requests refused at once because the queue was full (503).",
            registry=self.registry,
        )
        self.connect = ConnectMetrics(self.registry)

    def observe_outcome(self, outcome: SignOutcome) -> None:
        """Count one request's trip through the queue."""
        if outcome.queue_wait_ms is not None:
            self.queue_wait.observe(outcome.queue_wait_ms / 1000)
        if isinstance(outcome.result, DeadlineExceeded):
            self.queue_expired.inc()
        elif isinstance(outcome.result, QueueFull):
            self.queue_rejected.inc()

    async def refresh_queue(self, queue: SignQueue) -> QueueState | None:
        """Read the queue's depth and workers into the gauges; None when Redis does not
        answer (no worker is then counted alive, and the depths keep their last value)."""
        try:
            state = await queue.state()
        except Exception:
            self.workers.set(0)
            return None
        self.workers.set(state.workers)
        self.workers_expected.set(state.expected)
        self.queue_ready.set(state.ready)
        self.queue_jobs.set(state.jobs)
        return state
