"""X-Bogus: the 28-character request fingerprint (see specs/signing.md).

The token binds 2-byte md5 tails of the query, the body and an RC4-scrambled
User-Agent to a timestamp and a canvas value, behind an XOR checksum and RC4.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass
from functools import lru_cache, reduce
from operator import xor

from signer.alphabet import decode_custom_b64, encode_custom_b64, to_utf8
from signer.rc4 import rc4
from signer.tokenerrors import TokenDecodeError

__all__ = [
    "DEFAULT_HEADER",
    "XBOGUS_ALPHABET",
    "XBogusFields",
    "decode_xbogus",
    "encode_xbogus",
    "verify_xbogus",
]

XBOGUS_ALPHABET = "Dkdpgh4ZKsQB80/Mfvw36XI1R25-WUAlEi7NLboqYTOPuzmFjJnryx9HVGcaStCe"
DEFAULT_HEADER = (65, 14)
TOKEN_LENGTH = 28
_RAW_LENGTH = 21

_PREFIX = b"\x02\xff"
_OUTER_KEY = b"\xff"
_MAGIC = 64
# magic, zero, h1, h2, query/body/UA tails, timestamp, canvas: 18 bytes.
_PAYLOAD = struct.Struct(">BBBB2s2s2sII")
_U32 = 0xFFFFFFFF


def _md5_tail(data: bytes) -> bytes:
    return hashlib.md5(hashlib.md5(data).digest()).digest()[14:16]


_EMPTY_BODY_TAIL = _md5_tail(b"")


def _body_tail(body: bytes | str) -> bytes:
    if not body:
        return _EMPTY_BODY_TAIL
    return _md5_tail(to_utf8(body) if isinstance(body, str) else body)


@lru_cache(maxsize=256)
def _ua_tail(user_agent: str, h1: int, h2: int) -> bytes:
    # One byte per UTF-16 code unit (its low byte), as the browser's charCodeAt
    # gives it; for the Latin-1 text of real UAs this is simply Latin-1.
    ua_bytes = user_agent.encode("utf-16-le", "surrogatepass")[::2]
    scrambled = base64.b64encode(rc4(bytes((0, h1, h2)), ua_bytes))
    return hashlib.md5(scrambled).digest()[14:16]


@dataclass(frozen=True, slots=True)
class XBogusFields:
    """What an X-Bogus token carries; the hashes are the 2-byte md5 tails."""

    h1: int
    h2: int
    query_hash: bytes
    body_hash: bytes
    ua_hash: bytes
    timestamp: int
    canvas: int

    def to_json(self) -> dict[str, object]:
        """A JSON-ready view, hashes as hex."""
        return {
            "h1": self.h1,
            "h2": self.h2,
            "query_hash": self.query_hash.hex(),
            "body_hash": self.body_hash.hex(),
            "ua_hash": self.ua_hash.hex(),
            "timestamp": self.timestamp,
            "canvas": self.canvas,
        }


def _check_range(name: str, value: int, top: int) -> None:
    if not 0 <= value <= top:
        raise ValueError(f"{name} must be in 0..{top}, got {value}")


def encode_xbogus(
    query: str,
    user_agent: str,
    timestamp: int,
    canvas: int,
    header: tuple[int, int] = DEFAULT_HEADER,
    body: bytes | str = b"",
) -> str:
    """Compute the X-Bogus token for a query string (no '?'), body and User-Agent.

    `timestamp` is Unix seconds and `canvas` the profile's canvas fingerprint, both
    unsigned 32-bit; `header` is the (h1, h2) pair of the browser build imitated.
    """
    h1, h2 = header
    _check_range("h1", h1, 0xFF)
    _check_range("h2", h2, 0xFF)
    _check_range("timestamp", timestamp, _U32)
    _check_range("canvas", canvas, _U32)
    payload = _PAYLOAD.pack(
        _MAGIC,
        0,
        h1,
        h2,
        _md5_tail(to_utf8(query)),
        _body_tail(body),
        _ua_tail(user_agent, h1, h2),
        timestamp,
        canvas,
    )
    sealed = payload + bytes((reduce(xor, payload),))
    return encode_custom_b64(_PREFIX + rc4(_OUTER_KEY, sealed), XBOGUS_ALPHABET, pad=False)


def decode_xbogus(token: str) -> XBogusFields:
    """Unpack an X-Bogus token; raises TokenDecodeError if it is not well formed."""
    if len(token) != TOKEN_LENGTH:
        raise TokenDecodeError(f"X-Bogus has {TOKEN_LENGTH} characters, got {len(token)}")
    raw = decode_custom_b64(token, XBOGUS_ALPHABET)
    if len(raw) != _RAW_LENGTH:
        raise TokenDecodeError("X-Bogus carries 21 bytes in 28 characters, without '=' padding")
    if raw[:2] != _PREFIX:
        raise TokenDecodeError(f"X-Bogus must start with bytes 2, 255, got {list(raw[:2])}")
    sealed = rc4(_OUTER_KEY, raw[2:])
    if sealed[0] != _MAGIC:
        raise TokenDecodeError(f"X-Bogus payload must start with {_MAGIC}, got {sealed[0]}")
    if reduce(xor, sealed) != 0:
        raise TokenDecodeError("X-Bogus checksum does not match")
    _magic, zero, h1, h2, q, b, u, timestamp, canvas = _PAYLOAD.unpack(sealed[:-1])
    # The encoder always writes 0 here; anything else would not re-encode to the
    # same token, so it is not a token any signer made.
    if zero != 0:
        raise TokenDecodeError(f"X-Bogus payload byte 1 must be 0, got {zero}")
    return XBogusFields(h1, h2, q, b, u, timestamp, canvas)


def verify_xbogus(token: str, query: str, user_agent: str, body: bytes | str = b"") -> bool:
    """True when the token is well formed and fingerprints this query, body and UA."""
    try:
        fields = decode_xbogus(token)
    except TokenDecodeError:
        return False
    return (
        fields.query_hash == _md5_tail(to_utf8(query))
        and fields.body_hash == _body_tail(body)
        and fields.ua_hash == _ua_tail(user_agent, fields.h1, fields.h2)
    )
