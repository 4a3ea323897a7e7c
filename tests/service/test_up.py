"""`signer up` on a machine with no REDIS_URL or DATABASE_URL: everything private, durable,
a key issued through its state folder, a quiet start, then everything gone on Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import asyncpg
import pytest
import redis

from service.stack.recovery import stack_processes
from service.stack.services import free_port as _free_port
from tests.service_stack import get_json as _get
from tests.service_stack import run_signer
from tests.signer.conftest import FETCH_URL

__all__ = ["UpRun", "fresh_state", "start_up", "up_env"]

UP_TIMEOUT = 90.0  # first start: initdb, then the workers warm


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return True
    except OSError:
        return False


@dataclass
class UpRun:
    """A `signer up` started by a test: its process, stdout so far, the ports it printed."""

    process: subprocess.Popen[str]
    state: Path
    started_ticks: int  # when it started, in clock ticks since boot (proc(5))
    lines: list[str]
    base: str
    redis_port: int
    postgres_port: int

    @property
    def output(self) -> str:
        return "".join(self.lines)


def up_env(**extra: str) -> dict[str, str]:
    """The environment of a first-time user: no REDIS_URL or DATABASE_URL; the native
    engine (light), no worker metrics port (other stacks may hold 9100)."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(SIGNER_ENGINE="native", SIGNER_WORKER_METRICS_PORT="0", SIGNER_LOG_FORMAT="json")
    env.update(extra)
    return env


@contextmanager
def fresh_state() -> Iterator[Path]:
    """A fresh state folder. Not pytest's tmp_path: as root, Postgres runs as `postgres`,
    which must be able to enter every parent folder of its data."""
    folder = Path(tempfile.mkdtemp(prefix="signer-up-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    for pid in stack_processes(folder):  # a failed test's leftovers: never left running
        with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def up_state() -> Iterator[Path]:
    with fresh_state() as folder:
        yield folder


def start_up(state: Path, port: int, env: dict[str, str], stderr: IO[str] | None = None) -> UpRun:
    """Start `signer up` and read its stdout until it has printed its banner (or ended)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "up", "--port", str(port), "--state", str(state)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    assert process.stdout is not None
    started = int(Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    lines: list[str] = []
    deadline = time.monotonic() + UP_TIMEOUT
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("Ctrl-C stops everything"):  # the banner's last line
            break
    output = "".join(lines)
    if f"signer is up: http://127.0.0.1:{port}" not in output:
        process.kill()
        process.wait()
        raise AssertionError(f"signer up did not come up:\n{output}")
    redis_port = re.search(r"private Redis on redis://127.0.0.1:(\d+)", output)
    postgres_port = re.search(r"private Postgres on \S+:(\d+)/signer", output)
    assert redis_port, output
    assert postgres_port, output
    base = f"http://127.0.0.1:{port}"
    return UpRun(process, state, started, lines, base, int(redis_port[1]), int(postgres_port[1]))


@pytest.fixture
def signer_up(up_state: Path) -> Iterator[UpRun]:
    run = start_up(up_state, _free_port(), up_env())
    yield run
    if run.process.poll() is None:
        run.process.kill()
        run.process.wait()


def _stop(run: UpRun) -> int:
    run.process.send_signal(signal.SIGINT)
    return run.process.wait(timeout=60)


def test_up_starts_private_services_and_stops_everything(up_state: Path) -> None:
    port = _free_port()
    with (up_state.parent / f"{up_state.name}.stderr").open("w+") as stderr:
        run = start_up(up_state, port, up_env(), stderr=stderr)
        try:
            assert _port_open(run.redis_port)
            assert _port_open(run.postgres_port)
            status, health = _get(f"{run.base}/health")
            assert status == 200, health
            query = urllib.parse.urlencode({"url": FETCH_URL})
            status, body = _get(f"{run.base}/webcast/sign_url?{query}")
            assert status == 200
            assert "&X-Bogus=" in str(body["signedUrl"])
        finally:
            code = _stop(run)
        stderr.seek(0)
        logged = [json.loads(line) for line in stderr if line.startswith("{")]
    Path(stderr.name).unlink()
    assert code == 0
    assert not _port_open(port)
    assert not _port_open(run.redis_port)
    assert not _port_open(run.postgres_port)
    assert (up_state / "postgres" / "data" / "PG_VERSION").exists()
    # A quiet start: signer up's own polling of /health while the workers warm (503)
    # is no warning.
    assert logged, "the API and workers log JSON lines"
    warnings = [entry for entry in logged if entry.get("level") in ("warning", "error")]
    assert not warnings, warnings
    assert not stack_processes(up_state)


def test_up_keeps_its_data_durably(signer_up: UpRun) -> None:
    async def fsync() -> str:
        url = f"postgresql://postgres@127.0.0.1:{signer_up.postgres_port}/signer"
        conn = await asyncpg.connect(url)
        try:
            return str(await conn.fetchval("SHOW fsync"))
        finally:
            await conn.close()

    assert asyncio.run(fsync()) == "on"
    client = redis.Redis(port=signer_up.redis_port)
    try:
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
        # The append-only file is kept in the state folder, not wherever Redis started.
        folder = client.config_get("dir")
        assert isinstance(folder, dict)
        assert Path(str(folder["dir"])) == signer_up.state / "redis"
    finally:
        client.close()


def test_a_key_is_one_command_while_up_runs(signer_up: UpRun) -> None:
    # No DATABASE_URL: `signer users` and `signer keys` find the database of the running
    # stack through its state folder, as `make key` runs them.
    env, state = up_env(), str(signer_up.state)
    for _ in range(2):  # the second time the user exists already: still no error
        run_signer(
            env,
            "users",
            "create",
            "ada@example.com",
            "--tier",
            "api_key",
            "--if-missing",
            "--state",
            state,
        )
    key = run_signer(
        env, "keys", "create", "--user", "ada@example.com", "--name", "t", "--state", state
    )
    assert key.startswith("sk_")
    query = urllib.parse.urlencode({"url": FETCH_URL, "apiKey": key})
    status, body = _get(f"{signer_up.base}/webcast/sign_url?{query}")
    assert status == 200, body
    status, body = _get(f"{signer_up.base}/webcast/rate_limits?apiKey={key[:-1]}x")
    assert status == 401, body
    # The first operator's link points at this stack's console, not at a default port.
    link = run_signer(env, "users", "create", "boss@example.com", "--admin", "--state", state)
    assert link.startswith(f"{signer_up.base}/console/accept?token="), link
    with urllib.request.urlopen(link, timeout=10) as page:
        assert page.status == 200
        assert "password" in page.read().decode().lower()
    # The banner says the same.
    assert "make key EMAIL=you@example.com" in signer_up.output
    assert "params: { apiKey: KEY }" in signer_up.output
    assert "signProviderFallbackHosts = []" in signer_up.output
    assert "SIGN_API_KEY=KEY" in signer_up.output
    assert f"{signer_up.base}/console/" in signer_up.output
    assert "users create you@example.com --admin" in signer_up.output


def test_a_stopped_stack_says_so_to_signer_keys(up_state: Path) -> None:
    (up_state / "stack.json").write_text(
        json.dumps({"database_url": f"postgresql://postgres@127.0.0.1:{_free_port()}/signer"})
    )
    done = subprocess.run(
        [sys.executable, "-m", "service", "keys", "list", "--state", str(up_state)],
        env=up_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "is it running? (`make run`)" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_taken_port_is_one_line_and_nothing_started(up_state: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "service", "up", "--port", str(port), "--state", str(up_state)],
            env=up_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"signer up: port {port} is in use; choose another with `make run PORT=9000` "
        "(or `signer up --port`)"
    ]
    assert done.stdout == ""  # no private server was started
    assert not (up_state / "redis").exists()
    assert not (up_state / "postgres").exists()


ROOT = Path(__file__).resolve().parents[2]


def _packages(mode: str) -> list[str]:
    done = subprocess.run(
        [str(ROOT / "scripts/ensure-system.sh"), "--dry-run", mode],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.split()


def _recipes(target: str) -> str:
    # -n prints what would run, -B as on a fresh clone (every stamp out of date).
    done = subprocess.run(
        ["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_run_installs_only_what_running_needs() -> None:
    run = _packages("run")
    assert set(run) == {"python3-venv", "chromium", "redis-server", "postgresql"}
    assert set(_packages("test")) >= {*run, "nodejs", "npm", "prometheus"}
    recipes = _recipes("run")
    assert "scripts/ensure-system.sh run" in recipes
    assert "pip install -q -e ." in recipes
    assert "[dev]" not in recipes
    assert "signer up --port 8080" in recipes
    tests = _recipes("test")
    assert "scripts/ensure-system.sh test" in tests
    assert "pip install -q -e '.[dev]'" in tests


def test_make_key_asks_for_an_email() -> None:
    done = subprocess.run(["make", "key"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "usage: make key EMAIL=you@example.com" in done.stderr
