"""Faults under load, shared by tests/hostile/test_faults.py (which asserts counts) and
bench/fault_bench.py (which prints the figures): Redis killed and started again on the
same port, a worker process killed, Chromium killed, each while clients sign.

Every client signs one request after another with the default deadline; each answer is
kept with when it was asked, how long it took, its status and its `Retry-After`.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from signer.browser.procs import children, descendants
from tests.restartable_redis import RestartableRedis
from tests.signer.conftest import FETCH_URL

__all__ = [
    "DEADLINE",
    "Answer",
    "FaultRun",
    "chromium_pid",
    "load_during",
    "process_kill",
    "redis_restart",
    "worker_pids",
]

DEADLINE = 5.0  # the queue's default deadline, seconds (QueueSettings.default_deadline)
LATE_MARGIN = 1.0  # an answer this long past its deadline counts as late
CLIENTS = 16


@dataclass(frozen=True, slots=True)
class Answer:
    started: float  # monotonic seconds
    elapsed: float
    status: int  # 0: no HTTP answer at all (the client gave up or the connection broke)
    retry_after: str | None


@dataclass
class FaultRun:
    """The answers of one run, and when its fault began and ended (monotonic seconds)."""

    answers: list[Answer] = field(default_factory=list)
    fault_at: float = 0.0
    fault_end: float = 0.0

    @property
    def ok(self) -> int:
        return sum(1 for a in self.answers if a.status == 200)

    @property
    def unavailable(self) -> int:
        """503s that say when to come back: what a fault may cost a caller."""
        return sum(1 for a in self.answers if a.status == 503 and a.retry_after)

    @property
    def others(self) -> list[Answer]:
        """Answers neither 200 nor 503 with Retry-After (hangs, 500s, bare 503s)."""
        return [
            a for a in self.answers if a.status != 200 and not (a.status == 503 and a.retry_after)
        ]

    @property
    def late(self) -> int:
        return sum(1 for a in self.answers if a.elapsed > DEADLINE + LATE_MARGIN)

    def failed_after(self, seconds: float) -> int:
        """Requests asked `seconds` or more after the fault ended and not signed."""
        since = self.fault_end + seconds
        return sum(1 for a in self.answers if a.started >= since and a.status != 200)

    @property
    def recovery_seconds(self) -> float:
        """From the fault's end to the end of the last unsigned answer after it (0: none)."""
        ends = [
            a.started + a.elapsed
            for a in self.answers
            if a.status != 200 and a.started + a.elapsed >= self.fault_end
        ]
        return round(max(ends) - self.fault_end, 2) if ends else 0.0

    def figures(self) -> dict[str, float | int]:
        return {
            "requests": len(self.answers),
            "ok_200": self.ok,
            "unavailable_503": self.unavailable,
            "other": len(self.others),
            "late": self.late,
            "recovery_s": self.recovery_seconds,
        }


async def load_during(
    base: str,
    seconds: float,
    fault: Callable[[FaultRun], Awaitable[None]],
    clients: int = CLIENTS,
) -> FaultRun:
    """`clients` clients sign for `seconds` while `fault(run)` runs (it sets the run's
    `fault_at` and `fault_end`); every answer, in the run returned."""
    run = FaultRun()
    counter = itertools.count()
    stop_at = time.monotonic() + seconds
    # Well past the deadline: a hang shows as a late answer rather than a client timeout.
    timeout = aiohttp.ClientTimeout(total=DEADLINE * 4)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def client() -> None:
            while time.monotonic() < stop_at:
                url = f"{FETCH_URL}&cursor_id={next(counter)}"
                started = time.monotonic()
                status, retry_after = 0, None
                try:
                    async with session.post(f"{base}/api/signature", json={"url": url}) as got:
                        await got.read()
                        status, retry_after = got.status, got.headers.get("Retry-After")
                except (aiohttp.ClientError, TimeoutError):
                    await asyncio.sleep(0.05)  # no answer at all: counted in `others`
                run.answers.append(Answer(started, time.monotonic() - started, status, retry_after))

        await asyncio.gather(fault(run), *(client() for _ in range(clients)))
    return run


def worker_pids(supervisor: int) -> list[int]:
    """The worker processes of `signer worker --processes N` (not the resource tracker)."""
    found = []
    for pid in children(supervisor):
        try:
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            continue
    return found


def chromium_pid(root: int) -> int:
    """The main Chromium process of the pool below `root` (renderers carry `--type=`)."""
    for pid in descendants(root):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        pool = any(a.startswith(b"--signer-pool=") for a in args)
        if pool and not any(a.startswith(b"--type=") for a in args):
            return pid
    raise AssertionError(f"no Chromium below process {root}")


async def redis_restart(
    base: str, server: RestartableRedis, *, before: float = 3.0, down: float = 2.0
) -> FaultRun:
    """Load for 12 s; `before` s in, Redis is killed, and `down` s later started again."""

    async def fault(run: FaultRun) -> None:
        await asyncio.sleep(before)
        run.fault_at = time.monotonic()
        server.kill()
        await asyncio.sleep(down)
        server.revive()
        run.fault_end = time.monotonic()

    return await load_during(base, 12, fault)


async def process_kill(base: str, pid: Callable[[], int], *, before: float = 2.0) -> FaultRun:
    """Load for 8 s; `before` s in, the process `pid()` names then is SIGKILLed."""

    async def fault(run: FaultRun) -> None:
        await asyncio.sleep(before)
        run.fault_at = run.fault_end = time.monotonic()
        os.kill(pid(), signal.SIGKILL)

    return await load_during(base, 8, fault)
