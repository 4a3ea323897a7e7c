"""Running worker processes: `signer worker [--processes N]`."""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import sys

from signer import SignerSettings

from .config import QueueSettings
from .worker import build_worker

__all__ = ["run_workers", "serve_worker"]


async def serve_worker(queue: QueueSettings, signer_settings: SignerSettings) -> None:
    """One worker until SIGTERM or SIGINT; then stop taking jobs, finish those in hand,
    close the browser."""
    worker = build_worker(queue, signer_settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    running = asyncio.create_task(worker.run())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    await worker.drain(timeout=queue.max_deadline)
    # The loop ends at its next wake-up (at most `safety_poll`), handing back any token.
    await asyncio.wait({running}, timeout=queue.safety_poll + 1)
    running.cancel()
    stopping.cancel()
    await asyncio.gather(running, stopping, return_exceptions=True)
    await worker.close()  # the browser closes


def _child() -> None:
    asyncio.run(serve_worker(QueueSettings(), SignerSettings()))


def run_workers(processes: int) -> int:
    """Run `processes` workers on this host; SIGTERM is passed on to every one of them."""
    if processes == 1:
        asyncio.run(serve_worker(QueueSettings(), SignerSettings()))
        return 0
    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=_child, name=f"signer-worker-{n}") for n in range(processes)]
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
