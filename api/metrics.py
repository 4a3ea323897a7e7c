"""The API's first Prometheus metrics (a later issue adds the rest)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ApiMetrics"]

# Bucket edges at the latency objectives, in seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class ApiMetrics:
    """One registry per application, so several apps in one process do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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
        self.queue_depth = Gauge(
            "signer_queue_depth", "Jobs waiting in the queue.", registry=self.registry
        )
        self.workers = Gauge(
            "signer_workers_alive", "Workers seen alive recently.", registry=self.registry
        )
