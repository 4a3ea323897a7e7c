"""The metrics of the running service: `signer api` and `signer worker --processes 2` with
the browser engine, real traffic over HTTP, then the API's and each worker's /metrics."""

from __future__ import annotations

import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from redis import Redis

from service.stack.services import port_is_free
from tests.service_stack import ServiceStack, get_json, service_stack
from tests.signer.conftest import FETCH_URL
from tests.workers.test_metrics import WORKER_METRICS, Samples, samples, total

pytestmark = pytest.mark.browser

PROCESSES = 2
PER_MINUTE = 12  # the anonymous budget: enough to sign, little enough to reach


class LiveStack:
    def __init__(self, stack: ServiceStack, metrics_port: int) -> None:
        self.stack = stack
        self.worker_urls = [
            f"http://127.0.0.1:{metrics_port + n}/metrics" for n in range(PROCESSES)
        ]

    def api(self) -> Samples:
        return _scrape(f"{self.stack.base}/metrics")

    def workers(self) -> list[Samples]:
        return [_scrape(url) for url in self.worker_urls]


def _scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=5) as response:
        return samples(response.read().decode())


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def _delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


def _summed(scrapes: list[Samples], name: str, **labels: str) -> float:
    return sum(total(found, name, **labels) for found in scrapes)


def _metrics_ports(count: int) -> int:
    """The first of `count` consecutive free ports, below the kernel's ephemeral range
    (32768 and up), so the API's and the servers' free ports, picked from that range
    while the stack starts, can never take a worker's metrics port."""
    for _ in range(200):
        first = random.randrange(20_000, 30_000)
        if all(port_is_free(first + n) for n in range(count)):
            return first
    raise AssertionError("no run of free ports for the worker metrics")


@pytest.fixture(scope="module")
def live(require_chromium: None) -> Iterator[LiveStack]:
    port = _metrics_ports(PROCESSES)
    env = {
        "SIGNER_CONTEXTS": "1",
        "SIGNER_LIMIT_ANONYMOUS_PER_MINUTE": str(PER_MINUTE),
        "SIGNER_LIMIT_ANONYMOUS_PER_DAY": "none",
    }
    with service_stack(
        PROCESSES, "browser", limits=True, env=env, worker_metrics_port=port
    ) as stack:
        yield LiveStack(stack, port)


def test_traffic_moves_the_api_and_worker_metrics(live: LiveStack) -> None:
    api_before, workers_before = live.api(), live.workers()
    sign = f"{live.stack.base}/webcast/sign_url"
    signed_url = f"{sign}?{urllib.parse.urlencode({'url': FETCH_URL})}"
    statuses = [_status(signed_url) for _ in range(4)]
    # Refused by a worker (the host is not TikTok's), and by the API (no URL at all).
    statuses.append(_status(f"{sign}?{urllib.parse.urlencode({'url': 'https://example.com/x'})}"))
    statuses.append(_status(sign))
    for _ in range(3 * PER_MINUTE):  # until the anonymous budget runs out
        statuses.append(_status(signed_url))
        if statuses[-1] == 429:
            break
    signed, refused, limited = statuses.count(200), statuses.count(400), statuses.count(429)
    assert signed >= 4
    assert refused == 2
    assert limited >= 1
    assert signed + refused + limited == len(statuses)
    get_json(f"{live.stack.base}/health")  # refreshes the queue gauges
    api, workers = live.api(), live.workers()

    route = {"route": "sign_url_v1"}
    requests = "signer_api_requests_total"
    assert _delta(api, api_before, requests, status="200", **route) == signed
    assert _delta(api, api_before, requests, status="400", error_type="VALIDATION_ERROR") == 2
    assert _delta(api, api_before, requests, status="429", **route) == limited
    assert _delta(api, api_before, "signer_api_rate_limited_total") == limited
    duration = "signer_api_request_duration_seconds_count"
    assert _delta(api, api_before, duration, **route) == len(statuses)
    # Every request that reached a worker waited in the queue: the signed and the invalid.
    assert _delta(api, api_before, "signer_queue_wait_seconds_count") == signed + 1
    assert total(api, "signer_queue_expired_total") == 0
    assert total(api, "signer_queue_rejected_total") == 0
    assert total(api, "signer_workers_alive") == PROCESSES
    assert total(api, "signer_queue_ready_jobs") == 0
    assert total(api, "signer_queue_jobs") == 0
    assert total(api, "signer_api_requests_in_flight") == 1  # this scrape
    assert total(api, "process_resident_memory_bytes") > 0

    signatures = "signer_worker_signatures_total"
    signed_by_workers = sum(
        _delta(after, before, signatures, outcome="signed", engine="browser")
        for after, before in zip(workers, workers_before, strict=True)
    )
    assert signed_by_workers == signed
    invalid = sum(
        _delta(after, before, signatures, outcome="invalid")
        for after, before in zip(workers, workers_before, strict=True)
    )
    assert invalid == 1
    jobs = _summed(workers, "signer_worker_batch_size_count") - _summed(
        workers_before, "signer_worker_batch_size_count"
    )
    assert 1 <= jobs <= signed + 1
    assert _summed(workers, "signer_worker_batch_size_sum") - _summed(
        workers_before, "signer_worker_batch_size_sum"
    ) == (signed + 1)
    assert _summed(workers, "signer_worker_sign_duration_seconds_count") == _summed(
        workers, "signer_worker_batch_size_count"
    )


def test_each_worker_process_serves_its_own_metrics(live: LiveStack) -> None:
    scrapes = live.workers()
    worker_ids = set()
    for found in scrapes:
        assert {name for name, _ in found} >= WORKER_METRICS
        [(_, labels)] = [key for key in found if key[0] == "signer_worker_up"]
        worker_ids.add(dict(labels)["worker_id"])
        assert total(found, "signer_worker_max_jobs") == 32
        assert total(found, "signer_worker_jobs_in_hand") == 0
        assert total(found, "signer_worker_contexts_total") == 1
        assert 0 <= total(found, "signer_worker_contexts_free") <= 1
        assert total(found, "signer_worker_memory_bytes", process="worker") > 10_000_000
        assert total(found, "signer_worker_memory_bytes", process="chromium") > 10_000_000
        assert total(found, "signer_worker_browser_restarts_total") == 0
        assert total(found, "signer_worker_selfcheck_failures_total") == 0
    assert len(worker_ids) == PROCESSES


def _commands(redis: Redis) -> int:
    stats: dict[str, Any] = redis.info("stats")  # type: ignore[assignment]  # sync client
    return int(stats["total_commands_processed"])


def test_an_idle_stack_stays_within_its_redis_budget(live: LiveStack) -> None:
    redis = Redis.from_url(live.stack.env["REDIS_URL"])
    try:
        time.sleep(0.5)
        before = _commands(redis)
        time.sleep(5)  # one refresh of the API's gauges at least
        after = _commands(redis)
    finally:
        redis.close()
    per_second = (after - before - 1) / 5
    # Two idle workers (about two commands a second each) and the API's gauge refresh.
    assert per_second <= 20, f"{per_second:.1f} Redis commands/s while idle"
