"""A private Redis that a test can kill and start again on the same port: the fault a
Redis restart is (every connection reset, every key gone, the address unchanged)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from service.stack.services import PrivateRedis

__all__ = ["RestartableRedis", "restartable_redis"]


class RestartableRedis(PrivateRedis):
    """`PrivateRedis` with `kill` and `revive`; the command line (port included) is the
    one `start` chose, so there is one definition of how our Redis runs."""

    def kill(self) -> None:
        """SIGKILL the server, as a crash or an OOM kill would."""
        assert self._process is not None, "start() first"
        os.kill(self._process.pid, signal.SIGKILL)
        self._process.wait(timeout=10)

    def revive(self, timeout: float = 10.0) -> None:
        """Start the server again with the same command line, on the same port."""
        assert self._process is not None, "start() first"
        self._process = subprocess.Popen(
            self._process.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise AssertionError(f"redis-server did not listen again on port {self.port}")


@contextmanager
def restartable_redis() -> Iterator[RestartableRedis]:
    """A started `RestartableRedis` in a folder of its own, stopped and removed after."""
    folder = Path(tempfile.mkdtemp(prefix="signer-redis-"))
    # Not durable: a restart loses every key, jobs in flight included (the harder case).
    server = RestartableRedis(folder, durable=False)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
