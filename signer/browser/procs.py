"""Process facts from /proc (a process tree, its command lines, its memory), and tying a
child's life to its parent's."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import signal
from collections.abc import Callable
from pathlib import Path

__all__ = ["children", "cmdline", "descendants", "die_with", "tree_rss_bytes"]


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


def die_with(parent: int) -> Callable[[], None]:
    """A `preexec_fn` that has Linux SIGKILL the child when `parent` (the process that
    starts it) dies, however it dies: a worker killed hard leaves no Chromium behind.
    libc is loaded here, in the parent: between fork and exec the child only makes two
    system calls (a worker has threads, and a forked child of one should do no more).
    Elsewhere than Linux it does nothing."""
    prctl = _prctl()
    if prctl is None:
        return lambda: None

    def tie() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # it died before we asked
            os._exit(1)

    return tie
