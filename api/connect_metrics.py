"""The connect routes' metrics: connects by strategy and outcome, and TikTok as we see it.

Connects are counted per request as they are answered. The TikTok client's own counters
(requests by endpoint and status, latency, retries, the breaker, the room-look-up caches,
ttwid visits) are plain values in `tiktok.TikTokStats`, read by a collector at scrape time:
the client imports no metrics library, and a scrape costs one snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from tiktok import TikTokStats
from workers.metrics import LATENCY_BUCKETS

__all__ = ["BREAKER_STATES", "ConnectMetrics", "TikTokCollector"]

# The breaker's state as a number, so a dashboard can draw it and an alert compare it.
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}


class TikTokCollector(Collector):
    """`signer_tiktok_*`, from a `TikTokStats` snapshot taken at each scrape."""

    def __init__(self, stats: Callable[[], TikTokStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        requests = CounterMetricFamily(
            "signer_tiktok_requests",
            "Requests to TikTok, by endpoint and status (HTTP code, `error` or `timeout`); "
            "each retry counts.",
            labels=["endpoint", "status"],
        )
        for (endpoint, status), count in sorted(stats.requests.items()):
            requests.add_metric([endpoint, status], count)
        yield requests
        # A summary without quantiles: exactly `_sum` and `_count` (a counter family
        # named `..._sum` would be exported as `..._sum_total`).
        duration = SummaryMetricFamily(
            "signer_tiktok_request_duration_seconds",
            "Seconds spent waiting for TikTok, by endpoint (_sum / _count: the mean).",
            labels=["endpoint"],
        )
        for endpoint in sorted(stats.latency_count):
            duration.add_metric(
                [endpoint], stats.latency_count[endpoint], stats.latency_sum.get(endpoint, 0.0)
            )
        yield duration
        retries = CounterMetricFamily(
            "signer_tiktok_retries",
            "TikTok requests retried after a connection error or a 5xx, by endpoint.",
            labels=["endpoint"],
        )
        for endpoint, count in sorted(stats.retries.items()):
            retries.add_metric([endpoint], count)
        yield retries
        yield GaugeMetricFamily(
            "signer_tiktok_breaker_state",
            "The TikTok circuit breaker: 0 closed, 1 half-open (one probe), 2 open.",
            value=BREAKER_STATES.get(stats.breaker_state, 2),
        )
        yield CounterMetricFamily(
            "signer_tiktok_breaker_opened",
            "Times the TikTok circuit breaker opened.",
            value=stats.breaker_opened_total,
        )
        yield CounterMetricFamily(
            "signer_tiktok_breaker_rejections",
            "TikTok requests refused at once by the open breaker.",
            value=stats.breaker_rejections,
        )
        hits = CounterMetricFamily(
            "signer_tiktok_room_cache_hits",
            "Room look-ups answered from a cache, by layer (process, redis).",
            labels=["layer"],
        )
        for layer in ("process", "redis"):
            hits.add_metric([layer], stats.room_cache_hits.get(layer, 0))
        yield hits
        yield CounterMetricFamily(
            "signer_tiktok_room_cache_misses",
            "Room look-ups that asked TikTok (concurrent misses for one handle count once).",
            value=stats.room_cache_misses,
        )
        yield CounterMetricFamily(
            "signer_tiktok_ttwid_fetches",
            "Visits to TikTok for a ttwid cookie.",
            value=stats.ttwid_fetches,
        )
        yield CounterMetricFamily(
            "signer_tiktok_ttwid_refreshes",
            "ttwid cookies replaced after TikTok refused them.",
            value=stats.ttwid_refreshes,
        )


class ConnectMetrics:
    """The per-request connect metrics, on the API's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.connects = Counter(
            "signer_connects",
            "Connects answered, by route, strategy (fetch, socket; none when none "
            "answered) and outcome (ok, tiktok_error, client_error, refused, signer_error).",
            ["route", "strategy", "outcome"],
            registry=registry,
        )
        self.upstream = Histogram(
            "signer_connect_upstream_duration_seconds",
            "TikTok's part of a connect's answer time, by strategy.",
            ["strategy"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._watched = False

    def watch(self, stats: Callable[[], TikTokStats]) -> None:
        """Export the TikTok client's counters (once per registry)."""
        if not self._watched:
            self.registry.register(TikTokCollector(stats))
            self._watched = True
