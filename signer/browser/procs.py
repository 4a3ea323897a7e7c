"""Process facts from /proc (a process tree, its command lines, its memory), and tying a
child's life to its parent's."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "children",
    "cmdline",
    "descendants",
    "parent_death_signal",
    "signal_on_parent_death",
    "tree_rss_bytes",
]


def children(pid: int) -> list[int]:
    """Direct children of `pid` (empty where /proc does not say)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.extend(int(child) for child in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    out: list[int] = []
    stack = children(pid)
    while stack:
        child = stack.pop()
        out.append(child)
        stack.extend(children(child))
    return out


def cmdline(pid: int) -> list[str]:
    """The arguments of `pid` (empty when it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _memory(pid: int) -> int:
    # PSS splits pages shared between Chromium's processes fairly; summing RSS would
    # count the shared libraries once per renderer.
    for name, field in (("smaps_rollup", "Pss:"), ("status", "VmRSS:")):
        try:
            for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
                if line.startswith(field):
                    return int(line.split()[1]) * 1024
        except OSError:
            continue
    return 0


def tree_rss_bytes(root: int | None = None) -> int:
    """Memory (PSS) of `root` and everything below it (Chromium, driver, renderers)."""
    pid = root if root is not None else os.getpid()
    return sum(_memory(p) for p in [pid, *descendants(pid)])


_PR_SET_PDEATHSIG = 1


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's `prctl`, looked up once (finding libc runs `ldconfig`); None off Linux."""
    try:
        function: Callable[..., int] = ctypes.CDLL(
            ctypes.util.find_library("c") or "libc.so.6", use_errno=True
        ).prctl
    except (OSError, AttributeError):
        return None
    return function


# service/stack/services.py keeps a copy for `signer up`, which must start without
# importing the signer package.
def parent_death_signal(signum: int) -> Callable[[], None] | None:
    """A `preexec_fn` that has Linux send `signum` to the child when the thread that
    started it dies (the whole process, for the main thread), SIGKILL included; None
    where prctl(2) is not available. libc is looked up here, in the parent: between fork
    and exec the child only makes its system calls (a forked child of a process with
    threads should do no more)."""
    if _prctl() is None:  # looked up now, in the parent (the child finds it cached)
        return None
    parent = os.getpid()

    def arm() -> None:
        signal_on_parent_death(signum)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os.kill(os.getpid(), signum)

    return arm


def signal_on_parent_death(signum: int) -> bool:
    """Have Linux send this process `signum` when its parent dies, even by SIGKILL
    (`prctl(PR_SET_PDEATHSIG)`); False where that cannot be asked (not Linux)."""
    prctl = _prctl()
    if prctl is None:
        return False
    prctl(_PR_SET_PDEATHSIG, signum)
    return True
