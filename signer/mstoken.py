"""msToken: TikTok issues it and it cannot be computed; this only mints stand-ins.

A minted token is random base64url of a realistic length. Real servers may reject
it, so a signer that mints one must say so in its answer (see specs/signing.md).
"""

from __future__ import annotations

import re
import secrets

__all__ = ["MS_TOKEN_MAX", "MS_TOKEN_MIN", "is_plausible_ms_token", "mint_ms_token"]

# Lengths seen in browser captures.
MS_TOKEN_MIN = 148
MS_TOKEN_MAX = 168
_URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# Captured tokens sometimes end in '=' padding (base64url of a byte count not a
# multiple of 3), so up to two are allowed at the end.
_SHAPE = re.compile(r"[A-Za-z0-9_-]+={0,2}", re.ASCII)


def mint_ms_token(length: int | None = None) -> str:
    """A random base64url stand-in of `length` characters (default: random realistic)."""
    if length is None:
        length = MS_TOKEN_MIN + secrets.randbelow(MS_TOKEN_MAX - MS_TOKEN_MIN + 1)
    if not MS_TOKEN_MIN <= length <= MS_TOKEN_MAX:
        raise ValueError(f"length must be in {MS_TOKEN_MIN}..{MS_TOKEN_MAX}, got {length}")
    return "".join(secrets.choice(_URLSAFE) for _ in range(length))


def is_plausible_ms_token(value: str) -> bool:
    """True when `value` looks like an msToken: base64url, realistic length."""
    return MS_TOKEN_MIN <= len(value) <= MS_TOKEN_MAX and _SHAPE.fullmatch(value) is not None
