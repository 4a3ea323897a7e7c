"""The tiers a user can be on: the one list the code, the CLI and the OpenAPI read.

(`migrations/0001_accounts.sql` holds the same names in a CHECK; a migration is history
and is never edited, so `tests/migrations/test_runner.py` holds the two to one list.)
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["TIERS", "Tier", "as_tier"]

Tier = Literal["free", "api_key"]
TIERS: tuple[Tier, ...] = get_args(Tier)


def as_tier(value: object) -> Tier | None:
    """`value` as a tier, or None when it names none."""
    for tier in TIERS:
        if value == tier:
            return tier
    return None
