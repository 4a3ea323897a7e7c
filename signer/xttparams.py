"""x-tt-params: the query encrypted with a fixed public AES key, sent as a header.

There is no secret here (key and IV are the same published constant); the header
only proves the client ran TikTok's web code, so decoding it is as easy as making it.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from signer.tokenerrors import TokenDecodeError

__all__ = ["decode_xtt_params", "encode_xtt_params"]

_KEY = b"webapp1.0+202106"
_SUFFIX = "is_encryption=1"
_CIPHER = Cipher(algorithms.AES(_KEY), modes.CBC(_KEY))
_BLOCK_BITS = 128


def _plaintext(query: str) -> str:
    return f"{query}&{_SUFFIX}" if query else _SUFFIX


def encode_xtt_params(query: str) -> str:
    """Encrypt a query (k=v pairs joined by '&', no '?') into an x-tt-params value."""
    padder = padding.PKCS7(_BLOCK_BITS).padder()
    padded = padder.update(_plaintext(query).encode("utf-8")) + padder.finalize()
    encryptor = _CIPHER.encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode("ascii")


def decode_xtt_params(value: str) -> str:
    """Decrypt an x-tt-params value back to the query, without `&is_encryption=1`.

    Raises TokenDecodeError when the value is not base64, not whole AES blocks, has
    bad padding, is not UTF-8, or does not end with the `is_encryption=1` marker.
    """
    try:
        sealed = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise TokenDecodeError("x-tt-params is not standard base64") from None
    if not sealed or len(sealed) % 16:
        raise TokenDecodeError(f"x-tt-params must be whole AES blocks, got {len(sealed)} bytes")
    decryptor = _CIPHER.decryptor()
    unpadder = padding.PKCS7(_BLOCK_BITS).unpadder()
    try:
        plain = unpadder.update(decryptor.update(sealed) + decryptor.finalize())
        plain += unpadder.finalize()
        text = plain.decode("utf-8")
    except ValueError:
        # Wrong padding or non-UTF-8 text: either way the value was not made with this key.
        raise TokenDecodeError("x-tt-params does not decrypt to a padded UTF-8 query") from None
    if text == _SUFFIX:
        return ""
    if not text.endswith("&" + _SUFFIX):
        raise TokenDecodeError(f"x-tt-params plaintext does not end with {_SUFFIX!r}")
    return text[: -len(_SUFFIX) - 1]
