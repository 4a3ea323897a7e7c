"""Worker and queue metrics on a real Redis with an in-process worker: what each collector
reports, served over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from api.metrics import ApiMetrics
from service.stack.services import free_port
from signer import DeadlineExceeded, Signer, SignerSettings, SignRequest
from tests.signer.conftest import FETCH_URL
from workers import QueueFull, QueueSettings, SignOutcome, SignQueue
from workers.metrics import WorkerMetrics, outcome_of, serve_metrics
from workers.scripts import QueueScripts
from workers.worker import QueueWorker, build_worker

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

# ops/METRICS.md: every worker metric, as exposed.
WORKER_METRICS = {
    "signer_worker_signatures_total",
    "signer_worker_sign_duration_seconds_count",
    "signer_worker_batch_size_count",
    "signer_worker_jobs_in_hand",
    "signer_worker_max_jobs",
    "signer_worker_contexts_free",
    "signer_worker_contexts_total",
    "signer_worker_context_recycles_total",
    "signer_worker_browser_restarts_total",
    "signer_worker_browser_crashes_total",
    "signer_worker_selfcheck_failures_total",
    "signer_worker_memory_bytes",
    "signer_worker_up",
    "process_resident_memory_bytes",
    "python_info",
}


def samples(text: str) -> Samples:
    """Every sample of an exposition, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(found: Samples, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and wanted <= ls)


def scrape(registry: CollectorRegistry) -> Samples:
    return samples(generate_latest(registry).decode())


@contextlib.asynccontextmanager
async def worker_running(settings: QueueSettings) -> AsyncIterator[QueueWorker]:
    worker = build_worker(settings, SignerSettings(engine="native"))
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        await worker.drain(timeout=5)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await worker.close()


def test_answers_are_labelled_by_outcome() -> None:
    signed = {"result": {"engine": "browser", "profile": "mac-chrome-retina"}}
    assert outcome_of(signed, "browser") == ("browser", "mac-chrome-retina", "signed")
    kinds = {
        "InvalidSignRequest": "invalid",
        "DeadlineExceeded": "expired",
        "SelfCheckFailed": "selfcheck_failed",
        "EngineUnavailable": "error",
        "SignError": "error",
    }
    for kind, outcome in kinds.items():
        assert outcome_of({"error": {"kind": kind}}, "native") == ("native", "", outcome)


async def test_worker_counts_what_it_signs(queue: SignQueue, queue_settings: QueueSettings) -> None:
    # One job of two requests, waiting for a worker: by the time one takes it, the
    # deadline of one of them has passed.
    now = time.time()
    early = asyncio.gather(
        queue.submit(SignRequest(FETCH_URL, deadline=now + 5)),
        queue.submit(SignRequest(FETCH_URL, deadline=now + 0.05)),
    )
    await asyncio.sleep(0.2)
    async with worker_running(queue_settings) as worker:
        await early
        await asyncio.gather(*(queue.submit(SignRequest(FETCH_URL)) for _ in range(4)))
        await queue.submit(SignRequest("https://example.com/x"))  # refused by the worker
        found = scrape(worker.metrics.registry)
    assert {name for name, _ in found} >= WORKER_METRICS
    assert total(found, "signer_worker_signatures_total", outcome="signed", engine="native") == 5
    assert total(found, "signer_worker_signatures_total", outcome="invalid") == 1
    assert total(found, "signer_worker_signatures_total", outcome="expired") == 1
    jobs = total(found, "signer_worker_batch_size_count")
    assert 3 <= jobs <= 7  # the five went together or not, the other two alone
    assert total(found, "signer_worker_batch_size_sum") == 7
    assert total(found, "signer_worker_sign_duration_seconds_count") == jobs
    assert total(found, "signer_worker_up", worker_id=worker.worker_id) == 1
    assert total(found, "signer_worker_max_jobs") == queue_settings.max_jobs
    assert total(found, "signer_worker_jobs_in_hand") == 0
    assert total(found, "signer_worker_memory_bytes", process="worker") > 10_000_000
    # The native engine has no browser: no contexts, no Chromium series.
    assert total(found, "signer_worker_contexts_total") == 0
    assert ("signer_worker_memory_bytes", frozenset({("process", "chromium")})) not in found


async def test_worker_metrics_are_served_over_http(queue_settings: QueueSettings) -> None:
    worker = build_worker(queue_settings, SignerSettings(engine="native"))
    port = free_port()
    server = serve_metrics(worker.metrics.registry, "127.0.0.1", port)
    assert server is not None
    try:
        # A second process given the same port goes on without metrics, and says so.
        assert serve_metrics(CollectorRegistry(), "127.0.0.1", port) is None
        url = f"http://127.0.0.1:{port}/metrics"
        text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
    finally:
        server.close()
    assert total(samples(text.decode()), "signer_worker_up") == 1
    assert serve_metrics(CollectorRegistry(), "127.0.0.1", 0) is None  # 0: off


async def test_queue_gauges_come_from_one_refresh(
    queue: SignQueue, queue_settings: QueueSettings
) -> None:
    metrics = ApiMetrics()
    waiting = []
    for _ in range(2):  # separate turns of the loop: two jobs
        request = SignRequest(FETCH_URL, deadline=time.time() + 3)
        waiting.append(asyncio.create_task(queue.submit(request)))
        await asyncio.sleep(0.1)
    # One job held by a worker: taken as a worker takes it, and not answered yet.
    scripts = QueueScripts(queue.redis, queue_settings.prefix)
    taken = await scripts.take(
        now_ms=int(time.time() * 1000), limit=1, lease_ms=3000, tokens_consumed=0
    )
    assert len(taken) == 1
    state = await metrics.refresh_queue(queue)
    assert state is not None
    assert (state.ready, state.leased, state.workers) == (1, 1, 0)
    found = scrape(metrics.registry)
    assert total(found, "signer_queue_ready_jobs") == 1
    assert total(found, "signer_queue_jobs") == 2
    assert total(found, "signer_workers_alive") == 0
    async with worker_running(queue_settings):
        for _ in range(50):  # until the worker has said it is alive
            state = await metrics.refresh_queue(queue)
            if state is not None and state.workers:
                break
            await asyncio.sleep(0.05)
        assert total(scrape(metrics.registry), "signer_workers_alive") == 1
    for task in waiting:
        task.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)


async def test_outcomes_feed_the_queue_metrics() -> None:
    metrics = ApiMetrics()
    metrics.observe_outcome(SignOutcome(DeadlineExceeded("late"), None, None))
    metrics.observe_outcome(SignOutcome(QueueFull("full"), None, None))
    metrics.observe_outcome(SignOutcome(DeadlineExceeded("late"), "w", 12.0))
    found = scrape(metrics.registry)
    assert total(found, "signer_queue_expired_total") == 2
    assert total(found, "signer_queue_rejected_total") == 1
    assert total(found, "signer_queue_wait_seconds_count") == 1
    assert total(found, "signer_queue_wait_seconds_sum") == pytest.approx(0.012)
    assert total(found, "process_resident_memory_bytes") > 0


@pytest.mark.browser
async def test_browser_counters_reach_the_worker_metrics(
    require_chromium: None, queue_settings: QueueSettings
) -> None:
    settings = SignerSettings(engine="browser", contexts=1, recycle_after_signatures=2)
    worker = build_worker(queue_settings, settings)
    await worker.signer.start()
    try:
        for _ in range(3):  # the context is recycled after its second signature
            await worker.signer.sign(SignRequest(FETCH_URL))
        before = scrape(worker.metrics.registry)
        pid = worker.signer.counters().browser_pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await worker.signer.sign(SignRequest(FETCH_URL, deadline=time.time() + 5))
        after = scrape(worker.metrics.registry)
    finally:
        await worker.signer.close()
    assert total(before, "signer_worker_context_recycles_total") >= 1
    assert total(before, "signer_worker_contexts_total") == 1
    assert total(before, "signer_worker_memory_bytes", process="chromium") > 10_000_000
    assert total(before, "signer_worker_browser_restarts_total") == 0
    assert total(after, "signer_worker_browser_restarts_total") == 1
    assert total(after, "signer_worker_browser_crashes_total") >= 1
    assert worker.signer.counters().browser_pid is None  # closed


def test_the_api_loads_no_browser_code() -> None:
    # `api.metrics` shares this module's bucket edges; the memory reader, which needs
    # `signer.browser`, is imported only in a worker that runs a browser.
    probe = (
        "import sys, service.api_process; "
        "print('signer.browser' in sys.modules, 'playwright' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["False", "False"]


def test_signature_series_start_at_zero() -> None:
    # rate() and increase() cannot see a counter's first increment when the series is
    # born with it: the failure alert would miss a fresh worker's first failures.
    metrics = WorkerMetrics(
        Signer(SignerSettings(engine="native")), worker_id="w", max_jobs=1, jobs_in_hand=lambda: 0
    )
    text = generate_latest(metrics.registry).decode()
    for outcome in ("invalid", "expired", "selfcheck_failed", "error"):
        labels = f'engine="native",outcome="{outcome}",profile=""'
        assert f"signer_worker_signatures_total{{{labels}}} 0.0" in text
