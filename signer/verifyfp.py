"""verifyFp: the client-made fingerprint id, `verify_<base36 ms>_<UUID-v4-like 36 chars>`."""

from __future__ import annotations

import re
import secrets
import time

from signer.tokenerrors import TokenDecodeError

__all__ = ["is_verify_fp", "make_verify_fp", "verify_fp_time_ms"]

_DIGITS36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_VARIANT = "89AB"
# Nine base-36 digits reach the year 5000; the bound keeps a forged value from
# parsing into a number no clock or date library can use.
_MAX_TIME_DIGITS = 9
_SHAPE = re.compile(
    rf"verify_([0-9a-z]{{1,{_MAX_TIME_DIGITS}}})_"
    + r"[0-9A-Za-z]{8}_[0-9A-Za-z]{4}_4[0-9A-Za-z]{3}_[89AB][0-9A-Za-z]{3}_[0-9A-Za-z]{12}",
    re.ASCII,
)


def _base36(value: int) -> str:
    digits = []
    while True:
        value, digit = divmod(value, 36)
        digits.append(_DIGITS36[digit])
        if not value:
            return "".join(reversed(digits))


def make_verify_fp(now_ms: int | None = None) -> str:
    """A fresh verifyFp for the given time in Unix milliseconds (default: now)."""
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    if not 0 <= ms < 36**_MAX_TIME_DIGITS:
        raise ValueError(f"now_ms out of range: {ms}")
    chars = [secrets.choice(_CHARS) for _ in range(32)]
    # The UUID v4 marks: version nibble '4' and a variant of 8, 9, A or B.
    chars[12] = "4"
    chars[16] = secrets.choice(_VARIANT)
    groups = ("".join(chars[a:b]) for a, b in ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32)))
    return f"verify_{_base36(ms)}_" + "_".join(groups)


def verify_fp_time_ms(value: str) -> int:
    """The Unix milliseconds in a verifyFp; raises TokenDecodeError if it is not one."""
    match = _SHAPE.fullmatch(value)
    if match is None:
        raise TokenDecodeError(
            "a verifyFp is verify_<base36 ms>_ then 8_4_4_4_12 characters of [0-9A-Za-z] "
            "with '4' opening the third group and one of 8, 9, A, B the fourth"
        )
    return int(match.group(1), 36)


def is_verify_fp(value: str) -> bool:
    """True when `value` has the shape of a verifyFp."""
    return _SHAPE.fullmatch(value) is not None
