"""The cookies the sandbox hands out the way TikTok does: `ttwid`, `msToken` and friends.

A `ttwid` is `1|<id>|<unix seconds>|<hex signature>` URL-encoded (spec section 2.5). The
sandbox signs its own with an HMAC over id and time, so it can tell a ttwid it issued from a
made-up one without keeping a list. `revoke()` changes the signing key, so every ttwid issued
before it is refused, to test a client's refresh path.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from urllib.parse import quote, unquote

__all__ = ["CookieAuthority", "parse_cookie_header"]

TTWID_MAX_AGE = 365 * 24 * 3600
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _random_text(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def parse_cookie_header(header: str) -> dict[str, str]:
    """`a=b; c=d` into a dict, values kept as sent (still URL-encoded)."""
    cookies: dict[str, str] = {}
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name:
            cookies[name] = value
    return cookies


class CookieAuthority:
    """Issues and checks ttwids; mints msTokens."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)
        self.issued = 0

    def _signature(self, ident: str, issued: int) -> str:
        return hmac.new(self._key, f"{ident}|{issued}".encode(), hashlib.sha256).hexdigest()

    def new_ttwid(self) -> str:
        """A fresh ttwid value, URL-encoded as it travels in Set-Cookie and Cookie."""
        ident = _random_text(43)
        issued = int(time.time())
        self.issued += 1
        return quote(f"1|{ident}|{issued}|{self._signature(ident, issued)}", safe="")

    def ttwid_valid(self, value: str | None) -> bool:
        if not value:
            return False
        parts = unquote(value).split("|")
        if len(parts) != 4 or parts[0] != "1" or not parts[2].isdigit():
            return False
        issued = int(parts[2])
        if issued + TTWID_MAX_AGE < time.time():
            return False
        return hmac.compare_digest(parts[3], self._signature(parts[1], issued))

    def revoke(self) -> None:
        """Refuse every ttwid issued so far, as TikTok does when it drops a session."""
        self._key = secrets.token_bytes(32)

    @staticmethod
    def new_ms_token() -> str:
        # TikTok's msTokens are 100-odd characters of URL-safe base64 ending in `=`.
        return _random_text(126) + "=="

    @staticmethod
    def new_csrf_token() -> str:
        return _random_text(32)
