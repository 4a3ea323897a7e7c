"""Private Redis and Postgres servers in a state folder, on free loopback ports.

`signer up` starts these when no `REDIS_URL` / `DATABASE_URL` is given, so a developer's
machine runs the whole stack without touching any shared server.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

__all__ = ["PrivatePostgres", "PrivateRedis", "ServiceError", "free_port"]


class ServiceError(RuntimeError):
    """A private service could not be started; the message says what to install or check."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise ServiceError(f"{what} did not start listening on port {port}")


class PrivateRedis:
    """A redis-server of our own, keeping nothing on disk."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceError("redis-server not found: apt-get install redis-server")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self._process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
                "--logfile",
                str(self.folder / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, 10, "redis-server")
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)


def _postgres_bin() -> Path:
    # Debian's versioned folder first: it holds every tool (PATH may only have wrappers).
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    found = shutil.which("initdb")
    if found:
        candidates.append(found)
    if not candidates:
        raise ServiceError("PostgreSQL not found: apt-get install postgresql")
    return Path(candidates[0]).parent


class PrivatePostgres:
    """A Postgres cluster of our own in `folder` (created on first use, kept after)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = 0
        self._bin = Path()

    def _run(self, *args: str) -> None:
        # Postgres refuses to run as root; as root we run it as the `postgres` user.
        command = list(args)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise ServiceError(f"{Path(args[0]).name} failed: {result.stderr.strip()[-500:]}")

    def start(self, port: int = 0) -> str:
        """Start the server (on `port`, else a free one) and return its URL."""
        self._bin = _postgres_bin()
        data = self.folder / "data"
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise ServiceError(
                    "running as root needs a `postgres` user to run Postgres as"
                ) from None
            for path in (self.folder, *self.folder.rglob("*")):
                os.chown(path, user.pw_uid, user.pw_gid)
            reachable = subprocess.run(
                ["runuser", "-u", "postgres", "--", "test", "-w", str(self.folder)],
                capture_output=True,
            )
            if reachable.returncode != 0:
                raise ServiceError(
                    f"the postgres user cannot reach {self.folder}: choose a --state folder "
                    "whose parent folders it may enter (or set DATABASE_URL)"
                )
        if not (data / "PG_VERSION").exists():
            self._run(
                str(self._bin / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            )
        port = port or free_port()
        options = f"-p {port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(self._bin / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(self.folder / "postgres.log"),
            "-w",
            "-t",
            "30",
            "start",
        )
        self.port = port  # from here on, stop() has a server to stop
        _wait_for_port(self.port, 10, "postgres")
        created = subprocess.run(
            [
                str(self._bin / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "signer",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if created.returncode != 0 and "already exists" not in created.stderr:
            raise ServiceError(f"createdb failed: {created.stderr.strip()}")
        return f"postgresql://postgres@127.0.0.1:{self.port}/signer"

    def stop(self) -> None:
        if self.port:
            self._run(
                str(self._bin / "pg_ctl"),
                "-D",
                str(self.folder / "data"),
                "-m",
                "fast",
                "-w",
                "stop",
            )
            self.port = 0
