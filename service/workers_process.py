"""Running worker processes: `signer worker [--processes N]`.

With several processes, this one is their supervisor: a worker that exits on its own
(a crash, kill -9, a SIGTERM sent to it alone) is started again after a backoff, so a
host never runs short for good; only a SIGTERM or SIGINT to the supervisor stops them
for good. Every restart is logged, and the restarted process reports its slot's count
as `signer_worker_restarts` (the supervisor serves no metrics of its own).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import sys
import time
import uuid
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess

from signer import SignerSettings
from signer.browser.procs import signal_on_parent_death
from workers.config import QueueSettings, WorkerSettings
from workers.metrics import serve_metrics
from workers.worker import build_worker

from .environment import Environment, warn_unknown
from .logs import configure_logging, get_logger
from .loop import run

__all__ = ["run_workers", "serve_worker"]

RESTART_BACKOFF = 1.0  # seconds before the first restart of a slot; doubles while it fails
RESTART_BACKOFF_MAX = 30.0
STEADY_SECONDS = 60.0  # a worker that ran this long before dying starts its slot's backoff over

log = get_logger("service.workers_process")


async def serve_worker(
    queue: QueueSettings,
    signer_settings: SignerSettings,
    worker_settings: WorkerSettings,
    index: int = 0,
    *,
    supervisor_id: str | None = None,
    expected: int = 1,
    restarts: int = 0,
) -> bool:
    """One worker until SIGTERM or SIGINT; then stop taking jobs, finish those in hand,
    close the browser. Its metrics are served on the port of process `index`. False when
    the worker failed (its browser would not start, say) rather than being stopped, so
    the process exits non-zero and a supervisor restarts it. `supervisor_id`, `expected`
    and `restarts` are as `QueueWorker` takes them."""
    worker = build_worker(
        queue, signer_settings, supervisor_id=supervisor_id, expected=expected, restarts=restarts
    )
    port = worker_settings.metrics_port_of(index)
    metrics = serve_metrics(worker.metrics.registry, worker_settings.metrics_host, port)
    if metrics is not None:
        log.info(
            "worker metrics listening",
            worker_id=worker.worker_id,
            url=f"http://{worker_settings.metrics_host}:{metrics.port}/metrics",
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    running = asyncio.create_task(worker.run())
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        await worker.drain(timeout=queue.max_deadline)
        # The loop ends at its next wake-up (at most `safety_poll`), handing back any token.
        await asyncio.wait({running}, timeout=queue.safety_poll + 1)
        running.cancel()
        stopping.cancel()
        results = await asyncio.gather(running, stopping, return_exceptions=True)
        failed = False
        for result in results:
            if isinstance(result, Exception):
                failed = True
                log.error("worker failed", worker_id=worker.worker_id, exc_info=result)
        await worker.close()  # the browser closes
        return not failed
    finally:
        if metrics is not None:
            metrics.close()


def _die_with_parent() -> None:
    """Have Linux send this process SIGTERM when its parent dies (even by SIGKILL), so a
    worker never outlives the `signer worker` that started it; it then drains as usual."""
    if not signal_on_parent_death(signal.SIGTERM):  # not Linux: its SIGTERM still comes
        return
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it died before we asked
        os.kill(os.getpid(), signal.SIGTERM)


def _child(index: int, supervisor_id: str, expected: int, restarts: int) -> None:
    _die_with_parent()
    env = Environment()  # a spawned process: the environment is read again, once
    configure_logging(env.log)
    served = serve_worker(
        env.queue,
        env.signer,
        env.worker,
        index=index,
        supervisor_id=supervisor_id,
        expected=expected,
        restarts=restarts,
    )
    if not run(served):
        sys.exit(1)


def run_workers(env: Environment, processes: int) -> int:
    """Run `processes` workers on this host, restarting any that dies on its own;
    SIGTERM is passed on to every one of them, and then none is restarted."""
    configure_logging(env.log)
    warn_unknown()
    supervisor_id = uuid.uuid4().hex
    if processes == 1:  # the process is the worker: whatever runs it restarts it
        served = serve_worker(env.queue, env.signer, env.worker, supervisor_id=supervisor_id)
        return 0 if run(served) else 1
    context = multiprocessing.get_context("spawn")
    restarts = [0] * processes
    backoff = [RESTART_BACKOFF] * processes
    started = [0.0] * processes
    due: dict[int, float] = {}  # slot -> when its restart is due (monotonic)
    children: list[BaseProcess] = []
    stopping = False

    def start(n: int) -> BaseProcess:
        child = context.Process(
            target=_child,
            args=(n, supervisor_id, processes, restarts[n]),
            name=f"signer-worker-{n}",
        )
        child.start()
        started[n] = time.monotonic()
        return child

    def forward(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.is_alive():
                child.terminate()  # SIGTERM: each child drains, then exits

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    children.extend(start(n) for n in range(processes))
    while not stopping or any(child.is_alive() for child in children):
        now = time.monotonic()
        for n, child in enumerate(children):
            if stopping or child.is_alive():
                continue
            if n not in due:
                if now - started[n] >= STEADY_SECONDS:
                    backoff[n] = RESTART_BACKOFF
                due[n] = now + backoff[n]
                log.error(
                    "worker process exited; restarting it",
                    slot=n,
                    pid=child.pid,
                    exitcode=child.exitcode,
                    restart_in=backoff[n],
                    restarts=restarts[n] + 1,
                )
                backoff[n] = min(backoff[n] * 2, RESTART_BACKOFF_MAX)
            elif now >= due[n]:
                del due[n]
                restarts[n] += 1
                children[n] = start(n)
        # Woken by a child's exit, a signal, or the next restart falling due.
        waits = [due_at - now for due_at in due.values()] + [1.0]
        wait([child.sentinel for child in children if child.is_alive()], max(min(waits), 0.05))
    return 0 if all(child.exitcode == 0 for child in children) else 1


if __name__ == "__main__":
    sys.exit(run_workers(Environment(), int(sys.argv[1]) if len(sys.argv) > 1 else 1))
