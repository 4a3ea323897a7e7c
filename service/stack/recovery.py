"""What one `signer up` leaves in its state folder for the next: a record, and a clean-up.

A `signer up` killed outright (the OOM killer, a closed session: SIGKILL) cannot stop
anything itself. Its children are told by Linux (a parent-death signal, see
`service.stack.services.parent_death_signal`) and stop on their own, but some may still be
shutting down when the next `signer up` starts, and a server started by an older version
(`pg_ctl start`, a daemon) is not told at all. So:

* `StackRecord` (`<state>/stack.json`) holds the ports and URLs of the running stack:
  the next run reuses the ports (the URLs a user copied stay valid) and `signer keys`
  / `signer users` find the database through it when `DATABASE_URL` is unset;
* every process of a run carries `SIGNER_UP_STATE=<state folder>` in its environment
  (inherited by the browser and its helpers too), so the next run finds what is left by
  that tag, whoever its parent is now; the servers are found by their working folder
  (Postgres and Redis run in their data folders), a daemon of an older version's
  `pg_ctl start` included;
* `clear_leftovers` stops what it finds (Postgres and Redis cleanly, so no data is lost)
  and removes stale lock files, before anything new starts; `signer up` says what it did
  in one line.

A `signer up` still running on the folder holds `<state>/up.lock` (a kernel lock, gone
with its process however it ends): a second one refuses to start rather than clear it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

__all__ = [
    "STATE_TAG",
    "Leftover",
    "StackRecord",
    "clear_leftovers",
    "hold_state_lock",
    "stack_processes",
]

STATE_TAG = "SIGNER_UP_STATE"
RECORD = "stack.json"
LOCK = "up.lock"


@dataclass
class StackRecord:
    """The running stack's addresses, rewritten by each `signer up`."""

    pid: int = 0
    api: str = ""  # the base URL given to clients
    redis_url: str = ""
    redis_port: int = 0
    database_url: str = ""
    postgres_port: int = 0

    @classmethod
    def load(cls, state: Path) -> StackRecord:
        try:
            raw = json.loads((state / RECORD).read_text())
        except (OSError, ValueError):
            return cls()
        known = {name for name in cls.__dataclass_fields__}
        if not isinstance(raw, dict):
            return cls()
        return cls(**{k: v for k, v in raw.items() if k in known})

    def save(self, state: Path) -> None:
        state.mkdir(parents=True, exist_ok=True)
        partial = state / f".{RECORD}.tmp"
        partial.write_text(json.dumps(asdict(self), indent=2) + "\n")
        partial.replace(state / RECORD)  # never half a record


def hold_state_lock(state: Path) -> IO[str] | None:
    """The lock of `state`, held until the returned file is closed (or the process ends);
    None when another `signer up` holds it."""
    state.mkdir(parents=True, exist_ok=True)
    handle = (state / LOCK).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


@dataclass(frozen=True)
class Leftover:
    pid: int
    what: str  # "postgres", "redis" or "process"


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    """Running, not a zombie (a zombie has exited: only its parent's wait is missing)."""
    stat = _read(f"/proc/{pid}/stat")
    return bool(stat) and stat.rsplit(b")", 1)[-1].split()[0] != b"Z"


def _environment(pid: int) -> dict[bytes, bytes]:
    entries = _read(f"/proc/{pid}/environ").split(b"\0")
    return dict(entry.partition(b"=")[::2] for entry in entries if b"=" in entry)


def _cwd(pid: int) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None


def _program(pid: int) -> str:
    """The program's name (servers rewrite their command line into one string)."""
    words = _read(f"/proc/{pid}/cmdline").split(b"\0")[0].split()
    return Path(words[0].decode(errors="replace")).name if words else ""


def _parent(pid: int) -> int:
    fields = _read(f"/proc/{pid}/stat").rsplit(b")", 1)[-1].split()
    return int(fields[1]) if len(fields) > 1 else 0


def stack_processes(state: Path) -> dict[int, str]:
    """Live processes of a `signer up` on `state` other than this one, by kind:
    `postgres` (a postmaster), `backend` (its children, which stop with it), `redis`,
    `process` (workers, the API, the browser and its helpers). Found by the environment
    tag, and for the servers by their working folder (both rewrite their command line,
    which can overwrite the environment /proc shows)."""
    state = state.resolve()
    tag = str(state).encode()
    data, redis = state / "postgres" / "data", state / "redis"
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        pid = int(entry)
        cwd = _cwd(pid)
        program = _program(pid)
        if cwd == data and program.startswith("postgres"):
            parent = _program(_parent(pid))
            kind = "backend" if parent.startswith("postgres") else "postgres"
        elif cwd == redis and program.startswith("redis"):
            kind = "redis"
        elif _environment(pid).get(STATE_TAG.encode()) == tag:
            kind = "process"
        else:
            continue
        if _alive(pid):
            found[pid] = kind
    return found


def _pidfile_pid(lock: Path) -> int:
    first = _read(str(lock)).decode(errors="replace").splitlines()[:1]
    return abs(int(first[0])) if first and first[0].strip().lstrip("-").isdigit() else 0


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    left = [pid for pid in pids if _alive(pid)]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [pid for pid in left if _alive(pid)]
    return left


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # gone meanwhile: nothing to do
        os.kill(pid, signum)


def _remove_stale_locks(state: Path) -> list[str]:
    """Lock files whose process is gone: Postgres would refuse a pid file whose number a
    new, unrelated process has taken since."""
    removed = []
    folder = state / "postgres"
    postmasters = {pid for pid, kind in stack_processes(state).items() if kind == "postgres"}
    for lock in [folder / "data" / "postmaster.pid", *folder.glob(".s.PGSQL.*.lock")]:
        if lock.exists() and _pidfile_pid(lock) not in postmasters:
            lock.unlink(missing_ok=True)
            removed.append(lock.name)
    return removed


def clear_leftovers(state: Path, grace: float = 3.0) -> str | None:
    """Stop whatever an earlier `signer up` on `state` left running and remove its stale
    lock files; one line saying what was done, or None when there was nothing."""
    found = stack_processes(state)
    servers = [pid for pid, kind in found.items() if kind in ("postgres", "redis")]
    others = [pid for pid, kind in found.items() if kind == "process"]
    # The workers and the API first (they are clients of the servers), politely, then
    # for good: their parent is gone, nothing waits for their drain.
    for pid in others:
        _signal(pid, signal.SIGTERM)
    for pid in _wait_gone(others, grace):
        _signal(pid, signal.SIGKILL)
    # Postgres: fast shutdown (SIGINT) syncs the data; Redis: SIGTERM writes its file.
    for pid in servers:
        _signal(pid, signal.SIGINT if found[pid] == "postgres" else signal.SIGTERM)
    for pid in _wait_gone(servers, 30):
        _signal(pid, signal.SIGKILL)  # wedged: Postgres replays its WAL at the next start
    _wait_gone(list(found), 5)
    locks = _remove_stale_locks(state)
    if not servers and not others and not locks:
        return None
    parts = [f"{found[pid]} (pid {pid})" for pid in sorted(servers)]
    if others:
        parts.append(f"{len(others)} other process{'es' if len(others) > 1 else ''}")
    stopped = f"stopped {', '.join(parts)}" if parts else ""
    cleared = f"removed stale {', '.join(locks)}" if locks else ""
    done = "; ".join(part for part in (stopped, cleared) if part)
    return f"an earlier `signer up` on this state folder did not stop: {done}"
