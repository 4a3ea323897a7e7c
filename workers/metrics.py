"""Prometheus metrics of one worker process, served on its own port.

Each process of `signer worker --processes N` serves `/metrics` on
`SIGNER_WORKER_METRICS_PORT` plus its index, from a registry of its own; Prometheus
scrapes every process as a target of its own, told apart by the `instance` label. Not
prometheus-client's multiprocess mode: that mode needs a shared directory of mmap files
(cleaned between runs), and its gauges need a rule for combining processes (live sum,
max...) chosen per metric. Most of what a worker reports is its own state (contexts
free, memory, jobs in hand), which is only meaningful per process, and a process that
dies takes its series with it instead of leaving them in the directory.

The signing core knows nothing of Prometheus: `Signer.counters()` hands plain numbers
over, and a collector reads them (and the process's memory) at scrape time, so nothing
is added to the signing path. What happens per job (signatures by outcome, time
signing, batch size) is counted by the worker as it answers each job.
"""

from __future__ import annotations

import logging
import resource
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from threading import Thread
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from signer.profiles import PROFILES
from signer.signer import Signer

__all__ = [
    "BATCH_BUCKETS",
    "LATENCY_BUCKETS",
    "MetricsServer",
    "WorkerMetrics",
    "outcome_of",
    "serve_metrics",
]

log = logging.getLogger(__name__)

# Bucket edges at the latency objectives, in seconds (the API's too).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)

# An answer's error kind (see `workers.payloads`) to its outcome label; others are `error`.
_ERROR_OUTCOMES = {
    "InvalidSignRequest": "invalid",
    "DeadlineExceeded": "expired",
    "SelfCheckFailed": "selfcheck_failed",
}
_PAGE_SIZE = resource.getpagesize()


def outcome_of(answer: Mapping[str, Any], engine: str) -> tuple[str, str, str]:
    """An answer's (engine, profile, outcome) labels; an error names no profile."""
    result = answer.get("result")
    if result is not None:
        return str(result.get("engine", engine)), str(result.get("profile", "")), "signed"
    kind = answer.get("error", {}).get("kind", "")
    return engine, "", _ERROR_OUTCOMES.get(kind, "error")


class WorkerMetrics:
    """Every `signer_worker_*` metric of one worker process, in a registry of its own."""

    def __init__(
        self,
        signer: Signer,
        *,
        worker_id: str,
        max_jobs: int,
        jobs_in_hand: Callable[[], int],
        restarts: int = 0,
    ) -> None:
        """`restarts`: how many times the supervisor started this worker's slot again."""
        self.registry = CollectorRegistry()
        # The default process_* and python_* metrics, which the global registry has.
        for default in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(default)
        self.engine = signer.engine.name
        self.signatures = Counter(
            "signer_worker_signatures",
            "Requests answered, by engine, profile and outcome (signed, invalid, expired, "
            "selfcheck_failed, error).",
            ["engine", "profile", "outcome"],
            registry=self.registry,
        )
        # Every series at 0 from the start: rate() and increase() miss a counter's first
        # increment when the series is born with it, and the failure alert needs the first.
        for outcome in (*_ERROR_OUTCOMES.values(), "error"):
            self.signatures.labels(self.engine, "", outcome)
        for profile in PROFILES:
            self.signatures.labels(self.engine, profile.id, "signed")
        self.sign_duration = Histogram(
            "signer_worker_sign_duration_seconds",
            "Time to sign one job's requests (one batch).",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "signer_worker_batch_size",
            "Requests in one job taken from the queue (signed together).",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        # The supervisor has no endpoint of its own: each slot's process reports how many
        # times the slot was restarted, so the series (one per port) only ever grows.
        self.restarts = Counter(
            "signer_worker_restarts",
            "Times the `signer worker` supervisor started this worker process's slot again "
            "after it exited on its own (crash, kill).",
            registry=self.registry,
        )
        self.restarts.inc(restarts)
        self.registry.register(_StateCollector(signer, worker_id, max_jobs, jobs_in_hand))

    def observe_job(self, answers: Mapping[str, Mapping[str, Any]], seconds: float | None) -> None:
        """Count a job's answers; `seconds` is its signing time, None when it was not signed."""
        tally: dict[tuple[str, str, str], int] = {}
        for answer in answers.values():
            labels = outcome_of(answer, self.engine)
            tally[labels] = tally.get(labels, 0) + 1
        for labels, count in tally.items():
            self.signatures.labels(*labels).inc(count)
        if seconds is not None:
            self.sign_duration.observe(seconds)
            self.batch_size.observe(len(answers))


class _StateCollector(Collector):
    """Gauges and counters read at scrape time from the signer, the worker and /proc."""

    def __init__(
        self, signer: Signer, worker_id: str, max_jobs: int, jobs_in_hand: Callable[[], int]
    ) -> None:
        self._signer = signer
        self._worker_id = worker_id
        self._max_jobs = max_jobs
        self._jobs_in_hand = jobs_in_hand

    def collect(self) -> Iterable[Metric]:
        counters = self._signer.counters()
        up = GaugeMetricFamily(
            "signer_worker_up", "1 while this worker process runs.", labels=["worker_id"]
        )
        up.add_metric([self._worker_id], 1)
        yield up
        yield GaugeMetricFamily(
            "signer_worker_jobs_in_hand", "Jobs being signed now.", value=self._jobs_in_hand()
        )
        yield GaugeMetricFamily(
            "signer_worker_max_jobs", "Jobs this process signs at once.", value=self._max_jobs
        )
        yield GaugeMetricFamily(
            "signer_worker_contexts_free",
            "Warm browser contexts idle, waiting for work.",
            value=counters.contexts_free,
        )
        yield GaugeMetricFamily(
            "signer_worker_contexts_total",
            "Warm browser contexts open and healthy.",
            value=counters.contexts_ready,
        )
        yield CounterMetricFamily(
            "signer_worker_context_recycles",
            "Contexts replaced after their signature count or age.",
            value=counters.context_recycles,
        )
        yield CounterMetricFamily(
            "signer_worker_browser_restarts",
            "Times Chromium was relaunched, for any reason.",
            value=counters.browser_restarts,
        )
        yield CounterMetricFamily(
            "signer_worker_browser_crashes",
            "Times Chromium, or a page of a live Chromium, died or stopped answering.",
            value=counters.browser_crashes,
        )
        stats = self._signer.stats()
        yield CounterMetricFamily(
            "signer_worker_context_loop_restarts",
            "Browser context loops that ended and were started again (a bug of ours).",
            value=stats.loop_restarts,
        )
        yield GaugeMetricFamily(
            "signer_worker_context_loops",
            "Browser context loops running (0: nothing signs; the worker leaves /health).",
            value=stats.loops_alive or 0,
        )
        yield CounterMetricFamily(
            "signer_worker_selfcheck_failures",
            "Signatures refused because they did not decode to their own request.",
            value=counters.selfcheck_failures,
        )
        memory = GaugeMetricFamily(
            "signer_worker_memory_bytes",
            "Resident memory: of this worker process (RSS), and of its Chromium's whole "
            "process tree (PSS, so pages its processes share are counted once).",
            labels=["process"],
        )
        memory.add_metric(["worker"], _own_rss_bytes())
        if counters.engine == "browser":
            pid = counters.browser_pid
            memory.add_metric(["chromium"], _tree_memory(pid) if pid is not None else 0)
        yield memory


def _own_rss_bytes() -> int:
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * _PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0


def _tree_memory(pid: int) -> int:
    # Imported here: `signer.browser` brings Playwright along, which the API (sharing
    # this module's bucket edges) must not load; a worker with a browser has it already.
    from signer.browser.procs import tree_rss_bytes

    return tree_rss_bytes(pid)


class MetricsServer:
    """A `/metrics` endpoint on a thread of its own: a scrape never waits on the event
    loop, nor the loop on a scrape reading /proc."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self._server: WSGIServer
        self._thread: Thread
        self._server, self._thread = start_http_server(port, host, registry)

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> MetricsServer | None:
    """Serve `registry` on `host:port`; None when `port` is 0 or cannot be had (signing
    goes on without metrics rather than not at all, and the failure is logged)."""
    if not port:
        return None
    try:
        return MetricsServer(registry, host, port)
    except OSError as error:
        log.error("worker metrics cannot listen on %s:%d: %s", host, port, error)
        return None
