"""Faults under load (issues 9 and 15): Redis restarted on the same port, a worker
process killed, Chromium killed. One failure must never stop the service: every request
is answered by its deadline (a 503 with Retry-After at worst), signing comes back by
itself, and what died is replaced and counted once.

Each test starts its own stack (the fault would spoil a shared one) and asserts counts.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
import redis

from service.stack.services import free_port
from tests.hostile.faults import (
    FaultRun,
    chromium_pid,
    process_kill,
    redis_restart,
    worker_pids,
)
from tests.restartable_redis import RestartableRedis, restartable_redis
from tests.service_stack import get_json, service_stack, wait_for_workers
from workers.keys import supervisors_key

REDIS_DOWN = 2.0  # seconds Redis stays away
RECOVERY = 3.0  # signing is back this long after the fault ended


def _metric(port: int, name: str) -> float:
    """One unlabelled sample of a worker's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
    raise AssertionError(f"{name} not on the worker's /metrics")


def _assert_answered_in_time(run: FaultRun) -> None:
    assert run.answers, "no request was answered"
    assert run.others == [], run.others[:5]  # every non-200 is a 503 with Retry-After
    assert run.late == 0, [a for a in run.answers if a.elapsed > 6][:5]


@pytest.fixture
def redis_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[RestartableRedis]:
    """A Redis the test may kill; the stack uses it (see `tests.redis_server`)."""
    with restartable_redis() as server:
        monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{server.port}/0")
        yield server


def test_redis_restart_under_load_answers_by_the_deadline(redis_server: RestartableRedis) -> None:
    with service_stack(processes=1) as stack:
        run = asyncio.run(redis_restart(stack.base, redis_server, down=REDIS_DOWN))
        _assert_answered_in_time(run)
        assert run.unavailable > 0  # the outage was felt...
        assert run.failed_after(RECOVERY) == 0  # ...and signing came back by itself
        assert run.ok > 0
        # The same processes serve on (nobody restarted them), healthy again.
        assert stack.api.poll() is None
        assert stack.workers.poll() is None
        wait_for_workers(stack.base, 1, timeout=10)
        status, health = get_json(f"{stack.base}/health")
        assert (status, health["status"]) == (200, "healthy"), health
        # SIGTERM still stops the API (a spinning listener ignored it).
        stack.api.send_signal(signal.SIGTERM)
        assert stack.api.wait(timeout=15) == 0


def test_outage_503_says_nothing_of_redis(redis_server: RestartableRedis) -> None:
    with service_stack(processes=1) as stack:
        redis_server.kill()
        try:
            statuses = []
            for _ in range(5):
                status, body = _post(stack.base)
                statuses.append(status)
                assert "127.0.0.1" not in str(body), body
                assert "Error 111" not in str(body), body
            assert set(statuses) == {503}, statuses
            # The listener backs off instead of spinning: the API still answers at once.
            status, health = get_json(f"{stack.base}/health")
            assert (status, health["redis_connected"]) == (503, False), health
        finally:
            redis_server.revive()
        stack.api.send_signal(signal.SIGTERM)
        assert stack.api.wait(timeout=15) == 0


def _post(base: str) -> tuple[int, dict[str, object]]:
    """POST one signing request; its status and body (a 503 must carry Retry-After)."""
    request = urllib.request.Request(
        f"{base}/api/signature",
        data=json.dumps({"url": "https://webcast.tiktok.com/webcast/im/fetch/?aid=1988"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        if error.code == 503 and not error.headers.get("Retry-After"):
            raise AssertionError("a 503 without Retry-After") from None
        return error.code, json.loads(error.read())


def test_killed_worker_is_restarted_and_counted() -> None:
    port = free_port()
    with service_stack(processes=2, worker_metrics_port=port) as stack:
        # Slot 0 started first: the lower process id.
        victims = sorted(worker_pids(stack.workers.pid))
        assert len(victims) == 2
        slot = 0

        run = asyncio.run(process_kill(stack.base, lambda: victims[slot]))
        _assert_answered_in_time(run)
        assert run.ok == len(run.answers)  # the survivor signs the dead one's jobs
        # A new process took the dead one's place, and says so on the slot's port.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            alive = worker_pids(stack.workers.pid)
            if len(alive) == 2 and victims[slot] not in alive:
                try:
                    if _metric(port + slot, "signer_worker_restarts_total") == 1:
                        break
                except OSError:
                    pass
            time.sleep(0.2)
        else:
            raise AssertionError(f"the killed worker was not replaced: {alive}")
        # An operator's SIGTERM to one worker alone is a death too: it comes back.
        survivor = next(pid for pid in worker_pids(stack.workers.pid) if pid != victims[slot])
        os.kill(survivor, signal.SIGTERM)
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            alive = worker_pids(stack.workers.pid)
            if len(alive) == 2 and survivor not in alive:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"the SIGTERMed worker was not replaced: {alive}")
        wait_for_workers(stack.base, 2, timeout=30)
        status, health = get_json(f"{stack.base}/health")
        assert (status, health["status"], health["workers_expected"]) == (200, "healthy", 2)
        # Another host's supervisor means to run one more than is alive: degraded, not
        # unhealthy (this API still signs, a load balancer must keep it).
        client = redis.Redis.from_url(stack.env["REDIS_URL"])
        client.zadd(supervisors_key(stack.env["SIGNER_QUEUE_PREFIX"]), {"elsewhere:1": time.time()})
        status, health = get_json(f"{stack.base}/health")
        assert (status, health["status"], health["workers_expected"]) == (200, "degraded", 3)
        client.close()
        # SIGTERM to the supervisor stops every worker for good: none is restarted.
        stack.workers.send_signal(signal.SIGTERM)
        assert stack.workers.wait(timeout=40) == 0
        assert worker_pids(stack.workers.pid) == []


def test_killed_chromium_costs_no_request_and_counts_once(require_chromium: None) -> None:
    port = free_port()
    with service_stack(processes=1, engine="browser", worker_metrics_port=port) as stack:
        crashes = _metric(port, "signer_worker_browser_crashes_total")

        run = asyncio.run(process_kill(stack.base, lambda: chromium_pid(stack.workers.pid)))
        _assert_answered_in_time(run)
        assert run.ok == len(run.answers), run.figures()
        assert _metric(port, "signer_worker_browser_crashes_total") - crashes == 1
        assert _metric(port, "signer_worker_browser_restarts_total") == 1
