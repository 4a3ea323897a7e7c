"""The service as users run it, for tests: private Redis and Postgres, `signer worker`,
`signer api` (one or more)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO

from service.stack.services import free_port
from tests.postgres_server import postgres_server
from tests.redis_server import private_redis

__all__ = [
    "ServiceStack",
    "get_json",
    "issue_key",
    "run_signer",
    "service_stack",
    "wait_for_workers",
]


@dataclass
class ServiceStack:
    base: str  # the first API's, no trailing slash
    api: subprocess.Popen[bytes]
    workers: subprocess.Popen[bytes]
    env: dict[str, str]  # what every process was started with (REDIS_URL, DATABASE_URL...)
    bases: list[str] = field(default_factory=list)  # every API's
    apis: list[subprocess.Popen[bytes]] = field(default_factory=list)


def run_signer(env: dict[str, str], *args: str) -> str:
    """Run `signer ARGS` as a user would (`python -m signer`) with `env`; its output."""
    done = subprocess.run(
        [sys.executable, "-m", "service", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        raise AssertionError(f"signer {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done.stdout.strip()


def issue_key(env: dict[str, str], email: str, tier: str = "free", *options: str) -> str:
    """Migrate the database of `env`, add the user `email` and issue a key; the key."""
    run_signer(env, "migrate")
    run_signer(env, "users", "create", email, "--tier", tier)
    return run_signer(env, "keys", "create", "--user", email, "--name", "tests", *options)


def get_json(url: str) -> tuple[int, dict[str, object]]:
    """GET `url`; its status and JSON body, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_for_workers(base: str, count: int, timeout: float = 30.0) -> float:
    """Poll `GET /health` until it reports `count` workers (0 too, after a stop); the
    seconds it took."""
    started = time.monotonic()
    health: dict[str, object] = {}
    while time.monotonic() - started < timeout:
        try:
            _, health = get_json(f"{base}/health")
            if health.get("workers") == count:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the stack did not report {count} workers in {timeout} s: {health}")


@contextmanager
def service_stack(
    processes: int = 1,
    engine: str = "native",
    *,
    apis: int = 1,
    limits: bool = False,
    env: dict[str, str] | None = None,
    worker_metrics_port: int = 0,
    api_stderr: IO[bytes] | None = None,
) -> Iterator[ServiceStack]:
    """Start the stack, wait until `/health` reports every worker, kill what is left after.

    Each stack gets a fresh database; rate limits are off unless `limits` (the tests send
    hundreds of anonymous requests from one address); `env` adds or overrides settings.
    Worker metrics are served from `worker_metrics_port` (plus the process index) when
    given, else not at all, so stacks never compete for the default port. The APIs write
    their logs to `api_stderr` when given.
    """
    with private_redis() as redis_url, postgres_server() as postgres:
        database_url = asyncio.run(postgres.fresh_database())
        environment = dict(
            os.environ,
            REDIS_URL=redis_url,
            DATABASE_URL=database_url,
            SIGNER_QUEUE_PREFIX=f"test-{uuid.uuid4().hex[:8]}",
            SIGNER_ENGINE=engine,
            SIGNER_LIMIT_ENABLED="true" if limits else "false",
            SIGNER_WORKER_METRICS_PORT=str(worker_metrics_port),
        )
        environment.update(env or {})
        command = [sys.executable, "-m", "service"]
        workers = subprocess.Popen(
            [*command, "worker", "--processes", str(processes)], env=environment
        )
        ports = [free_port() for _ in range(apis)]
        servers = [
            subprocess.Popen(
                [*command, "api", "--port", str(port)], env=environment, stderr=api_stderr
            )
            for port in ports
        ]
        try:
            bases = [f"http://127.0.0.1:{port}" for port in ports]
            for base in bases:
                wait_for_workers(base, processes)
            yield ServiceStack(bases[0], servers[0], workers, environment, bases, servers)
        finally:
            for process in (*servers, workers):
                if process.poll() is None:
                    process.kill()
                    process.wait()
            asyncio.run(postgres.drop(database_url))
