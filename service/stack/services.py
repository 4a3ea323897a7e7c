"""Private Redis and Postgres servers in a state folder, on loopback ports.

`signer up` starts these when no `REDIS_URL` / `DATABASE_URL` is given, so a developer's
machine runs the whole stack without touching any shared server. Both keep their data in
the state folder and are durable by default (Postgres with fsync, Redis with an
append-only file synced every second): what `signer up` holds is a user's keys and usage.
Only the test suite turns durability off (`durable=False`), for speed.

Both servers are children of the process that starts them, never daemons: Postgres runs
as `postgres` itself rather than through `pg_ctl start` (whose postmaster outlives its
parent), so with `die_with_parent` Linux stops either server when its parent dies, even
by SIGKILL. Whatever an earlier run still left behind is found by `service.stack.recovery`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "PrivatePostgres",
    "PrivateRedis",
    "ServiceError",
    "free_port",
    "parent_death_signal",
    "port_is_free",
]

PR_SET_PDEATHSIG = 1  # prctl(2)


class ServiceError(RuntimeError):
    """A private service could not be started; the message says what to install or check."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on `host:port` now. SO_REUSEADDR as aiohttp and
    Redis set it, so a port whose last connections linger in TIME_WAIT counts as free."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


# signer/browser/procs.py has the same for Chromium: `signer up` keeps its own, since
# importing the signer package would add 0.3 s to its start (measured).
def parent_death_signal(signum: int) -> Callable[[], None] | None:
    """A `preexec_fn` that has Linux send `signum` to the child when the thread that
    started it dies (the whole process, for the main thread), SIGKILL included; None
    where prctl(2) is not available. libc is loaded here, in the parent: the child runs
    the function between fork and exec, where loading a library is not safe."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def arm() -> None:
        prctl(PR_SET_PDEATHSIG, signum)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os.kill(os.getpid(), signum)

    return arm


def _wait_for_port(port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise ServiceError(f"{what} did not start listening on port {port}")


def _log_tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


class PrivateRedis:
    """A redis-server of our own, its data (the append-only file) in `folder`."""

    def __init__(self, folder: Path, *, durable: bool = True, die_with_parent: bool = False):
        self.folder = folder
        self.durable = durable
        self.die_with_parent = die_with_parent
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self, port: int = 0) -> str:
        """Start the server (on `port`, else a free one) and return its URL."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceError("redis-server not found: apt-get install redis-server")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        # Durable: every write goes to the append-only file, fsynced each second (at most
        # a second lost in a power cut), read back at the next start. Otherwise nothing on disk.
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
            if self.durable
            else ["--appendonly", "no", "--save", ""]
        )
        self._process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                *persistence,
                "--dir",
                str(self.folder),
                "--logfile",
                str(self.folder / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # SIGTERM: Redis syncs its append-only file and exits.
            preexec_fn=parent_death_signal(signal.SIGTERM) if self.die_with_parent else None,
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

    def __init__(self, folder: Path, *, durable: bool = True, die_with_parent: bool = False):
        self.folder = folder
        self.durable = durable
        self.die_with_parent = die_with_parent
        self.port = 0
        self._bin = Path()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _run(self, *args: str) -> None:
        # Postgres refuses to run as root; as root we run it as the `postgres` user.
        command = list(args)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise ServiceError(f"{Path(args[0]).name} failed: {result.stderr.strip()[-500:]}")

    def _prepare_folder(self) -> pwd.struct_passwd | None:
        """The folder, owned by `postgres` when we are root (its account then)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            return None
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
        return user

    def start(self, port: int = 0) -> str:
        """Start the server (on `port`, else a free one) and return its URL."""
        self._bin = _postgres_bin()
        user = self._prepare_folder()
        if not (self.data / "PG_VERSION").exists():
            initdb = [str(self._bin / "initdb"), "-D", str(self.data), "-U", "postgres"]
            initdb += ["--auth=trust", "-E", "UTF8"]
            self._run(*initdb, *([] if self.durable else ["--no-sync"]))
        port = port or free_port()
        options = [
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={self.folder}",
        ]
        if not self.durable:  # the tests' throwaway clusters only
            options += ["-c", "fsync=off", "-c", "synchronous_commit=off"]
        log = (self.folder / "postgres.log").open("ab")
        try:
            self._process = subprocess.Popen(
                [str(self._bin / "postgres"), "-D", str(self.data), "-p", str(port), *options],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.folder,
                user=user.pw_uid if user else None,
                group=user.pw_gid if user else None,
                extra_groups=[] if user else None,
                # SIGINT is Postgres's fast shutdown: sessions are closed, the data synced.
                # Armed after the switch to `postgres` (a change of user clears it).
                preexec_fn=parent_death_signal(signal.SIGINT) if self.die_with_parent else None,
            )
        finally:
            log.close()
        self.port = port  # from here on, stop() has a server to stop
        self._wait_until_ready()
        createdb = [str(self._bin / "createdb"), "-h", "127.0.0.1", "-p", str(port)]
        created = subprocess.run(
            [*createdb, "-U", "postgres", "signer"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if created.returncode != 0 and "already exists" not in created.stderr:
            raise ServiceError(f"createdb failed: {created.stderr.strip()}")
        return f"postgresql://postgres@127.0.0.1:{self.port}/signer"

    def _wait_until_ready(self, timeout: float = 60) -> None:
        # Listening is not accepting: after a crash the server replays its WAL first.
        deadline = time.monotonic() + timeout
        ready = [str(self._bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                tail = _log_tail(self.folder / "postgres.log")
                raise ServiceError(f"postgres exited at start ({tail})")
            if subprocess.run([*ready, "-t", "1"], capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        raise ServiceError(f"postgres did not accept connections on port {self.port}")

    def stop(self) -> None:
        """Fast shutdown: sessions are closed, the data synced, the server gone."""
        if not self.port:
            return
        self.port = 0
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGQUIT)  # immediate shutdown: WAL replay at next start
            process.wait(timeout=10)
