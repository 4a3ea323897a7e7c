"""`signer up` killed outright (SIGKILL: the OOM killer, a crashed session) and started
again on the same state folder: it clears what the first run left and comes up healthy,
on the same ports, with the keys issued before.

What "nothing of the first run is left" means here: no process of the first run is
running any more (every pid of its tree, taken just before the kill, is gone), and every
process that carries the state folder's tag or runs in its servers' folders belongs to the
second run's tree. Nothing is adopted: the second run starts its own Postgres and Redis
on the data the first one left (Postgres replays its WAL; Redis reads its append-only file).
"""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.stack.recovery import stack_processes
from service.stack.services import free_port
from signer.browser.procs import descendants
from tests.service.test_up import UpRun, fresh_state, start_up, up_env
from tests.service_stack import get_json, run_signer
from tests.signer.conftest import FETCH_URL

LOAD_THREADS = 4
LOAD_REQUESTS = 400  # at most, all threads together: the kill ends them long before
HEALTHY_WITHIN = 30.0  # the issue's "healthy within 10 s", with room for a loaded machine


@pytest.fixture
def up_state() -> Iterator[Path]:
    with fresh_state() as folder:
        yield folder


def _issue_key(state: Path) -> str:
    env, where = up_env(), ["--state", str(state)]
    run_signer(
        env, "users", "create", "bot@example.com", "--tier", "api_key", "--if-missing", *where
    )
    return run_signer(env, "keys", "create", "--user", "bot@example.com", "--name", "bot", *where)


def _sign_url(base: str, key: str, cursor: int) -> str:
    query = urllib.parse.urlencode({"url": f"{FETCH_URL}&cursor={cursor}", "apiKey": key})
    return f"{base}/webcast/sign_url?{query}"


class Load:
    """A few threads signing with a key until told to stop or out of requests; counts
    answers by status (`error` for connections the kill cut)."""

    def __init__(self, base: str, key: str) -> None:
        self.base, self.key = base, key
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._left = LOAD_REQUESTS
        self._threads = [threading.Thread(target=self._run) for _ in range(LOAD_THREADS)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        with self._lock:
            self._left = 0
        for thread in self._threads:
            thread.join(timeout=30)

    def answered(self) -> int:
        with self._lock:
            return self.counts.get("200", 0)

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._left <= 0:
                    return
                self._left -= 1
                cursor = self._left
            try:
                with urllib.request.urlopen(_sign_url(self.base, self.key, cursor), timeout=5) as r:
                    outcome = str(r.status)
            except urllib.error.HTTPError as error:
                outcome = str(error.code)
            except OSError:
                outcome = "error"
            with self._lock:
                self.counts[outcome] = self.counts.get(outcome, 0) + 1


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _started_ticks(pid: int) -> int:
    """When `pid` started, in clock ticks since boot (proc(5), field 22)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def _kill_mid_load(first: UpRun, key: str) -> tuple[list[int], dict[str, int]]:
    """SIGKILL the first `signer up` while requests are in flight; its tree's pids."""
    with Load(first.base, key) as load:
        deadline = time.monotonic() + 30
        while load.answered() < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert load.answered() >= 20, load.counts
        # Its tree, and what detached itself from it (Chromium's crash handler) but
        # carries the state folder's tag.
        tree = [first.process.pid, *descendants(first.process.pid), *stack_processes(first.state)]
        first.process.send_signal(signal.SIGKILL)
        first.process.wait()
    return tree, load.counts


def _assert_only_second_run_left(state: Path, first_tree: list[int], second: UpRun) -> None:
    left = [pid for pid in first_tree if _running(pid)]
    assert not left, [(pid, _cmdline(pid)) for pid in left]
    # The second run's: its tree, and what detached itself since it started.
    second_tree = {second.process.pid, *descendants(second.process.pid)}
    strays = {
        pid: kind
        for pid, kind in stack_processes(state).items()
        if pid not in second_tree and _started_ticks(pid) < second.started_ticks
    }
    assert not strays, {pid: (kind, _cmdline(pid)) for pid, kind in strays.items()}


def _recover(state: Path, port: int, first: UpRun, **env: str) -> None:
    key = _issue_key(state)
    tree, counts = _kill_mid_load(first, key)
    assert counts.get("200", 0) >= 20, counts

    started = time.monotonic()
    second = start_up(state, port, up_env(**env))
    print(second.output)  # shown on failure: what the second run found and did
    try:
        # start_up returns once the banner is out, which `signer up` prints only after
        # /health reports every worker.
        assert time.monotonic() - started < HEALTHY_WITHIN
        status, health = get_json(f"{second.base}/health")
        assert status == 200, health
        # The ports a user copied are still right.
        assert (second.redis_port, second.postgres_port) == (first.redis_port, first.postgres_port)
        # The key issued before the kill still signs.
        with urllib.request.urlopen(_sign_url(second.base, key, 1), timeout=10) as response:
            assert response.status == 200
            assert "X-Bogus=" in json.loads(response.read())["signedUrl"]
        _assert_only_second_run_left(state, tree, second)
    finally:
        second.process.send_signal(signal.SIGINT)
        assert second.process.wait(timeout=60) == 0
    assert not stack_processes(state)


def test_up_after_sigkill_mid_load_is_healthy_with_its_keys(up_state: Path) -> None:
    port = free_port()
    first = start_up(up_state, port, up_env())
    try:
        _recover(up_state, port, first)
    finally:
        if first.process.poll() is None:
            first.process.kill()


@pytest.mark.browser
def test_up_with_the_browser_starts_quietly_and_leaves_no_chromium(up_state: Path) -> None:
    port = free_port()
    browser = {"SIGNER_ENGINE": "browser", "SIGNER_CONTEXTS": "1"}
    log = up_state.parent / f"{up_state.name}.stderr"
    with log.open("w+") as stderr:
        first = start_up(up_state, port, up_env(**browser), stderr=stderr)
        try:
            chromium = [p for p in descendants(first.process.pid) if "chrom" in _cmdline(p)]
            assert chromium, "the browser engine runs Chromium"
            stderr.seek(0)
            logged = [json.loads(line) for line in stderr if line.startswith("{")]
            # The workers warm while `signer up` polls /health: its 503s are a state,
            # logged at info, never as warnings.
            polls = [e for e in logged if e.get("route") == "health" and e.get("status") == 503]
            warnings = [e for e in logged if e.get("level") in ("warning", "error")]
            assert not warnings, warnings
            _recover(up_state, port, first, **browser)
        finally:
            if first.process.poll() is None:
                first.process.kill()
    log.unlink()
    assert all(not _running(pid) for pid in chromium)
    assert all(e["level"] == "info" for e in polls)
