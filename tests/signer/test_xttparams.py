"""x-tt-params against the spec's examples, round trips and malformed values."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from signer.tokenerrors import TokenDecodeError
from signer.xttparams import decode_xtt_params, encode_xtt_params

PROPERTY = settings(database=None, deadline=None)
KEY = b"webapp1.0+202106"

SPEC_EXAMPLES = [
    ("", "1BLhm+0j/AG2Dlsz3v4u4w=="),
    ("aid=1988&count=30", "mb+z3Pl1d/bc+N0SKnc7nS/NviSlH9Z9tBDVDTo4Fl/oL7XZztHicmJ+WbzsqEDx"),
]


def _encrypt_raw(plain: bytes) -> str:
    """Encrypt bytes already padded to whole blocks, to forge odd plaintexts."""
    assert len(plain) % 16 == 0
    encryptor = Cipher(algorithms.AES(KEY), modes.CBC(KEY)).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


@pytest.mark.parametrize(("query", "expected"), SPEC_EXAMPLES)
def test_spec_examples_encode(query: str, expected: str) -> None:
    assert encode_xtt_params(query) == expected


@pytest.mark.parametrize(("query", "value"), SPEC_EXAMPLES)
def test_spec_examples_decode(query: str, value: str) -> None:
    assert decode_xtt_params(value) == query


@PROPERTY
@given(query=st.text())
def test_round_trip(query: str) -> None:
    value = encode_xtt_params(query)
    assert len(base64.b64decode(value)) % 16 == 0
    assert decode_xtt_params(value) == query


def _forge(text: bytes) -> str:
    """Encrypt any bytes with correct PKCS7 padding."""
    pad = 16 - len(text) % 16
    return _encrypt_raw(text + bytes([pad]) * pad)


def test_plaintext_is_pkcs7_padded_query_and_marker() -> None:
    # Nineteen bytes of text pad to two blocks, the last 13 bytes each 13.
    plain = b"a=1&is_encryption=1" + bytes([13]) * 13
    assert encode_xtt_params("a=1") == _encrypt_raw(plain)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not base64!", "base64"),
        ("", "whole AES blocks"),
        (base64.b64encode(b"x" * 15).decode(), "whole AES blocks"),
        (_encrypt_raw(b"a=1&is_encryption=1" + bytes([0]) * 13), "padded UTF-8"),
        (_forge(b"\xff\xfe=1&is_encryption=1"), "padded UTF-8"),
        (_forge(b"a=1&b=2"), "is_encryption=1"),
        (_forge(b"a=1is_encryption=1"), "is_encryption=1"),
        (_forge(b""), "is_encryption=1"),
    ],
)
def test_malformed_values_raise(value: str, message: str) -> None:
    with pytest.raises(TokenDecodeError, match=message):
        decode_xtt_params(value)
