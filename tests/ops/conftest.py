"""Fixtures of the ops tests: Prometheus's binaries, a Postgres server, and one live stack
(API and worker, native engine) shared by the tests of this package."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from service.stack.services import free_port
from tests.ops.live import PROMETHEUS_HINT, LiveStack
from tests.service_stack import service_stack

# The anonymous budget per minute of the live stack: small, so that the tests' traffic
# also meets the rate limit and `signer_api_rate_limited_total` has a series.
ANONYMOUS_PER_MINUTE = 20


def _binary(name: str) -> str:
    # Fail rather than skip: a machine without Prometheus must not pass by testing nothing.
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} {PROMETHEUS_HINT}")
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return _binary("promtool")


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    return _binary("prometheus")


@pytest.fixture(scope="package")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    port = free_port()
    env = {
        "SIGNER_LIMIT_ANONYMOUS_PER_MINUTE": str(ANONYMOUS_PER_MINUTE),
        "SIGNER_LIMIT_ANONYMOUS_PER_DAY": "none",
    }
    # The API logs every request (Prometheus's scrapes too): into a file, not the output.
    log = tmp_path_factory.mktemp("stack") / "api.log"
    with (
        log.open("wb") as api_stderr,
        service_stack(
            limits=True, env=env, worker_metrics_port=port, api_stderr=api_stderr
        ) as stack,
    ):
        yield LiveStack(stack, port)
