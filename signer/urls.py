"""Validating a `SignRequest` and shaping its query before any engine sees it.

The query is handled as raw `key=value` segments so the caller's own encoding survives:
the server hashes the bytes it receives, and re-encoding would change them.

The host is read strictly, because Python's `urlsplit` and a browser's WHATWG URL parser
disagree on odd input: `https://evil.com\\.tiktok.com/` is host `evil.com\\.tiktok.com` to
Python but `evil.com` to a browser. Rather than reimplement WHATWG, every character or
shape on which the two could differ is refused: backslashes, userinfo, IP literals,
percent signs, non-ASCII (IDN must come as punycode), empty labels and trailing dots.
What is left is plain `label.label` ASCII, which every parser reads the same way.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import SplitResult, quote, unquote, urlsplit

from .config import SignerSettings
from .errors import InvalidSignRequest
from .models import Navigator, SignRequest
from .mstoken import mint_ms_token
from .profiles import os_param_for_platform

__all__ = [
    "METHODS",
    "MS_TOKEN_PATTERN",
    "PreparedRequest",
    "append_tokens",
    "bad_text",
    "host_allowed",
    "prepare_request",
    "rewrite_query",
    "split_url",
    "tiktok_query_values",
]

# Tokens we compute ourselves: a stale one left in the URL would corrupt the new signature.
_STRIPPED_KEYS = frozenset({"X-Bogus", "X-Gnarly", "msToken", "_signature"})
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_METHODS = frozenset(METHODS)
# What the page appends without escaping; anything else in a token is refused rather than
# silently re-encoded into a different value. The API's OpenAPI document shows the same.
MS_TOKEN_PATTERN = r"[A-Za-z0-9_\-=.]{0,4096}"
_MS_TOKEN_RE = re.compile(MS_TOKEN_PATTERN)
# C0 controls and DEL make no sense in a URL or a header; a lone surrogate cannot be
# encoded as UTF-8 at all, so it would blow up whatever encodes it (quote(), a socket).
_CONTROL_RE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
# One DNS label as every URL parser reads it alike: ASCII letters, digits, `-` and `_`.
# Written out rather than IGNORECASE, which would let the Kelvin sign match `k`.
_LABEL = r"[A-Za-z0-9_-]{1,63}"
_HOST_RE = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}")
# WHATWG reads a host whose last label is a number (decimal, 0x hex, octal) as IPv4.
_NUMERIC_LABEL_RE = re.compile(r"(?:0[xX][0-9A-Fa-f]*|[0-9]+)")
_PORT_RE = re.compile(r"[0-9]{0,5}")
MAX_HOST_LENGTH = 253


def bad_text(value: str, *, controls: bool = True) -> str | None:
    """What makes `value` unfit to pass on, or None: a lone surrogate (not encodable),
    or, when `controls`, a control character (NUL, CR, LF, ...)."""
    found = (_CONTROL_RE if controls else _SURROGATE_RE).search(value)
    if found is None:
        return None
    char = found.group()
    if _SURROGATE_RE.fullmatch(char):
        return f"contains an unpaired surrogate (U+{ord(char):04X}), which cannot be encoded"
    return f"contains a control character (U+{ord(char):04X})"


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """A validated request: where it goes, its cleaned query and what to sign it with."""

    url: str  # as given (without fragment), for the vendor script's `_signature`
    base: str  # scheme://host/path, without `?`
    query: str  # without X-Bogus, X-Gnarly, msToken and _signature
    body: bytes
    user_agent: str | None
    ms_token: str
    ms_token_minted: bool
    include_verify_fp: bool
    rewrite_params: bool
    deadline: float  # Unix seconds

    def query_for(self, navigator: Navigator) -> str:
        """The query to sign for a context presenting `navigator`."""
        if not self.rewrite_params:
            return self.query
        return _query_for(self.query, navigator)


def host_allowed(host: str, patterns: list[str]) -> bool:
    """Whether `host` matches one of `patterns` (`*.example.com` matches subdomains only)."""
    host = host.lower().rstrip(".")
    for pattern in patterns:
        pattern = pattern.lower().rstrip(".")
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern:
            return True
    return False


def split_url(url: str) -> tuple[SplitResult, str]:
    """`url` split, and its host lower-cased; raises `InvalidSignRequest` ("url") for
    anything malformed or read differently by a browser (see the module docstring)."""
    problem = bad_text(url)
    if problem is not None or " " in url:
        reason = problem or "contains a space"
        raise InvalidSignRequest("url", f"{reason}; percent-encode spaces and control characters")
    if "\\" in url:
        raise InvalidSignRequest(
            "url", "contains a backslash, which browsers read as '/'; percent-encode it"
        )
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise InvalidSignRequest("url", f"is not a valid URL ({error})") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidSignRequest("url", "must start with http:// or https://")
    netloc = parts.netloc
    if "@" in netloc:
        raise InvalidSignRequest("url", "must not carry credentials")
    if not netloc:
        raise InvalidSignRequest("url", "has no host")
    if netloc.startswith("["):
        raise InvalidSignRequest("url", "host must be a TikTok host name, not an IP address")
    host, _, port = netloc.partition(":")
    if not _PORT_RE.fullmatch(port) or (port and int(port) > 65535):
        raise InvalidSignRequest("url", f"is not a valid URL (port {port!r})")
    if not host:
        raise InvalidSignRequest("url", "has no host")
    if len(host) > MAX_HOST_LENGTH or not _HOST_RE.fullmatch(host):
        raise InvalidSignRequest(
            "url",
            f"host {host!r} is not a plain DNS name (ASCII letters, digits, '-' and '_' in "
            "non-empty labels, no trailing dot; IDN hosts as punycode)",
        )
    if _NUMERIC_LABEL_RE.fullmatch(host.rpartition(".")[2]):
        raise InvalidSignRequest("url", "host must be a TikTok host name, not an IP address")
    return parts, host.lower()


def prepare_request(request: SignRequest, settings: SignerSettings) -> PreparedRequest:
    """Validate `request` and strip stale tokens; raises `InvalidSignRequest`, and only
    that, for anything wrong with the request."""
    url = request.url
    if not isinstance(url, str) or not url.strip():
        raise InvalidSignRequest("url", "is empty; pass the TikTok URL to sign")
    url = url.strip()
    parts, host = split_url(url)  # first: it refuses what `encode()` below cannot encode
    if len(url.encode()) > settings.max_url_length:
        raise InvalidSignRequest(
            "url", f"is longer than {settings.max_url_length} bytes; send the request's own URL"
        )
    if not host_allowed(host, settings.allowed_hosts):
        allowed = ", ".join(settings.allowed_hosts)
        raise InvalidSignRequest("url", f"host {host!r} is not allowed; allowed hosts: {allowed}")

    method = request.method.upper() if isinstance(request.method, str) else ""
    if method not in _METHODS:
        raise InvalidSignRequest("method", f"must be one of {', '.join(sorted(_METHODS))}")

    if isinstance(request.body, str):
        problem = bad_text(request.body, controls=False)  # a body may hold newlines
        if problem is not None:
            raise InvalidSignRequest("body", problem)
        body = request.body.encode()
    elif isinstance(request.body, bytes | bytearray | memoryview):
        body = bytes(request.body)
    else:
        raise InvalidSignRequest("body", "must be text or bytes")
    if len(body) > settings.max_body_bytes:
        raise InvalidSignRequest("body", f"is larger than {settings.max_body_bytes} bytes")

    user_agent = request.user_agent
    if user_agent is not None and not isinstance(user_agent, str):
        raise InvalidSignRequest("user_agent", "must be text")
    if user_agent is not None:
        user_agent = user_agent.strip()
        if not user_agent:
            user_agent = None
        elif len(user_agent) > 1024 or _CONTROL_RE.search(user_agent):
            raise InvalidSignRequest(
                "user_agent", "must be at most 1024 characters without control characters"
            )

    query, url_ms_token, has_verify_fp = _clean_query(parts.query)
    ms_token = request.ms_token if request.ms_token else url_ms_token
    minted = False
    if not ms_token and request.mint_ms_token:
        ms_token, minted = mint_ms_token(), True
    ms_token = ms_token or ""
    if not isinstance(ms_token, str) or not _MS_TOKEN_RE.fullmatch(ms_token):
        raise InvalidSignRequest(
            "ms_token", "must be base64url text (letters, digits, - _ = .) of at most 4096 chars"
        )

    deadline = request.deadline
    if deadline is None:
        deadline = time.time() + settings.default_deadline
    elif isinstance(deadline, bool) or not isinstance(deadline, int | float):
        # Compared with the clock after signing: a wrong type would fail the whole batch.
        raise InvalidSignRequest("deadline", "must be a Unix time in seconds")
    rewrite = settings.rewrite_params if request.rewrite_params is None else request.rewrite_params
    base = f"{parts.scheme}://{parts.netloc}{parts.path or '/'}"
    return PreparedRequest(
        url=f"{base}?{parts.query}" if parts.query else base,
        base=base,
        query=query,
        body=body,
        user_agent=user_agent,
        ms_token=ms_token,
        ms_token_minted=minted,
        include_verify_fp=request.include_verify_fp and not has_verify_fp,
        rewrite_params=rewrite,
        deadline=deadline,
    )


def _clean_query(query: str) -> tuple[str, str, bool]:
    """Drop stale tokens; return the query, the URL's msToken and whether verifyFp is set."""
    kept: list[str] = []
    ms_token = ""
    has_verify_fp = False
    for segment in query.split("&"):
        if not segment:
            continue
        key = _key(segment)
        if key in _STRIPPED_KEYS:
            if key == "msToken":
                ms_token = unquote(segment.partition("=")[2])
            continue
        if key == "verifyFp":
            has_verify_fp = True
        kept.append(segment)
    return "&".join(kept), ms_token, has_verify_fp


def tiktok_query_values(navigator: Navigator) -> dict[str, str]:
    """The query parameters TikTok's web client derives from the browser."""
    return {
        "browser_name": navigator.browser_name,
        "browser_version": navigator.browser_version,
        "browser_platform": navigator.platform,
        "browser_language": navigator.language,
        "os": os_param_for_platform(navigator.platform),
        "screen_width": str(navigator.screen_width),
        "screen_height": str(navigator.screen_height),
    }


@lru_cache(maxsize=64)
def _encoded_values(navigator: Navigator) -> dict[str, str]:
    # A handful of navigators serve millions of requests: encode their values once.
    return {key: quote(value, safe="") for key, value in tiktok_query_values(navigator).items()}


def _key(segment: str) -> str:
    key = segment.partition("=")[0]
    return unquote(key) if "%" in key else key


def rewrite_query(query: str, values: Mapping[str, str]) -> str:
    """Replace the values of those keys of `values` that the query already has."""
    return _rewrite({key: quote(value, safe="") for key, value in values.items()}, query)


def _rewrite(encoded: Mapping[str, str], query: str) -> str:
    if not query:
        return query
    out: list[str] = []
    for segment in query.split("&"):
        key = _key(segment)
        value = encoded.get(key)
        out.append(segment if value is None else f"{segment.partition('=')[0]}={value}")
    return "&".join(out)


@lru_cache(maxsize=4096)
def _query_for(query: str, navigator: Navigator) -> str:
    # Cached: the engine and the self-check both ask for the same request's query.
    return _rewrite(_encoded_values(navigator), query)


def append_tokens(query: str, verify_fp: str, ms_token: str) -> str:
    """The query the tokens cover: `verifyFp` (when set) then `msToken`, always present."""
    if verify_fp:
        query = f"{query}&verifyFp={verify_fp}" if query else f"verifyFp={verify_fp}"
    return f"{query}&msToken={ms_token}" if query else f"msToken={ms_token}"
