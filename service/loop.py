"""The event loop of the service's long-running processes (the API, the workers): uvloop.

Measured on the whole stack (bench/wrk_bench.py, BENCHMARKS.md, issue 13), one client
waits 20-25% less for a signature on it than on asyncio's own loop, and 64 clients get
as many signatures or more for the same CPU.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

__all__ = ["run"]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to completion on a new uvloop event loop, as `asyncio.run` would."""
    return uvloop.run(main)
