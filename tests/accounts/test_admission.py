"""`Headroom`: which callers may be counted while their request is already being signed."""

from __future__ import annotations

from accounts.admission import Headroom
from accounts.ratelimit import Caller, RateDecision, WindowState

CALLER = Caller("key", "k1", per_minute=100)


def _decision(used: int, allowed: bool = True, reset_at: int = 1_000_060) -> RateDecision:
    window = WindowState("minute", 100, used, reset_at, "rate_limit_key_minute")
    return RateDecision(CALLER, allowed, 1_000_000.0, (window,), None if allowed else window)


def test_an_unseen_caller_is_counted_first() -> None:
    assert not Headroom().take(CALLER, 1_000_000.0)


def test_ahead_at_most_the_spare_budget_then_counted_first() -> None:
    headroom = Headroom(spare_share=0.1, spare_minimum=5)
    headroom.record(_decision(used=80))  # 20 left, 10 kept spare: 10 may go ahead
    assert [headroom.take(CALLER, 1_000_001.0) for _ in range(12)] == [True] * 10 + [False] * 2


def test_near_the_limit_refused_or_past_the_window_is_counted_first() -> None:
    headroom = Headroom(spare_share=0.1, spare_minimum=5)
    headroom.record(_decision(used=92))  # 8 left: within the spare
    assert not headroom.take(CALLER, 1_000_001.0)
    headroom.record(_decision(used=10))
    assert not headroom.take(CALLER, 1_000_060.0)  # the window seen has ended
    headroom.record(_decision(used=100, allowed=False))
    assert not headroom.take(CALLER, 1_000_001.0)
