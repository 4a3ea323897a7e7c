"""Faults under load (issues 9 and 15): what each costs the callers, in counts.

    python bench/fault_bench.py

Three stacks in turn, each with 16 clients signing one request after another (default
5 s deadline): Redis killed and started again on the same port after 2 s (native
engine, one worker), one of two worker processes killed (native engine), Chromium's main
process killed (browser engine, one worker). For each: requests, 200s, 503s with
Retry-After, other answers, answers later than deadline + 1 s, and recovery (seconds
from the fault's end to the end of the last unsigned answer). The scenarios are those
of tests/hostile/test_faults.py (tests.hostile.faults), which asserts on the same
counts. About 90 s in all.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import os  # noqa: E402

from report import machine, write_results  # noqa: E402

from tests.hostile.faults import (  # noqa: E402
    chromium_pid,
    process_kill,
    redis_restart,
    worker_pids,
)
from tests.restartable_redis import restartable_redis  # noqa: E402
from tests.service_stack import service_stack  # noqa: E402


def run_all() -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with restartable_redis() as server:
        os.environ["REDIS_URL"] = f"redis://127.0.0.1:{server.port}/0"
        try:
            with service_stack(processes=1) as stack:
                figures["redis_restart"] = asyncio.run(redis_restart(stack.base, server)).figures()
        finally:
            del os.environ["REDIS_URL"]
    with service_stack(processes=2) as stack:
        victim = min(worker_pids(stack.workers.pid))
        figures["worker_kill"] = asyncio.run(process_kill(stack.base, lambda: victim)).figures()
    with service_stack(processes=1, engine="browser") as stack:
        run = asyncio.run(process_kill(stack.base, lambda: chromium_pid(stack.workers.pid)))
        figures["chromium_kill"] = run.figures()
    return figures


def main() -> int:
    started = time.time()
    report = {"machine": machine(), "faults": run_all()}
    columns = ("requests", "ok_200", "unavailable_503", "other", "late", "recovery_s")
    print(f"{'fault':<15}" + "".join(f"{c:>17}" for c in columns))
    for name, row in report["faults"].items():
        print(f"{name:<15}" + "".join(f"{row[c]:>17}" for c in columns))
    print(json.dumps(report["faults"]))
    print(f"written to {write_results('faults', report, started)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
