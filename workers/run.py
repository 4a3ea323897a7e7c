"""Running worker processes: `signer worker [--processes N]`."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys

from signer import SignerSettings

from .config import LogSettings, QueueSettings, WorkerSettings
from .logs import configure_logging, get_logger
from .metrics import serve_metrics
from .worker import build_worker

__all__ = ["run_workers", "serve_worker"]

PR_SET_PDEATHSIG = 1  # prctl(2)

log = get_logger("workers.run")


async def serve_worker(
    queue: QueueSettings,
    signer_settings: SignerSettings,
    worker_settings: WorkerSettings | None = None,
    index: int = 0,
) -> bool:
    """One worker until SIGTERM or SIGINT; then stop taking jobs, finish those in hand,
    close the browser. Its metrics are served on the port of process `index`. False when
    the worker failed (its browser would not start, say) rather than being stopped, so
    the process exits non-zero and a supervisor restarts it."""
    worker_settings = worker_settings or WorkerSettings()
    worker = build_worker(queue, signer_settings)
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
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the parent's SIGTERM still reaches us
        return
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it died before we asked
        os.kill(os.getpid(), signal.SIGTERM)


def _child(index: int) -> None:
    _die_with_parent()
    configure_logging(LogSettings())
    if not asyncio.run(serve_worker(QueueSettings(), SignerSettings(), index=index)):
        sys.exit(1)


def run_workers(processes: int) -> int:
    """Run `processes` workers on this host; SIGTERM is passed on to every one of them."""
    configure_logging(LogSettings())
    if processes == 1:
        return 0 if asyncio.run(serve_worker(QueueSettings(), SignerSettings())) else 1
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(target=_child, args=(n,), name=f"signer-worker-{n}")
        for n in range(processes)
    ]
    for child in children:
        child.start()

    def forward(_signum: int, _frame: object) -> None:
        for child in children:
            if child.is_alive():
                child.terminate()  # SIGTERM: each child drains, then exits

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for child in children:
        child.join()
    return 0 if all(child.exitcode == 0 for child in children) else 1


if __name__ == "__main__":
    sys.exit(run_workers(int(sys.argv[1]) if len(sys.argv) > 1 else 1))
