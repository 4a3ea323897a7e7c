"""Tell which kind of token a string is and decode it (for `signer token decode`)."""

from __future__ import annotations

from datetime import UTC, datetime

from signer.tokenerrors import TokenDecodeError
from signer.verifyfp import verify_fp_time_ms
from signer.xbogus import TOKEN_LENGTH as XBOGUS_LENGTH
from signer.xbogus import decode_xbogus
from signer.xgnarly import decode_xgnarly
from signer.xttparams import decode_xtt_params

__all__ = ["KIND_VERIFY_FP", "KIND_XBOGUS", "KIND_XGNARLY", "KIND_XTT_PARAMS", "decode_token"]

KIND_XBOGUS = "x-bogus"
KIND_VERIFY_FP = "verifyFp"
KIND_XGNARLY = "x-gnarly"
KIND_XTT_PARAMS = "x-tt-params"

# Every X-Bogus starts with the bytes 2, 255, which encode to these characters.
_XBOGUS_START = "DFSz"


def _verify_fp_json(token: str) -> dict[str, object]:
    ms = verify_fp_time_ms(token)
    issued = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return {"time_ms": ms, "time": issued.isoformat(timespec="milliseconds")}


def _xtt_params_json(token: str) -> dict[str, object]:
    query = decode_xtt_params(token)
    pairs = [pair.partition("=")[::2] for pair in query.split("&")] if query else []
    return {"query": query, "pairs": [list(pair) for pair in pairs]}


def decode_token(token: str) -> tuple[str, dict[str, object]]:
    """Return (kind, JSON-ready fields) for an X-Bogus, verifyFp, X-Gnarly or x-tt-params.

    A string shaped like X-Bogus or verifyFp is decoded as that kind only, so its own
    error is reported. Otherwise X-Gnarly and then x-tt-params are tried; both have
    integrity checks, so a string cannot pass for the wrong one by accident.
    Raises TokenDecodeError, saying why each kind was rejected, when none fits.
    """
    token = token.strip()
    if len(token) == XBOGUS_LENGTH and token.startswith(_XBOGUS_START):
        return KIND_XBOGUS, decode_xbogus(token).to_json()
    if token.startswith("verify_"):
        return KIND_VERIFY_FP, _verify_fp_json(token)
    try:
        return KIND_XGNARLY, decode_xgnarly(token).to_json()
    except TokenDecodeError as gnarly_error:
        try:
            return KIND_XTT_PARAMS, _xtt_params_json(token)
        except TokenDecodeError as tt_error:
            raise TokenDecodeError(
                "not a known token: not X-Bogus (28 characters starting 'DFSz'), "
                f"not verifyFp (starts 'verify_'), not X-Gnarly ({gnarly_error}), "
                f"not x-tt-params ({tt_error})"
            ) from None
