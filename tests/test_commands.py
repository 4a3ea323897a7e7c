"""`signer api` and `signer worker --processes N` as a user runs them, on a private Redis."""

from __future__ import annotations

import signal
import urllib.parse
from collections.abc import Iterator

import pytest

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
