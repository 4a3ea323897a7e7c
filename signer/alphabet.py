"""Text helpers shared by the tokens: base64 over a custom alphabet, and UTF-8.

Both X-Bogus and X-Gnarly use ordinary base64 mechanics (3 bytes to 4 characters,
big-endian 6-bit groups) with a shuffled alphabet. Rather than walking bits in Python,
we let the C base64 codec do the work and translate between alphabets, which is an
order of magnitude faster for the short strings signed per request.
"""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache

from signer.tokenerrors import TokenDecodeError

__all__ = ["STANDARD_B64_ALPHABET", "decode_custom_b64", "encode_custom_b64", "to_utf8"]

STANDARD_B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

# Never a valid base64 character, so anything mapped to it makes the C decoder fail.
_INVALID = ord("!")


def _check_alphabet(alphabet: str) -> None:
    if len(alphabet) != 64 or len(set(alphabet)) != 64 or "=" in alphabet:
        raise ValueError("a base64 alphabet needs 64 distinct characters and no '='")
    if not alphabet.isascii():
        raise ValueError("a base64 alphabet must be ASCII")


# bytes.translate with a 256-byte table is a plain C loop; str.translate with a dict
# is several times slower, and these run on every token.
@lru_cache(maxsize=16)
def _encode_table(alphabet: str) -> bytes:
    _check_alphabet(alphabet)
    return bytes.maketrans(STANDARD_B64_ALPHABET.encode(), alphabet.encode())


@lru_cache(maxsize=16)
def _decode_table(alphabet: str) -> bytes:
    _check_alphabet(alphabet)
    # A standard character that the custom alphabet lacks (X-Bogus has no '+') must
    # not pass through as itself, nor an '=' inside the text: both become invalid.
    table = bytearray([_INVALID]) * 256
    for index, char in enumerate(alphabet):
        table[ord(char)] = ord(STANDARD_B64_ALPHABET[index])
    return bytes(table)


def encode_custom_b64(data: bytes, alphabet: str, pad: bool) -> str:
    """Encode bytes as base64 over `alphabet`, with or without '=' padding."""
    text = base64.b64encode(data).translate(_encode_table(alphabet)).decode("ascii")
    return text if pad else text.rstrip("=")


def decode_custom_b64(text: str, alphabet: str) -> bytes:
    """Decode base64 over `alphabet`; '=' padding is optional but must be right if present.

    Raises TokenDecodeError for a character outside the alphabet, a length no
    encoder produces, wrong padding, or non-zero unused bits in the last character
    (which would let several strings decode to the same bytes).
    """
    table = _decode_table(alphabet)
    body = text.rstrip("=")
    pad = len(text) - len(body)
    missing = -len(body) % 4
    if len(body) % 4 == 1:
        raise TokenDecodeError(f"a base64 text cannot have {len(body)} data characters")
    if pad and pad != missing:
        raise TokenDecodeError(f"wrong padding: {pad} '=' after {len(body)} characters")
    try:
        standard = body.encode("ascii").translate(table) + b"=" * missing
        data = base64.b64decode(standard, validate=True)
    except (binascii.Error, ValueError):
        bad = next((c for c in body if c not in alphabet), "?")
        raise TokenDecodeError(f"character {bad!r} is not in the alphabet") from None
    if missing:
        # 2 data characters carry 12 bits for 8, 3 carry 18 for 16: the rest must be 0.
        unused = (1 << (2 * missing)) - 1
        if alphabet.index(body[-1]) & unused:
            raise TokenDecodeError("the last character has unused bits set")
    return data


def to_utf8(text: str) -> bytes:
    """UTF-8 bytes of `text`, the way a browser's TextEncoder produces them.

    Python strings may hold lone surrogates, which strict UTF-8 refuses. A browser
    turns them into U+FFFD and joins a surrogate pair into one character, and the
    signature must hash what the browser hashes, so we do the same.
    """
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        units = text.encode("utf-16-le", "surrogatepass")
        return units.decode("utf-16-le", "replace").encode("utf-8")
