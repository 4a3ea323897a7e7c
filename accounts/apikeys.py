"""API keys: how they are made, recognised and hashed.

A key reads `sk_AbCd1234_<32 base62 characters>`. `sk_AbCd1234` is its prefix: stored,
listed and used to revoke it. The 32 characters after it carry 190 random bits from
`secrets`, so a key cannot be guessed. Only a hex digest of the whole key is stored:
SHA-256, or HMAC-SHA-256 under `SIGNER_KEY_SECRET` when one is set, so a leaked table
holds nothing a client could send.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass

__all__ = [
    "KEY_SECRET_LENGTH",
    "MAX_KEY_LENGTH",
    "SHOWN_ONCE",
    "GeneratedKey",
    "generate_key",
    "hash_key",
    "key_prefix",
    "prefix_named_by",
]

SHOWN_ONCE = "Store this key now: it is not kept and will not be shown again."

BASE62 = string.digits + string.ascii_letters
KEY_TAG = "sk_"
PREFIX_RANDOM_LENGTH = 8
KEY_SECRET_LENGTH = 32
# Keys up to twice today's length are still recognised, so a later release can lengthen
# new keys without old ones turning invalid.
MAX_KEY_LENGTH = len(KEY_TAG) + PREFIX_RANDOM_LENGTH + 1 + 2 * KEY_SECRET_LENGTH

_PREFIX_PATTERN = rf"{KEY_TAG}[0-9A-Za-z]{{{PREFIX_RANDOM_LENGTH}}}"
_SECRET_PATTERN = rf"[0-9A-Za-z]{{{KEY_SECRET_LENGTH},{2 * KEY_SECRET_LENGTH}}}"
_PREFIX = re.compile(_PREFIX_PATTERN)
_KEY = re.compile(rf"({_PREFIX_PATTERN})_{_SECRET_PATTERN}")


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    """A new key: the prefix stored with it, and the whole key, shown once."""

    prefix: str
    key: str

    def __repr__(self) -> str:
        # The key must not end up in a log through a stray repr.
        return f"GeneratedKey(prefix={self.prefix!r}, key='{self.prefix}_…')"


def _random_base62(length: int) -> str:
    return "".join(secrets.choice(BASE62) for _ in range(length))


def generate_key() -> GeneratedKey:
    """A fresh random key."""
    prefix = KEY_TAG + _random_base62(PREFIX_RANDOM_LENGTH)
    return GeneratedKey(prefix, f"{prefix}_{_random_base62(KEY_SECRET_LENGTH)}")


def key_prefix(raw_key: str) -> str | None:
    """The prefix of a well-formed key; None for anything not shaped like one of ours."""
    if len(raw_key) > MAX_KEY_LENGTH:
        return None
    found = _KEY.fullmatch(raw_key)
    return found[1] if found else None


def prefix_named_by(text: str) -> str | None:
    """The prefix `text` names, being a prefix or a whole key; None when it is neither."""
    if _PREFIX.fullmatch(text):
        return text
    return key_prefix(text)


def hash_key(raw_key: str, secret: str = "") -> str:
    """The hex digest stored for a key: HMAC-SHA-256 under `secret`, or SHA-256 without."""
    data = raw_key.encode()
    if secret:
        return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()
    return hashlib.sha256(data).hexdigest()
