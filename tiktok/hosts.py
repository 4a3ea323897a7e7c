"""TikTok's real hosts, and the seam between the URL we sign and the one we call.

The signer signs TikTok URLs only (its host allow-list), and a signature covers the query,
not the host. So the client always builds the canonical `https://webcast.tiktok.com/...` URL,
has it signed, and only then moves it onto the configured base (`SIGNER_TIKTOK_WEBCAST_URL`:
TikTok itself, or a local TikTok such as the sandbox) without touching a byte of the query.
"""

from __future__ import annotations

__all__ = ["TIKTOK_ORIGIN", "TIKTOK_REFERER", "WEBCAST_ORIGIN", "rebase"]

WEBCAST_ORIGIN = "https://webcast.tiktok.com"
# What a browser on www.tiktok.com sends as Origin and Referer, whichever host we call.
TIKTOK_ORIGIN = "https://www.tiktok.com"
TIKTOK_REFERER = "https://www.tiktok.com/"


def rebase(url: str, canonical: str, base: str) -> str:
    """`url` (starting with `canonical`) moved onto `base`, path and query unchanged."""
    if not url.startswith(canonical + "/"):
        raise ValueError(f"expected a URL under {canonical}")
    return base + url[len(canonical) :]
