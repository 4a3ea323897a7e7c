"""Checking an im/fetch request's X-Bogus and X-Gnarly as TikTok would: against its own query.

The tokens are the last parameters of a signed URL and fingerprint everything before them,
so the query they cover is the raw query (bytes as sent, never re-encoded) with the token
pairs taken out. Both must match that query, an empty body and the request's User-Agent;
the pure-Python decoders in `signer/` are the same ones our own self-check uses.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import unquote

from signer.xbogus import verify_xbogus
from signer.xgnarly import verify_xgnarly

__all__ = ["TOKEN_KEYS", "Verdict", "split_signed_query", "verify_signed_query"]

TOKEN_KEYS = frozenset({"X-Bogus", "X-Gnarly"})
Verdict = Literal["ok", "unsigned", "bad_signature"]


def split_signed_query(raw_query: str) -> tuple[str, dict[str, str]]:
    """(the query the tokens cover, {token name: decoded token})."""
    kept: list[str] = []
    tokens: dict[str, str] = {}
    for pair in raw_query.split("&") if raw_query else []:
        key, _, value = pair.partition("=")
        if key in TOKEN_KEYS:
            # Some HTTP stacks percent-encode `/` and `=` in the token; the value is the same.
            tokens[key] = unquote(value)
        else:
            kept.append(pair)
    return "&".join(kept), tokens


def verify_signed_query(raw_query: str, user_agent: str) -> Verdict:
    """`ok` when both tokens are present and cover this query and User-Agent."""
    query, tokens = split_signed_query(raw_query)
    xbogus, xgnarly = tokens.get("X-Bogus"), tokens.get("X-Gnarly")
    if not xbogus or not xgnarly:
        return "unsigned"
    if verify_xbogus(xbogus, query, user_agent) and verify_xgnarly(xgnarly, query, user_agent):
        return "ok"
    return "bad_signature"
