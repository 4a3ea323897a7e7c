"""A circuit breaker in front of TikTok: fail fast while it keeps failing.

Closed: calls go through; `failures` consecutive upstream failures open it. Open: calls are
refused at once with the time left, so callers get a 503 with `Retry-After` in microseconds
instead of waiting out timeouts. After `cooldown` seconds it is half-open: exactly one call
(the probe) goes through while the others are still refused; a probe that succeeds closes it,
one that fails opens it for another cool-down. A call that never reports back (cancelled)
frees the probe slot, so a cancelled probe cannot wedge the breaker half-open.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

__all__ = ["BreakerOpen", "BreakerState", "CircuitBreaker"]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerOpen(Exception):
    """Refused by the breaker; `retry_after` is the number of seconds until a probe."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"circuit open; retry in {retry_after:.1f} s")
        self.retry_after = retry_after


class CircuitBreaker:
    """Closed, open, half-open; single-threaded (one event loop), so no locks."""

    def __init__(
        self,
        *,
        failures: int,
        cooldown: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = failures
        self.cooldown = cooldown
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._opened_at = 0.0
        self._probing = False
        self.times_opened = 0

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.cooldown:
            return BreakerState.HALF_OPEN
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._consecutive

    def acquire(self) -> bool:
        """Admit one call or raise `BreakerOpen`; True when the call is the probe, which
        must report back through `success`, `failure` or `release`."""
        state = self.state
        if state is BreakerState.CLOSED:
            return False
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._state = BreakerState.HALF_OPEN
            self._probing = True
            return True
        if state is BreakerState.HALF_OPEN:
            # A probe is already out: the others wait for its verdict, briefly.
            raise BreakerOpen(min(1.0, self.cooldown))
        raise BreakerOpen(max(0.0, self.cooldown - (self._clock() - self._opened_at)))

    def success(self) -> None:
        self._consecutive = 0
        self._probing = False
        self._state = BreakerState.CLOSED

    def failure(self) -> None:
        self._consecutive += 1
        was_probe = self._probing
        self._probing = False
        if was_probe or self._consecutive >= self.threshold:
            if self._state is not BreakerState.OPEN:
                self.times_opened += 1
            self._state = BreakerState.OPEN
            self._opened_at = self._clock()

    def release(self, probe: bool) -> None:
        """The call ended without a verdict (cancelled): give the probe slot back."""
        if probe:
            self._probing = False
