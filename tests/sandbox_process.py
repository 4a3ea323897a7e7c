"""The offline TikTok as users run it (`python -m sandbox`), for stacks in other processes.

A stack started as subprocesses (tests/service_stack.py) cannot share an event loop with
an in-process `Sandbox`, so tests that need "TikTok" beside such a stack run the shipped
command instead and point the stack's `SIGNER_TIKTOK_*` settings at it.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from service.stack.services import free_port

__all__ = ["SandboxProcess", "sandbox_process"]

from sandbox.push import PUSH_PATH


@dataclass(frozen=True)
class SandboxProcess:
    url: str  # http://127.0.0.1:PORT, standing for both www and webcast.tiktok.com
    push_url: str
    process: subprocess.Popen[bytes]

    def signer_env(self) -> dict[str, str]:
        """What our signer needs to reach this TikTok instead of the real one."""
        return {
            "SIGNER_TIKTOK_WEB_URL": self.url,
            "SIGNER_TIKTOK_WEBCAST_URL": self.url,
            "SIGNER_TIKTOK_PUSH_URL": self.push_url,
        }


@contextmanager
def sandbox_process(mode: str = "fetch", rate: float = 0.0) -> Iterator[SandboxProcess]:
    """`python -m sandbox` on a free loopback port until the block ends."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", str(port), "--mode", mode, "--rate", str(rate)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{url}/@sandbox/live", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    stderr = process.stderr.read().decode() if process.stderr else ""
                    raise AssertionError(f"the sandbox did not start: {stderr}") from None
                time.sleep(0.1)
        yield SandboxProcess(url, f"ws://127.0.0.1:{port}{PUSH_PATH}", process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
