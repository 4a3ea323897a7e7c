"""A real Prometheus (Debian's binary) scraping a live stack with our config and rules.

The config is ops/prometheus/prometheus.yml with its DNS discovery replaced by the live
API's and worker's addresses, scraping and evaluating every second; the Kubernetes
config is run too, its pod discovery replaced by target groups carrying the labels
Kubernetes would give the pods, to check the relabelling picks the signer's pods. Last,
a worker is killed under a Prometheus of its own, and its alerts must go pending.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from service.stack.services import free_port
from tests.ops.live import LiveStack, prometheus_api, running_prometheus, send_traffic
from tests.ops.prometheus_files import (
    alerts,
    compose_config_as_static,
    kubernetes_config_as_static,
    pod,
    records,
)
from tests.service_stack import service_stack

INTERVAL = "1s"
TIMEOUT = 30.0
RATE_LIMITED = 429

T = TypeVar("T")


def eventually(check: Callable[[], T | None], what: str, timeout: float = TIMEOUT) -> T:
    """Poll `check` until it returns something other than None; fail after `timeout`
    with the last AssertionError it raised, if any."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            found = check()
            if found is not None:
                return found
        except AssertionError as error:
            last = str(error)
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} after {timeout:.0f} s: {last}")
        time.sleep(0.5)


def targets(base: str) -> list[dict[str, Any]]:
    active: list[dict[str, Any]] = prometheus_api(base, "/api/v1/targets")["activeTargets"]
    return active


def query(base: str, expr: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = prometheus_api(base, "/api/v1/query", query=expr)["result"]
    return result


def values(base: str, expr: str) -> dict[str, float]:
    """The instant vector of `expr`, by its labels but the name (`label=value,...`, ""
    for none)."""
    found = {}
    for sample in query(base, expr):
        metric = sample["metric"]
        labels = ",".join(f"{k}={v}" for k, v in sorted(metric.items()) if k != "__name__")
        found[labels] = float(sample["value"][1])
    return found


def all_up(base: str, jobs: set[str]) -> list[dict[str, Any]] | None:
    active = targets(base)
    seen = {target["labels"]["job"] for target in active}
    assert seen == jobs, f"jobs {sorted(seen)}, expected {sorted(jobs)}"
    down = [
        f"{t['scrapeUrl']}: {t['health']} {t['lastError']}" for t in active if t["health"] != "up"
    ]
    assert not down, "; ".join(down)
    return active


@pytest.fixture(scope="module")
def prometheus(
    prometheus_binary: str, live_stack: LiveStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    port = free_port()
    config = compose_config_as_static(
        {
            "signer-api": live_stack.api_address,
            "signer-worker": live_stack.worker_address,
            "prometheus": f"127.0.0.1:{port}",
        },
        INTERVAL,
    )
    folder = tmp_path_factory.mktemp("prometheus")
    with running_prometheus(prometheus_binary, config, folder, port) as base:
        eventually(lambda: all_up(base, {"signer-api", "signer-worker", "prometheus"}), "targets")
        # Traffic across several scrapes, until the anonymous rate limit has answered in
        # two bursts a scrape apart: a labelled counter's series is born at its first
        # increment, which rate() cannot see, so the second burst is what shows.
        statuses: list[int] = []
        limited_bursts = 0
        for _ in range(30):
            burst = send_traffic(live_stack.stack, 5)
            statuses += burst
            limited_bursts += RATE_LIMITED in burst
            if limited_bursts == 2:
                break
            time.sleep(1.5)
        assert limited_bursts == 2, f"the rate limit did not answer twice: {statuses}"
        assert 200 in statuses, statuses
        time.sleep(3)  # a few more scrapes and evaluations after the last request
        yield base


def test_every_replica_target_is_up(prometheus: str) -> None:
    active = all_up(prometheus, {"signer-api", "signer-worker", "prometheus"})
    assert active is not None
    assert len(active) == 3


def test_every_rule_loads_and_evaluates_without_error(prometheus: str) -> None:
    expected = {r["record"] for r in records()} | {a["alert"] for a in alerts()}

    def evaluated() -> list[dict[str, Any]] | None:
        groups = prometheus_api(prometheus, "/api/v1/rules")["groups"]
        rules: list[dict[str, Any]] = [rule for group in groups for rule in group["rules"]]
        assert {rule["name"] for rule in rules} == expected
        failing = [f"{r['name']}: {r.get('lastError')}" for r in rules if r["health"] != "ok"]
        assert not failing, "; ".join(failing)
        return rules

    eventually(evaluated, "rules healthy")


@pytest.mark.parametrize("record", [rule["record"] for rule in records()])
def test_recording_rule_has_a_value(prometheus: str, record: str) -> None:
    eventually(lambda: query(prometheus, record) or None, f"no value for {record}")


def test_recorded_figures_match_the_traffic(prometheus: str) -> None:
    def figures() -> dict[str, dict[str, float]]:
        found = {
            name: values(prometheus, name)
            for name in (
                "signer:requests:rate5m",
                "signer:errors:ratio_rate5m",
                "signer:errors_by_type:rate5m",
                "signer:latency:p95_5m",
                "signer:rate_limited:rate5m",
                "signer:workers_alive",
                "signer:signatures:rate5m",
                "signer:contexts_total",
                "signer:worker_saturation:ratio",
            )
        }
        assert found["signer:requests:rate5m"][""] > 0
        # Refusals (400, 429) are the callers' errors, not ours: no 5xx.
        assert found["signer:errors:ratio_rate5m"][""] == 0
        assert found["signer:errors_by_type:rate5m"].keys() >= {
            "error_type=RATE_LIMIT_ERROR",
            "error_type=VALIDATION_ERROR",
        }
        p95 = found["signer:latency:p95_5m"][""]
        assert math.isfinite(p95), p95
        assert 0 < p95 < 5
        assert found["signer:rate_limited:rate5m"]["label=rate_limit_ip_minute"] > 0
        assert found["signer:workers_alive"][""] == 1
        assert found["signer:signatures:rate5m"]["outcome=signed"] > 0
        assert found["signer:contexts_total"][""] >= 0  # the native engine has none
        (saturation,) = found["signer:worker_saturation:ratio"].values()
        assert 0 <= saturation <= 1
        return found

    eventually(figures, "recorded figures")


def test_no_alert_fires_on_a_healthy_stack(prometheus: str) -> None:
    def quiet() -> bool | None:
        active = prometheus_api(prometheus, "/api/v1/alerts")["alerts"]
        named = [f"{a['labels']['alertname']} ({a['state']})" for a in active]
        assert not named, ", ".join(named)
        return True

    eventually(quiet, "alerts still active")


def test_kubernetes_relabelling_scrapes_the_signer_pods(
    prometheus_binary: str, live_stack: LiveStack, tmp_path: Path
) -> None:
    api_port = int(live_stack.api_address.rsplit(":", 1)[1])
    worker_port = live_stack.worker_metrics_port
    pods = [
        pod("signer-api-7d9f", "signer-api", api_port, declared=api_port),
        # Discovery gives the declared port; the annotation says which one to scrape.
        pod("signer-worker-5c2a", "signer-worker", worker_port, declared=1),
        pod("redis-0", "redis", 6379),  # not ours
        pod("signer-api-new", "signer-api", api_port, phase="Pending"),
        pod("signer-worker-bare", "signer-worker", None),  # no port annotation
    ]
    port = free_port()
    config = kubernetes_config_as_static(pods, INTERVAL, prometheus=f"127.0.0.1:{port}")
    with running_prometheus(prometheus_binary, config, tmp_path, port) as base:
        active = eventually(
            lambda: all_up(base, {"signer-api", "signer-worker", "prometheus"}), "pods scraped"
        )
        scraped = {
            (t["labels"]["job"], t["labels"]["instance"], t["labels"].get("namespace"))
            for t in active
            if t["labels"]["job"] != "prometheus"
        }
        assert scraped == {
            ("signer-api", "signer-api-7d9f", "signer"),
            ("signer-worker", "signer-worker-5c2a", "signer"),
        }
        dropped = prometheus_api(base, "/api/v1/targets")["droppedTargets"]
        assert sorted(t["discoveredLabels"]["__meta_kubernetes_pod_name"] for t in dropped) == [
            "redis-0",
            "signer-api-new",
            "signer-worker-bare",
        ]
        # The rules work on the pods' labels as well.
        eventually(lambda: query(base, "signer:workers_alive") or None, "rules on k8s labels")


def test_a_dead_worker_raises_its_alerts(prometheus_binary: str, tmp_path: Path) -> None:
    # A stack of its own: the shared one must keep its worker.
    worker_port, port = free_port(), free_port()
    with (
        (tmp_path / "api.log").open("wb") as api_stderr,
        service_stack(worker_metrics_port=worker_port, api_stderr=api_stderr) as stack,
    ):
        live = LiveStack(stack, worker_port)
        config = compose_config_as_static(
            {
                "signer-api": live.api_address,
                "signer-worker": live.worker_address,
                "prometheus": f"127.0.0.1:{port}",
            },
            INTERVAL,
        )
        with running_prometheus(prometheus_binary, config, tmp_path, port) as base:
            eventually(lambda: all_up(base, {"signer-api", "signer-worker", "prometheus"}), "up")
            stack.workers.kill()
            stack.workers.wait()

            def raised() -> set[str] | None:
                active = prometheus_api(base, "/api/v1/alerts")["alerts"]
                names = {a["labels"]["alertname"] for a in active}
                # Pending: both wait out their `for` before firing.
                assert {"SignerTargetDown", "SignerNoWorkerAlive"} <= names, names
                return names

            # The API counts a worker gone after three missed heartbeats (9 s) and reads
            # the count every 5 s.
            eventually(raised, "alerts raised", timeout=45)
            assert values(base, "signer:workers_alive") == {"": 0}
