"""`signer api` and `signer worker --processes N` as a user runs them, on a private Redis."""

from __future__ import annotations

import signal
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from signer.browser.procs import descendants
from tests.service_stack import ServiceStack, get_json, service_stack
from tests.signer.conftest import FETCH_URL


@pytest.fixture
def two_workers() -> Iterator[ServiceStack]:
    with service_stack(processes=2) as stack:
        yield stack


def test_api_and_two_workers_sign_then_stop_cleanly(two_workers: ServiceStack) -> None:
    query = urllib.parse.urlencode({"url": FETCH_URL})
    status, body = get_json(f"{two_workers.base}/webcast/sign_url?{query}")
    assert status == 200
    assert "X-Bogus=DFSz" in str(body["signedUrl"])

    two_workers.workers.send_signal(signal.SIGTERM)
    two_workers.api.send_signal(signal.SIGTERM)
    assert two_workers.workers.wait(timeout=30) == 0
    assert two_workers.api.wait(timeout=30) == 0


def test_worker_processes_do_not_outlive_their_parent(two_workers: ServiceStack) -> None:
    workers = two_workers.workers
    children = [
        pid
        for pid in descendants(workers.pid)
        if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    assert len(children) == 2
    workers.kill()  # SIGKILL: the parent cannot pass anything on
    workers.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_running(pid) for pid in children):
        time.sleep(0.2)
    alive = [pid for pid in children if _running(pid)]
    assert not alive, f"worker processes {alive} outlived their parent"


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's reaper is missing
