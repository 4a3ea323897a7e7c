"""The whole stack under `wrk`: signatures a second, latency, CPU and memory by process kind.

    python bench/wrk_bench.py                          # 3 rounds of 10 s at 64 and at 1 connection
    python bench/wrk_bench.py --rounds 5 --duration 30
    python bench/wrk_bench.py --env SIGNER_CONTEXTS=2  # settings for every process of the stack

Issue 13 compares stacks with one neutral load generator, so this one is `wrk` (installed
from Debian with apt-get when missing; the bench runs as root). The stack is started as
users run it: a private Redis and a fresh Postgres database, `signer api` and `signer
worker --processes 1` with the browser engine, rate limits on, and a key of the `api_key`
tier without limits of its own (so nothing is refused, but admission does its real work).
Every request is `POST /signature` with a distinct webcast URL of about 900 characters
(the Lua script counts per thread) and the key in `X-Api-Key`.

Measured:
  - PSS (from /proc/<pid>/smaps_rollup) of the API, the worker's Python, every Chromium
    process (renderers counted apart) and Playwright's Node driver (in a stack from
    before the worker drove Chromium itself), warm and again
    after the load; Redis and Postgres are left out;
  - per round, `--connections` (64) connections for `--duration` s, then 1 connection for
    as long: signatures a second (2xx answers), latency p50/p99 (wrk `--latency`), and
    from /proc/stat the machine's CPU time per signature and the cores busy, plus the
    stack's own CPU (its processes, Redis, Postgres and wrk) per signature, which other
    users of the machine do not disturb.
Medians over `--rounds` (3) are printed as issue 13's table; the JSON goes to
bench/results/wrk-<ts>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from report import machine, write_results  # noqa: E402
from sign_bench import URL  # noqa: E402
from stack_bench import Stack, _redis_pid  # noqa: E402

from signer.browser.procs import cmdline, descendants  # noqa: E402
from tests.postgres_server import postgres_server  # noqa: E402
from tests.redis_server import private_redis  # noqa: E402
from tests.service_stack import issue_key  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# The webcast URL of every request, about 900 characters once the counter is added: the
# bench's im/fetch URL with the parameters a LIVE client adds (device, cursor, msToken).
_INTERNAL_EXT = (
    "fetch_time%3A1733241600000%7Cstart_time%3A0%7Cack_ids%3A%7Cflag%3A0"
    "%7Cseq%3A1%7Cnext_cursor%3A1733241600000_7444555666777888999_1_1"
)
BASE_URL = (
    URL.replace("&internal_ext=&", f"&internal_ext={_INTERNAL_EXT}&").replace("&cursor=&", "&")
    + "&device_id=7312345678901234568&user_is_login=false&version_code=180800"
    + "&live_id=12&did_rule=3&resp_content_type=protobuf&last_rtt=0&identity=audience"
    + "&msToken=G3C-3f8JVeDj9OTvvxfaJ_NppXWzVflwP1dOclpUOmAv4WmejB8kFwndJufXBBrXbeWNqzJgL8"
    + "iF5zn33da-2c1SBaq7ZTm8ZqWkiDJd3xxQ9bD2dPkLqoAZs_Xr-kh4e6TMNuJQjhXRkY1fz"
)


LUA = r"""
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  thread_id = tonumber(wrk.thread:get("tid")) or 0
  prefix = args[1] or "r"
end

request = function()
  counter = counter + 1
  local cursor = prefix .. '-' .. thread_id .. '-' .. counter
  local body = '{"url":"' .. BASE .. '&cursor=' .. cursor .. '"}'
  return wrk.format("POST", "/signature", HEADERS, body)
end

done = function(summary, latency, requests)
  local out = {
    duration_us = summary.duration,
    requests = summary.requests,
    bytes = summary.bytes,
    connect_errors = summary.errors.connect,
    read_errors = summary.errors.read,
    write_errors = summary.errors.write,
    non_2xx = summary.errors.status,
    timeouts = summary.errors.timeout,
    p50_us = latency:percentile(50.0),
    p90_us = latency:percentile(90.0),
    p99_us = latency:percentile(99.0),
    max_us = latency.max,
    mean_us = latency.mean,
  }
  local parts = {}
  for k, v in pairs(out) do table.insert(parts, string.format('"%s": %s', k, v)) end
  io.write("WRK_JSON {" .. table.concat(parts, ", ") .. "}\n")
end
"""


def ensure_wrk() -> str:
    """The path of `wrk`, installed from Debian when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk missing: apt-get install wrk")
    install = ["apt-get", "install", "-y", "--no-install-recommends", "wrk"]
    if subprocess.run(install, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], check=True)
        subprocess.run(install, check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk could not be installed")
    return found


def lua_script(folder: Path, api_key: str) -> Path:
    base = BASE_URL  # the script appends `&cursor=<round>-<thread>-<count>`
    headers = '{["Content-Type"] = "application/json", ["X-Api-Key"] = "' + api_key + '"}'
    script = folder / "signature.lua"
    script.write_text(f"BASE = {json.dumps(base)}\nHEADERS = {headers}\n{LUA}")
    return script


# --- /proc -------------------------------------------------------------------------------


def _memory_kib(pid: int) -> tuple[int, int]:
    """(PSS, its anonymous and shared-memory part) of `pid` in KiB.

    PSS splits a page among every process that maps it, and file pages (Chromium's
    binary, shared libraries) are mapped by other users' Chromium and Python too: while
    another agent runs a browser our PSS falls. Anonymous and shmem pages are shared only
    within our own tree (fork, Chromium's IPC), so that part compares across runs."""
    pss = anon = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
            elif line.startswith(("Pss_Anon:", "Pss_Shmem:")):
                anon += int(line.split()[1])
    except OSError:
        pass
    return pss, anon


def _kind(pid: int, tree: str) -> str:
    # Chromium's helpers rewrite their command line as one string joined by spaces.
    args = [part for arg in cmdline(pid) for part in arg.split(" ")]
    if not args:
        return "gone"
    program = Path(args[0]).name
    if "python" in program:
        return tree
    if program == "node" or any("playwright" in a and a.endswith("cli.js") for a in args):
        return "driver"
    kind = next((a.split("=", 1)[1] for a in args if a.startswith("--type=")), "")
    if kind == "renderer":
        return "chromium_renderer"
    if kind:
        return f"chromium_{kind}"
    if "chrom" in program:
        return "chromium_browser"
    return f"other_{program}"


def stack_processes(stack: Stack) -> dict[int, str]:
    """Every process of the stack (API and worker trees) and its kind."""
    found: dict[int, str] = {}
    for tree, process in (("api", stack.api), ("worker_python", stack.workers)):
        if process is None:
            continue
        for pid in [process.pid, *descendants(process.pid)]:
            found[pid] = _kind(pid, tree)
    return found


def _foreign_chromium(ours: set[int]) -> int:
    """Chromium processes on the machine that are not the stack's (they share its pages)."""
    count = 0
    for comm in Path("/proc").glob("[0-9]*/comm"):
        if "chrom" in _safe_read(comm) and int(comm.parent.name) not in ours:
            count += 1
    return count


def memory(stack: Stack) -> dict[str, Any]:
    """PSS and its anonymous part in MB by kind of process, their counts, and the totals."""
    pss: dict[str, float] = {}
    anon: dict[str, float] = {}
    counts: dict[str, int] = {}
    processes = stack_processes(stack)
    for pid, kind in processes.items():
        shared, private = _memory_kib(pid)
        pss[kind] = pss.get(kind, 0.0) + shared / 1024
        anon[kind] = anon.get(kind, 0.0) + private / 1024
        counts[kind] = counts.get(kind, 0) + 1
    chromium = sum(v for k, v in pss.items() if k.startswith("chromium"))
    return {
        "total_mb": round(sum(pss.values()), 1),
        "total_anon_mb": round(sum(anon.values()), 1),
        "chromium_mb": round(chromium, 1),
        "by_kind_mb": {k: round(v, 1) for k, v in sorted(pss.items())},
        "by_kind_anon_mb": {k: round(v, 1) for k, v in sorted(anon.items())},
        "processes": dict(sorted(counts.items())),
        "foreign_chromium_processes": _foreign_chromium(set(processes)),
    }


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already inside user
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


def _process_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def stack_cpu(pids: list[int]) -> float:
    return sum(_process_cpu(pid) for pid in pids)


def _postgres_pids() -> list[int]:
    # The private server this bench started (a child of ours), not other users' Postgres.
    return [
        pid
        for pid in descendants(os.getpid())
        if _safe_read(Path(f"/proc/{pid}/comm")).startswith("postgres")
    ]


def _safe_read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


# --- wrk -----------------------------------------------------------------------------------


def run_wrk(
    wrk: str,
    base: str,
    script: Path,
    *,
    connections: int,
    threads: int,
    duration: float,
    prefix: str,
    cpu_pids: list[int],
) -> dict[str, Any]:
    command = [
        wrk,
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(script),
        base,
        "--",
        prefix,
    ]
    busy0, total0 = machine_cpu()
    ours0 = stack_cpu(cpu_pids)
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, rusage = os.wait4(process.pid, 0)  # wrk's own CPU, from its rusage
    process.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.monotonic() - started
    busy1, total1 = machine_cpu()
    ours1 = stack_cpu(cpu_pids) + rusage.ru_utime + rusage.ru_stime
    line = next((x for x in output.splitlines() if x.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{output}")
    raw = json.loads(line.removeprefix("WRK_JSON "))
    seconds = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    signed = raw["requests"] - raw["non_2xx"]
    busy = busy1 - busy0
    cores = os.cpu_count() or 1
    return {
        "connections": connections,
        "seconds": round(seconds, 3),
        "requests": raw["requests"],
        "signed": signed,
        "non_2xx": raw["non_2xx"],
        "socket_errors": errors,
        "signatures_per_s": round(signed / seconds, 1),
        "p50_ms": round(raw["p50_us"] / 1000, 3),
        "p90_ms": round(raw["p90_us"] / 1000, 3),
        "p99_ms": round(raw["p99_us"] / 1000, 3),
        "max_ms": round(raw["max_us"] / 1000, 3),
        "machine_cpu_ms_per_signature": round(busy / max(signed, 1) * 1000, 3),
        "cores_busy": round(busy / elapsed, 3),
        "cores_busy_of": cores,
        "machine_share_busy": round(busy / (total1 - total0), 3),
        "stack_cpu_ms_per_signature": round((ours1 - ours0) / max(signed, 1) * 1000, 3),
        "stack_cores": round((ours1 - ours0) / elapsed, 3),
        "wrk_cpu_s": round(rusage.ru_utime + rusage.ru_stime, 3),
    }


def _median(rounds: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(float(r[key]) for r in rounds), 3)


def table(report: dict[str, Any]) -> str:
    many = report["rounds_many"]
    one = report["rounds_one"] or [{"p50_ms": 0.0, "p99_ms": 0.0}]
    warm = report["memory_warm"]
    after = report["memory_after"]
    c = report["args"]["connections"]
    rows = [
        ("| | ours |", ""),
        ("| --- | --- |", ""),
        (f"| {c} clients, signatures/s | {_median(many, 'signatures_per_s'):,.0f} |", ""),
        (
            f"| {c} clients, p50 / p99 | {_median(many, 'p50_ms'):.1f} / "
            f"{_median(many, 'p99_ms'):.1f} ms |",
            "",
        ),
        (
            f"| 1 client, p50 / p99 | {_median(one, 'p50_ms'):.2f} / "
            f"{_median(one, 'p99_ms'):.2f} ms |",
            "",
        ),
        (
            f"| whole process tree, warm | {warm['total_mb']:.0f} MB PSS "
            f"({warm['total_anon_mb']:.0f} MB anon) |",
            "",
        ),
        (
            f"| after the load | {after['total_mb']:.0f} MB PSS "
            f"({after['total_anon_mb']:.0f} MB anon) |",
            "",
        ),
        (
            f"| machine CPU per signature at {c} clients | "
            f"{_median(many, 'machine_cpu_ms_per_signature'):.2f} ms |",
            "",
        ),
        (
            f"| stack CPU per signature at {c} clients (its processes, Redis, Postgres, wrk) | "
            f"{_median(many, 'stack_cpu_ms_per_signature'):.2f} ms |",
            "",
        ),
        (
            f"| cores busy at {c} clients (of {many[0]['cores_busy_of']}) | "
            f"{_median(many, 'cores_busy'):.2f} |",
            "",
        ),
    ]
    lines = [r[0] for r in rows]
    for name, mem in (("warm", warm), ("after", after)):
        parts = ", ".join(
            f"{k} {v:.0f} MB ({mem['processes'].get(k, 0)})" for k, v in mem["by_kind_mb"].items()
        )
        lines.append(f"memory {name} (PSS, processes): {parts}")
        lines.append(
            f"  other Chromium processes on the machine: {mem['foreign_chromium_processes']}"
        )
    return "\n".join(lines)


def _bench(args: argparse.Namespace, stack: Stack, wrk: str, folder: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    api_key = issue_key(stack.env, "bench@example.com", "api_key")
    script = lua_script(folder, api_key)
    stack.start_api()
    out["workers_ready_s"] = round(stack.start_workers(1), 2)
    print(f"stack up in {out['workers_ready_s']} s at {stack.base}")
    check = subprocess.run(
        [
            "curl",
            "-s",
            "-X",
            "POST",
            "-H",
            f"X-Api-Key: {api_key}",
            "-H",
            "Content-Type: application/json",
            "-d",
            json.dumps({"url": BASE_URL}),
            f"{stack.base}/signature",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    answer = json.loads(check.stdout or "{}")
    if answer.get("status") != "ok":
        raise RuntimeError(f"the stack does not sign: {check.stdout[:500]}")
    out["sample_answer_keys"] = sorted(answer)
    out["url_length"] = len(BASE_URL) + len("&cursor=r-1-100000")

    redis_pid = _redis_pid(stack.redis_url)
    processes = stack_processes(stack)
    cpu_pids = [*processes, *([redis_pid] if redis_pid else []), *_postgres_pids()]

    def load(connections: int, duration: float, prefix: str) -> dict[str, Any]:
        return run_wrk(
            wrk,
            stack.base,
            script,
            connections=connections,
            threads=args.threads,
            duration=duration,
            prefix=prefix,
            cpu_pids=cpu_pids,
        )

    # Warm every context, the JIT and the pools, at both load shapes; not measured.
    load(args.connections, args.warm, "warm-many")
    load(1, max(1.0, args.warm / 2), "warm-one")
    time.sleep(args.settle)
    out["memory_warm"] = memory(stack)
    print(f"memory warm: {out['memory_warm']}")
    out["rounds_many"] = []
    out["rounds_one"] = []
    for n in range(args.rounds):
        many = load(args.connections, args.duration, f"m{n}")
        print(f"round {n + 1}, {args.connections} connections: {many}")
        out["rounds_many"].append(many)
        if args.one_duration != 0:
            one = load(1, args.one_duration or args.duration, f"o{n}")
            print(f"round {n + 1}, 1 connection: {one}")
            out["rounds_one"].append(one)
    if args.soak > 0:
        soak = load(args.connections, args.soak, "soak")
        print(f"soak: {soak}")
        out["soak"] = soak
    time.sleep(args.settle)
    out["memory_after"] = memory(stack)
    out["signatures_total"] = sum(
        r["signed"]
        for r in (
            *out["rounds_many"],
            *out["rounds_one"],
            *([out["soak"]] if "soak" in out else []),
        )
    )
    print(f"memory after: {out['memory_after']} ({out['signatures_total']:,} signatures measured)")
    if args.rest > 0:
        # V8 grows its heaps under allocation pressure and gives memory back when idle.
        time.sleep(args.rest)
        out["memory_rested"] = memory(stack)
        print(f"memory after {args.rest:g} s idle: {out['memory_rested']}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument(
        "--one-duration",
        type=float,
        default=None,
        help="seconds per 1-connection run (default: --duration; 0 skips them)",
    )
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (at most connections)")
    parser.add_argument("--warm", type=float, default=5.0, help="seconds of unmeasured warm-up")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds before reading PSS")
    parser.add_argument(
        "--soak", type=float, default=0.0, help="seconds of extra load before the last PSS"
    )
    parser.add_argument(
        "--rest", type=float, default=0.0, help="also read PSS after this many idle seconds"
    )
    parser.add_argument(
        "--env", action="append", default=[], help="KEY=VALUE for every process of the stack"
    )
    parser.add_argument("--label", default="", help="recorded in the JSON")
    args = parser.parse_args()

    wrk = ensure_wrk()
    started = datetime.now(UTC)
    report: dict[str, Any] = {
        "started": started.isoformat(),
        "machine": machine(),
        "args": vars(args),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip(),
    }
    folder = Path(tempfile.mkdtemp(prefix="wrk-bench-"))
    with private_redis() as redis_url, postgres_server() as postgres:
        database_url = asyncio.run(postgres.fresh_database())
        stack = Stack(redis_url, folder, database_url)
        stack.env["SIGNER_LIMIT_ENABLED"] = "true"  # as users run it; the key is unlimited
        stack.env["SIGNER_WORKER_METRICS_PORT"] = "0"
        for setting in args.env:
            name, _, value = setting.partition("=")
            stack.env[name] = value
        try:
            report.update(_bench(args, stack, wrk, folder))
        finally:
            stack.stop()
            report["exit_codes"] = stack.exit_codes
            report["logs"] = str(folder)
            asyncio.run(postgres.drop(database_url))
    report["loadavg_at_end"] = os.getloadavg()
    print()
    print(table(report))
    print(
        f"load average at start {report['machine']['loadavg_at_start']}, "
        f"end {report['loadavg_at_end']}"
    )
    print(f"written to {write_results('wrk', report, started.timestamp())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
