"""Benchmark of the whole service over HTTP: private Redis, `signer worker`, `signer api`.

    python bench/stack_bench.py                      # the full run (about 2 minutes)
    python bench/stack_bench.py --single 200 --duration 5 --idle 3   # smoke

Measures, through bench/load.py:
  (a) one request at a time (`--single`, default 2000): p50/p99;
  (b) `--concurrency` (64) clients for `--duration` (30) s with 1 worker process:
      throughput and p99;
  (c) the same with 2 worker processes (the workers are restarted);
  (d) Redis commands per second of the idle stack, 1 API + 1 worker, over `--idle` (10) s.
It also reads the CPU time each part of the stack used during every phase, from /proc.
Prints a summary and writes JSON to bench/results/stack-<ts>.json (see BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from load import format_summary, run_load  # noqa: E402
from report import machine, write_results  # noqa: E402

from service.stack.services import free_port  # noqa: E402
from signer.browser.procs import descendants  # noqa: E402
from tests.postgres_server import postgres_server  # noqa: E402
from tests.redis_server import private_redis  # noqa: E402
from tests.service_stack import wait_for_workers  # noqa: E402

T = TypeVar("T")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- processes ---------------------------------------------------------------------------


def stop_process(process: subprocess.Popen[bytes] | None, timeout: float = 30.0) -> int | None:
    """SIGTERM, then wait; SIGKILL only if it will not stop. Returns the exit code."""
    if process is None:
        return None
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


class Stack:
    """One API process and one `signer worker --processes N` on a private Redis and a
    fresh Postgres database (usage rows are written as in production; rate limits are
    off: this measures the signing path, and `accounting_bench.py` their cost)."""

    def __init__(self, redis_url: str, logs: Path, database_url: str) -> None:
        self.redis_url = redis_url
        self.logs = logs
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = dict(
            os.environ,
            REDIS_URL=redis_url,
            DATABASE_URL=database_url,
            SIGNER_LIMIT_ENABLED="false",
            SIGNER_QUEUE_PREFIX=f"stackbench-{uuid.uuid4().hex[:8]}",
        )
        self.env.setdefault("SIGNER_ENGINE", "browser")
        self.api: subprocess.Popen[bytes] | None = None
        self.workers: subprocess.Popen[bytes] | None = None
        self.worker_processes = 0
        self.exit_codes: dict[str, int | None] = {}

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", "service", *args],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def start_api(self) -> None:
        self.api = self._spawn("api", "api", "--port", str(self.port))

    def start_workers(self, processes: int) -> float:
        """(Re)start the workers with `processes` processes; seconds until all are healthy."""
        if self.workers is not None:
            code = stop_process(self.workers)
            self.exit_codes[f"workers-{self.worker_processes}"] = code
            # Registry entries of stopped workers are removed on drain; make sure health
            # then counts only the new ones.
            wait_for_workers(self.base, 0)
        self.workers = self._spawn(f"workers-{processes}", "worker", "--processes", str(processes))
        self.worker_processes = processes
        return wait_for_workers(self.base, processes, timeout=90)

    def stop(self) -> None:
        self.exit_codes[f"workers-{self.worker_processes}"] = stop_process(self.workers)
        self.exit_codes["api"] = stop_process(self.api)
        self.workers = self.api = None


# --- CPU accounting from /proc -----------------------------------------------------------


def _tree(pid: int) -> list[int]:
    return [pid, *descendants(pid)]


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def _redis_pid(redis_url: str) -> int | None:
    # redis-server rewrites its title to `redis-server 127.0.0.1:PORT`.
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "redis-server" in text and (f":{port}" in text or f" {port}" in text):
            return int(cmdline.parent.name)
    return None


def cpu_snapshot(stack: Stack, redis_pid: int | None) -> dict[str, float]:
    """CPU seconds used so far by each part of the stack and by this process."""
    out: dict[str, float] = {"bench_client": sum(os.times()[:2])}
    if stack.api is not None:
        out["api"] = sum(_cpu_seconds(pid) for pid in _tree(stack.api.pid))
    if stack.workers is not None:
        python = chromium = 0.0
        for pid in _tree(stack.workers.pid):
            if _comm(pid).startswith("python"):
                python += _cpu_seconds(pid)
            else:
                chromium += _cpu_seconds(pid)
        out["worker_python"] = python
        out["chromium"] = chromium
    if redis_pid is not None:
        out["redis"] = _cpu_seconds(redis_pid)
    return out


def cpu_delta(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, Any]:
    """Cores used by each part over `seconds` (1.0 is one core busy all the time)."""
    return {
        name: round((after[name] - before.get(name, 0.0)) / seconds, 3)
        for name in after
        if name in before
    }


async def _measured(
    stack: Stack, redis_pid: int | None, run: Callable[[], Awaitable[T]]
) -> tuple[T, dict[str, Any]]:
    before = cpu_snapshot(stack, redis_pid)
    started = time.perf_counter()
    result = await run()
    elapsed = time.perf_counter() - started
    return result, cpu_delta(before, cpu_snapshot(stack, redis_pid), elapsed)


# --- Redis INFO over a raw socket ---------------------------------------------------------


class RedisProbe:
    """One plain connection sending INFO and nothing else, so its own cost is known."""

    def __init__(self, redis_url: str) -> None:
        host_port = redis_url.split("://", 1)[1].split("/")[0]
        host, port = host_port.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        self.calls = 0

    def close(self) -> None:
        self.sock.close()

    def info(self, section: str) -> dict[str, str]:
        self.sock.sendall(f"INFO {section}\r\n".encode())
        self.calls += 1
        data = b""
        while b"\r\n" not in data:
            data += self.sock.recv(65536)
        header, rest = data.split(b"\r\n", 1)
        if not header.startswith(b"$"):
            raise RuntimeError(f"unexpected INFO reply {header!r}")
        size = int(header[1:])
        while len(rest) < size + 2:
            rest += self.sock.recv(65536)
        fields: dict[str, str] = {}
        for line in rest[:size].decode().splitlines():
            if ":" in line and not line.startswith("#"):
                key, value = line.split(":", 1)
                fields[key] = value
        return fields

    def commands(self) -> tuple[int, dict[str, int]]:
        """total_commands_processed and the calls of each command (INFO commandstats)."""
        total = int(self.info("stats")["total_commands_processed"])
        per_command: dict[str, int] = {}
        for key, value in self.info("commandstats").items():
            calls = dict(part.split("=", 1) for part in value.split(","))["calls"]
            per_command[key.removeprefix("cmdstat_")] = int(calls)
        return total, per_command


def idle_redis_rate(redis_url: str, seconds: float) -> dict[str, Any]:
    """Commands per second Redis processed over `seconds`, minus this probe's own INFOs."""
    probe = RedisProbe(redis_url)
    try:
        # Calibrate: what one reading (two INFOs) adds to total_commands_processed as seen
        # by the next reading; subtracted below, so the figure is of the stack alone.
        first, _ = probe.commands()
        second, _ = probe.commands()
        own_per_reading = second - first
        total_before, per_before = probe.commands()
        started = time.monotonic()
        time.sleep(seconds)
        total_after, per_after = probe.commands()
        elapsed = time.monotonic() - started
    finally:
        probe.close()
    stack_commands = total_after - total_before - own_per_reading
    per_command = {
        name: round((calls - per_before.get(name, 0)) / elapsed, 2)
        for name, calls in sorted(per_after.items())
        if name != "info" and calls - per_before.get(name, 0) > 0
    }
    return {
        "seconds": round(elapsed, 3),
        "commands": stack_commands,
        "commands_per_s": round(stack_commands / elapsed, 2),
        "probe_commands_per_reading": own_per_reading,
        "per_command_per_s": per_command,
    }


# --- the benchmark ------------------------------------------------------------------------


async def _load_phase(
    stack: Stack,
    redis_pid: int | None,
    *,
    requests: int | None,
    concurrency: int,
    duration: float | None,
    route: str,
    offset: int,
) -> dict[str, Any]:
    result, cpu = await _measured(
        stack,
        redis_pid,
        lambda: run_load(
            stack.base,
            requests=requests,
            concurrency=concurrency,
            duration=duration,
            route="post" if route == "post" else "get",
            start_index=offset,
        ),
    )
    summary = result.summary()
    summary["cpu_cores"] = cpu
    print(format_summary(summary))
    print(f"  CPU cores used: {cpu}")
    return summary


async def _warm(stack: Stack, route: str, offset: int) -> None:
    # Warm the contexts, JIT and connection pools, at both load shapes; not measured.
    await run_load(
        stack.base,
        requests=300,
        concurrency=1,
        route="post" if route == "post" else "get",
        start_index=offset,
    )
    await run_load(
        stack.base,
        requests=None,
        duration=3,
        concurrency=64,
        route="post" if route == "post" else "get",
        start_index=offset + 1_000_000,
    )


async def _bench(args: argparse.Namespace, stack: Stack, redis_pid: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    stack.start_api()
    out["workers_1_ready_s"] = round(stack.start_workers(1), 2)
    print(f"stack up (1 worker) in {out['workers_1_ready_s']} s at {stack.base}")

    # (d) first, while nothing has run yet but the health polls have stopped.
    await asyncio.sleep(args.settle)
    if args.idle > 0:
        out["idle_redis"] = await asyncio.to_thread(idle_redis_rate, stack.redis_url, args.idle)
        print(f"(d) idle Redis: {out['idle_redis']}")

    await _warm(stack, args.route, 10_000_000)
    print("(a) one request at a time")
    out["single"] = await _load_phase(
        stack,
        redis_pid,
        requests=args.single,
        concurrency=1,
        duration=None,
        route=args.route,
        offset=0,
    )
    print(f"(b) {args.concurrency} clients for {args.duration} s, 1 worker process")
    out["concurrent_1_worker"] = await _load_phase(
        stack,
        redis_pid,
        requests=None,
        concurrency=args.concurrency,
        duration=args.duration,
        route=args.route,
        offset=20_000_000,
    )

    out["workers_2_ready_s"] = round(stack.start_workers(2), 2)
    print(f"workers restarted with 2 processes in {out['workers_2_ready_s']} s")
    await _warm(stack, args.route, 30_000_000)
    print(f"(c) {args.concurrency} clients for {args.duration} s, 2 worker processes")
    out["concurrent_2_workers"] = await _load_phase(
        stack,
        redis_pid,
        requests=None,
        concurrency=args.concurrency,
        duration=args.duration,
        route=args.route,
        offset=40_000_000,
    )
    if args.single_2 > 0:
        print("(a') one request at a time, 2 worker processes")
        out["single_2_workers"] = await _load_phase(
            stack,
            redis_pid,
            requests=args.single_2,
            concurrency=1,
            duration=None,
            route=args.route,
            offset=50_000_000,
        )
    return out


def _verdicts(out: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    single = out["single"]["ok_latency"]
    rows.append(
        (
            "one at a time p50 <= 3 ms",
            f"{single['p50_ms']:.2f} ms",
            "met" if single["p50_ms"] <= 3 else "missed",
        )
    )
    rows.append(
        (
            "one at a time p99 <= 10 ms",
            f"{single['p99_ms']:.2f} ms",
            "met" if single["p99_ms"] <= 10 else "missed",
        )
    )
    one = out["concurrent_1_worker"]
    rows.append(
        (
            "64 clients >= 1,000 signed/s (1 worker)",
            f"{one['ok_throughput_rps']:.0f}/s",
            "met" if one["ok_throughput_rps"] >= 1000 else "missed",
        )
    )
    rows.append(
        (
            "64 clients p99 <= 50 ms (1 worker)",
            f"{one['ok_latency']['p99_ms']:.1f} ms",
            "met" if one["ok_latency"]["p99_ms"] <= 50 else "missed",
        )
    )
    two = out["concurrent_2_workers"]
    ratio = two["ok_throughput_rps"] / max(one["ok_throughput_rps"], 1e-9)
    rows.append(
        (
            "2 worker processes vs 1 (64 clients)",
            f"{two['ok_throughput_rps']:.0f}/s vs {one['ok_throughput_rps']:.0f}/s "
            f"(x{ratio:.2f}), p99 {two['ok_latency']['p99_ms']:.1f} ms",
            "reported",
        )
    )
    if "idle_redis" in out:
        rate = out["idle_redis"]["commands_per_s"]
        rows.append(
            (
                "idle Redis commands/s, 1 API + 1 worker (<= 20/s each)",
                f"{rate:.2f}/s",
                "met" if rate <= 40 else "missed",
            )
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--single", type=int, default=2000, help="requests one at a time")
    parser.add_argument(
        "--single-2", type=int, default=0, help="also one at a time with 2 workers (default: skip)"
    )
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of (b) and (c)")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of (d); 0 skips it")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before (d)")
    parser.add_argument("--route", choices=["get", "post"], default="get")
    args = parser.parse_args()

    started = datetime.now(UTC)
    report: dict[str, Any] = {
        "started": started.isoformat(),
        "machine": machine(),
        "args": vars(args),
    }
    logs = Path(tempfile.mkdtemp(prefix="stack-bench-"))
    with private_redis() as redis_url, postgres_server() as postgres:
        database_url = asyncio.run(postgres.fresh_database())
        stack = Stack(redis_url, logs, database_url)
        redis_pid = _redis_pid(redis_url)
        try:
            report.update(asyncio.run(_bench(args, stack, redis_pid)))
        finally:
            stack.stop()
            report["exit_codes"] = stack.exit_codes
            report["logs"] = str(logs)
            asyncio.run(postgres.drop(database_url))
    report["loadavg_at_end"] = os.getloadavg()
    report["verdicts"] = [
        {"objective": o, "measured": m, "verdict": v} for o, m, v in _verdicts(report)
    ]
    print("\nobjective | measured | verdict")
    for objective, measured, verdict in _verdicts(report):
        print(f"{objective} | {measured} | {verdict}")
    print(f"exit codes: {report['exit_codes']}  (logs in {logs})")
    print(f"written to {write_results('stack', report, started.timestamp())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
