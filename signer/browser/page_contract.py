"""What Python and the in-page bundle (`signer/bundle/signer.js`, `signBatch`) hand each
other, as types: one `PageItem` per request in, one `PageResult` per item out.

The names are the JavaScript ones (camelCase), since these dictionaries cross the
DevTools protocol as they are; `pool.py` builds the items and reads the results.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

__all__ = ["GnarlyDraw", "PageFailed", "PageItem", "PageResult", "PageSigned"]


class PageItem(TypedDict):
    """One request for `signBatch`."""

    query: str  # the query as the navigator sends it (verifyFp and msToken added in the page)
    userAgent: str
    msToken: str | None
    includeVerifyFp: bool
    bodyBase64: NotRequired[str]  # the request's body, when it has one
    body: NotRequired[str]  # a text body instead (bodyBase64 wins when both are given)
    url: NotRequired[str]  # the whole URL, for TikTok's own SDK (vendor mode)
    # Fixed where the page would draw them, so a test can compare with pure Python.
    verifyFp: NotRequired[str]
    timestamp: NotRequired[int]
    canvas: NotRequired[int]
    header: NotRequired[list[int]]
    gnarly: NotRequired[GnarlyDraw]


class GnarlyDraw(TypedDict):
    """The random draws of one X-Gnarly, fixed (tests only)."""

    key: list[int]
    counter: int
    random16: int
    random32: int


class PageSigned(TypedDict):
    """The tokens the page computed for one item (`signOne`'s return value)."""

    query: str  # the final query the tokens cover
    xBogus: str
    xGnarly: str
    xttParams: str
    verifyFp: str
    timestamp: int
    canvas: int
    userAgent: str
    header: list[int]
    signature: NotRequired[str]  # TikTok's `_signature`, in vendor mode only
    engineXBogus: NotRequired[str]  # "vendor" when TikTok's SDK made the X-Bogus


class PageFailed(TypedDict):
    """An item the page could not sign, and why."""

    error: str


PageResult = PageSigned | PageFailed
