"""What the TikTok client counts, as plain values the API turns into metrics and /health.

The client only counts; it imports no metrics library, so `api/` can export these with
prometheus-client (collector callbacks read `TikTokClient.stats()`) and `/health` can show
the breaker's state without knowing how the client works.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

__all__ = ["TikTokStats", "UpstreamCounters"]

RECENT_LATENCIES = 256


@dataclass(frozen=True, slots=True)
class TikTokStats:
    """A snapshot. `requests` is keyed by (endpoint, status), status being the HTTP code
    as text or `error` / `timeout`; latencies are seconds per upstream attempt."""

    requests: dict[tuple[str, str], int]
    latency_sum: dict[str, float]
    latency_count: dict[str, int]
    recent_latencies: dict[str, tuple[float, ...]]
    retries: dict[str, int]
    breaker_state: str
    breaker_consecutive_failures: int
    breaker_opened_total: int
    breaker_rejections: int
    room_cache_hits: dict[str, int]  # by layer: `process`, `redis`
    room_cache_misses: int
    ttwid_fetches: int
    ttwid_refreshes: int


@dataclass(slots=True)
class UpstreamCounters:
    """The live counters behind `TikTokStats`; only grows."""

    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    latency_sum: dict[str, float] = field(default_factory=dict)
    latency_count: Counter[str] = field(default_factory=Counter)
    recent: dict[str, deque[float]] = field(default_factory=dict)
    retries: Counter[str] = field(default_factory=Counter)
    breaker_rejections: int = 0
    room_cache_hits: Counter[str] = field(default_factory=Counter)
    room_cache_misses: int = 0
    ttwid_fetches: int = 0
    ttwid_refreshes: int = 0

    def observe(self, endpoint: str, status: str, latency: float) -> None:
        self.requests[endpoint, status] += 1
        self.latency_sum[endpoint] = self.latency_sum.get(endpoint, 0.0) + latency
        self.latency_count[endpoint] += 1
        recent = self.recent.get(endpoint)
        if recent is None:
            recent = self.recent[endpoint] = deque(maxlen=RECENT_LATENCIES)
        recent.append(latency)

    def snapshot(
        self, *, breaker_state: str, consecutive_failures: int, opened_total: int
    ) -> TikTokStats:
        return TikTokStats(
            requests=dict(self.requests),
            latency_sum=dict(self.latency_sum),
            latency_count=dict(self.latency_count),
            recent_latencies={key: tuple(values) for key, values in self.recent.items()},
            retries=dict(self.retries),
            breaker_state=breaker_state,
            breaker_consecutive_failures=consecutive_failures,
            breaker_opened_total=opened_total,
            breaker_rejections=self.breaker_rejections,
            room_cache_hits=dict(self.room_cache_hits),
            room_cache_misses=self.room_cache_misses,
            ttwid_fetches=self.ttwid_fetches,
            ttwid_refreshes=self.ttwid_refreshes,
        )
