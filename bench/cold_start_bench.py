"""Cold start: `signer up` on an existing state folder, to its first signature.

    python bench/cold_start_bench.py [--runs 5] [--workers 1]

Runs `signer up` once on a fresh state folder (initdb, first migration, Chromium's first
start: not measured), stops it, then `--runs` times: starts it again on the same folder and
times, from the process's start, the first `POST /signature` answered 200 (polled every
20 ms; a connection refused or a 503 while workers warm counts as not yet), and when it
said its Redis, its Postgres and the API were up, and its banner. Rate limits are off:
the polling would meet the anonymous budget. Each run is stopped with SIGINT, as Ctrl-C
does, and waited for.
Prints the figures and writes JSON to bench/results/cold-start-<ts>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from report import machine, write_results  # noqa: E402
from sign_bench import URL  # noqa: E402

from service.stack.services import free_port  # noqa: E402

POLL_SECONDS = 0.02
START_TIMEOUT = 120.0
# What `signer up` prints as it goes, each timed from its start.
PHASES = (
    ("private Redis on", "redis_s"),
    ("private Postgres on", "postgres_s"),
    ("signer api listening", "api_listening_s"),
    ("signer is up:", "banner_s"),
)
TAIL: list[str] = []  # the last lines `signer up` printed, for a failure's message


def _signed(base: str) -> bool:
    request = urllib.request.Request(
        f"{base}/signature", data=URL.encode(), headers={"Content-Type": "text/plain"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status == 200 and bool(json.loads(response.read()).get("data"))
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _start(state: Path, port: int, workers: int) -> tuple[subprocess.Popen[str], dict[str, float]]:
    # Its own Redis and Postgres in the state folder; limits off, so the polling is never
    # refused by the anonymous budget.
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env["SIGNER_LIMIT_ENABLED"] = "false"
    command = [sys.executable, "-m", "service", "up", "--port", str(port)]
    command += ["--workers", str(workers), "--state", str(state)]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    marks: dict[str, float] = {}
    started = time.monotonic()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            TAIL.append(line.rstrip())
            del TAIL[:-20]
            for prefix, mark in PHASES:
                if line.startswith(prefix) and mark not in marks:
                    marks[mark] = time.monotonic() - started

    threading.Thread(target=read, daemon=True).start()
    marks["started"] = started
    return process, marks


def _stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _one(state: Path, port: int, workers: int) -> dict[str, float]:
    process, marks = _start(state, port, workers)
    base = f"http://127.0.0.1:{port}"
    try:
        while not _signed(base):
            if process.poll() is not None:
                time.sleep(0.2)  # its last lines
                said = "\n".join(TAIL)
                raise SystemExit(f"signer up exited with {process.returncode}:\n{said}")
            if time.monotonic() - marks["started"] > START_TIMEOUT:
                raise SystemExit(f"no signature within {START_TIMEOUT:g} s")
            time.sleep(POLL_SECONDS)
        first = time.monotonic() - marks["started"]
        time.sleep(0.5)  # the banner follows /health by a poll
        phases = {mark: round(marks[mark], 3) for _, mark in PHASES if mark in marks}
        return {"first_signature_s": round(first, 3), **phases}
    finally:
        _stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    started_at = time.time()
    with tempfile.TemporaryDirectory(prefix="cold-start-") as folder:
        # The embedded Postgres runs as the postgres user, who must enter the folder.
        Path(folder).chmod(0o755)
        state, port = Path(folder) / "state", free_port()
        print("first start on a fresh state folder (not measured) ...", flush=True)
        _one(state, port, args.workers)
        runs = []
        for index in range(args.runs):
            run = _one(state, port, args.workers)
            print(f"run {index + 1}: {run}", flush=True)
            runs.append(run)
    firsts = [run["first_signature_s"] for run in runs]
    report: dict[str, Any] = {
        "runs": runs,
        "first_signature_median_s": statistics.median(firsts),
        "first_signature_max_s": max(firsts),
        "machine": machine(),
        "settings": vars(args),
    }
    print(
        f"cold start to the first signature: median {report['first_signature_median_s']:.2f} s,"
        f" max {report['first_signature_max_s']:.2f} s over {len(runs)} runs"
    )
    print(f"written to {write_results('cold-start', report, started_at)}")


if __name__ == "__main__":
    main()
