"""X-Bogus against the public vectors, plus round trips, tampering and the helpers it uses."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signer.alphabet import STANDARD_B64_ALPHABET, decode_custom_b64, encode_custom_b64
from signer.rc4 import rc4
from signer.tokenerrors import TokenDecodeError
from signer.xbogus import (
    DEFAULT_HEADER,
    XBOGUS_ALPHABET,
    XBogusFields,
    decode_xbogus,
    encode_xbogus,
    verify_xbogus,
)

VECTORS_PATH = Path(__file__).parents[3] / "shared" / "vectors" / "xbogus.json"
UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
QUERY = "aid=1988&app_name=tiktok_web&device_platform=web_pc&msToken=&verifyFp=verify_x"

# No example database: tests must not write files into the tree.
PROPERTY = settings(database=None, deadline=None, max_examples=200)
U32 = st.integers(min_value=0, max_value=2**32 - 1)
BYTE = st.integers(min_value=0, max_value=255)


def _load_vectors() -> list[dict[str, Any]]:
    if not VECTORS_PATH.exists():
        return []
    vectors: list[dict[str, Any]] = json.loads(VECTORS_PATH.read_text())["vectors"]
    return vectors


VECTORS = _load_vectors()
SKIP_REASON = f"public X-Bogus vectors not found at {VECTORS_PATH}"
vector_cases = pytest.mark.parametrize(
    "vector",
    [pytest.param(v, id=v["expected"]) for v in VECTORS]
    or [pytest.param(None, id="absent", marks=pytest.mark.skip(reason=SKIP_REASON))],
)


def md5_tail(data: bytes) -> bytes:
    """The spec's 2-byte hash, computed here independently of the module."""
    return hashlib.md5(hashlib.md5(data).digest()).digest()[14:16]


# --- the public vectors -----------------------------------------------------------------


@vector_cases
def test_vector_encodes_byte_for_byte(vector: dict[str, Any]) -> None:
    token = encode_xbogus(
        vector["query"],
        vector["user_agent"],
        vector["timestamp"],
        vector["canvas"],
        tuple(vector["header"]),
    )
    assert token == vector["expected"]


@vector_cases
def test_vector_decodes_to_its_inputs_and_reencodes(vector: dict[str, Any]) -> None:
    fields = decode_xbogus(vector["expected"])
    assert (fields.h1, fields.h2) == tuple(vector["header"])
    assert fields.timestamp == vector["timestamp"]
    assert fields.canvas == vector["canvas"]
    assert fields.query_hash == md5_tail(vector["query"].encode())
    assert fields.body_hash == bytes([69, 63])
    again = encode_xbogus(
        vector["query"],
        vector["user_agent"],
        fields.timestamp,
        fields.canvas,
        (fields.h1, fields.h2),
    )
    assert again == vector["expected"]
    assert verify_xbogus(vector["expected"], vector["query"], vector["user_agent"])


@vector_cases
def test_vector_fails_verification_for_other_inputs(vector: dict[str, Any]) -> None:
    token, query, ua = vector["expected"], vector["query"], vector["user_agent"]
    assert not verify_xbogus(token, query + "&x=1", ua)
    assert not verify_xbogus(token, query.replace("aid=", "aib=", 1), ua)
    assert not verify_xbogus(token, query, ua.replace("Chrome", "Chrom3"))
    assert not verify_xbogus(token, query, ua, body=b'{"a":1}')


@vector_cases
def test_every_single_character_change_is_rejected(vector: dict[str, Any]) -> None:
    # 21 bytes fill 28 characters exactly and the XOR checksum covers every payload
    # byte, so no one-character edit can survive decoding.
    token = vector["expected"]
    for index, original in enumerate(token):
        for char in XBOGUS_ALPHABET:
            if char == original:
                continue
            with pytest.raises(TokenDecodeError):
                decode_xbogus(token[:index] + char + token[index + 1 :])


# --- round trips -------------------------------------------------------------------------


@PROPERTY
@given(
    query=st.text(),
    user_agent=st.text(),
    body=st.binary(),
    timestamp=U32,
    canvas=U32,
    header=st.tuples(BYTE, BYTE),
)
def test_round_trip(
    query: str, user_agent: str, body: bytes, timestamp: int, canvas: int, header: tuple[int, int]
) -> None:
    token = encode_xbogus(query, user_agent, timestamp, canvas, header, body)
    assert len(token) == 28
    assert token.startswith("DFSz")
    fields = decode_xbogus(token)
    assert (fields.h1, fields.h2) == header
    assert (fields.timestamp, fields.canvas) == (timestamp, canvas)
    assert fields.query_hash == md5_tail(query.encode("utf-8"))
    assert fields.body_hash == md5_tail(body)
    assert verify_xbogus(token, query, user_agent, body)


@PROPERTY
@given(query=st.text(min_size=1), index=st.integers(min_value=0), replacement=st.characters())
def test_changed_query_fails_unless_the_short_hash_collides(
    query: str, index: int, replacement: str
) -> None:
    index %= len(query)
    changed = query[:index] + replacement + query[index + 1 :]
    token = encode_xbogus(query, UA, 1_700_000_000, 123)
    # The query is bound by only 16 bits of md5, so a collision (1 in 65536) verifies;
    # the expectation says exactly that instead of hoping none turns up.
    collides = md5_tail(changed.encode()) == md5_tail(query.encode())
    assert verify_xbogus(token, changed, UA) is collides


def test_single_character_query_changes_fail() -> None:
    token = encode_xbogus(QUERY, UA, 1_700_000_000, 123)
    assert verify_xbogus(token, QUERY, UA)
    for index in range(len(QUERY)):
        changed = QUERY[:index] + ("_" if QUERY[index] != "_" else "-") + QUERY[index + 1 :]
        assert md5_tail(changed.encode()) != md5_tail(QUERY.encode())  # checks the test data
        assert not verify_xbogus(token, changed, UA)


def test_body_as_text_hashes_its_utf8() -> None:
    text = '{"name":"café"}'
    token = encode_xbogus(QUERY, UA, 1, 2, body=text)
    assert token == encode_xbogus(QUERY, UA, 1, 2, body=text.encode("utf-8"))
    assert verify_xbogus(token, QUERY, UA, body=text)
    assert not verify_xbogus(token, QUERY, UA)


def test_empty_body_hash_is_the_spec_constant() -> None:
    fields = decode_xbogus(encode_xbogus(QUERY, UA, 1, 2))
    assert fields.body_hash == bytes([69, 63])


def test_ua_hash_follows_the_spec_and_depends_on_the_header() -> None:
    for h1, h2 in [(0, 0), (1, 12), DEFAULT_HEADER]:
        scrambled = rc4(bytes([0, h1, h2]), UA.encode("latin-1"))
        expected = hashlib.md5(base64.b64encode(scrambled)).digest()[14:16]
        assert decode_xbogus(encode_xbogus(QUERY, UA, 1, 2, (h1, h2))).ua_hash == expected


def test_non_latin1_ua_uses_the_low_byte_of_each_utf16_unit() -> None:
    # The browser hashes charCodeAt(i) & 0xFF; an astral character is two code units.
    ua = "Mozilla/5.0 \u0141\U0001f600"
    units = bytes([0x4D, 0x6F, 0x7A, 0x69, 0x6C, 0x6C, 0x61, 0x2F, 0x35, 0x2E, 0x30, 0x20])
    units += bytes([0x41, 0x3D, 0x00])  # U+0141, then D83D DE00
    expected = hashlib.md5(base64.b64encode(rc4(bytes([0, 65, 14]), units))).digest()[14:16]
    assert decode_xbogus(encode_xbogus(QUERY, ua, 1, 2)).ua_hash == expected


def test_default_header_is_current_browsers() -> None:
    fields = decode_xbogus(encode_xbogus(QUERY, UA, 1, 2))
    assert (fields.h1, fields.h2) == DEFAULT_HEADER == (65, 14)


def test_fields_to_json_is_hex() -> None:
    fields = XBogusFields(1, 12, b"\x01\x02", b"E?", b"\xff\x00", 5, 6)
    assert fields.to_json() == {
        "h1": 1,
        "h2": 12,
        "query_hash": "0102",
        "body_hash": "453f",
        "ua_hash": "ff00",
        "timestamp": 5,
        "canvas": 6,
    }
    json.dumps(fields.to_json())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timestamp": -1}, "timestamp"),
        ({"timestamp": 2**32}, "timestamp"),
        ({"canvas": 2**32}, "canvas"),
        ({"header": (256, 0)}, "h1"),
        ({"header": (0, -1)}, "h2"),
    ],
)
def test_out_of_range_inputs_are_refused(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"timestamp": 1, "canvas": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        encode_xbogus(QUERY, UA, **args)


# --- malformed tokens --------------------------------------------------------------------


def _seal(payload19: bytes, prefix: bytes = b"\x02\xff") -> str:
    return encode_custom_b64(prefix + rc4(b"\xff", payload19), XBOGUS_ALPHABET, pad=False)


def _payload(magic: int = 64, zero: int = 0) -> bytes:
    body = bytes([magic, zero, 65, 14, 1, 2, 3, 4, 5, 6]) + (7).to_bytes(4, "big") * 2
    checksum = 0
    for b in body:
        checksum ^= b
    return body + bytes([checksum])


def test_hand_sealed_payload_decodes() -> None:
    fields = decode_xbogus(_seal(_payload()))
    assert fields == XBogusFields(65, 14, b"\x01\x02", b"\x03\x04", b"\x05\x06", 7, 7)


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("DFSzswSLfwUANnEftawINt9WcBj", "28 characters"),
        ("DFSzswSLfwUANnEftawINt9WcBj33", "28 characters"),
        ("DFSzswSLfwUANnEftawINt9WcBj+", "not in the alphabet"),
        ("DFSzswSLfwUANnEftawINt9WcBj=", "padding"),
        ("DFSzswSLfwUANnEftawINt9WcBjé", "not in the alphabet"),
        (_seal(_payload(), prefix=b"\x02\xfe"), "2, 255"),
        (_seal(_payload(magic=65)), "start with 64"),
        (_seal(_payload()[:-1] + b"\x00"), "checksum"),
        (_seal(_payload(zero=1)), "byte 1"),
    ],
)
def test_malformed_tokens_raise(token: str, message: str) -> None:
    with pytest.raises(TokenDecodeError, match=message):
        decode_xbogus(token)
    assert not verify_xbogus(token, QUERY, UA)


def test_token_decode_error_is_a_value_error() -> None:
    assert issubclass(TokenDecodeError, ValueError)


# --- RC4 and the alphabet codec ----------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "plain", "cipher_hex"),
    [
        # The classic published RC4 test vectors.
        (b"Key", b"Plaintext", "bbf316e8d940af0ad3"),
        (b"Wiki", b"pedia", "1021bf0420"),
        (b"Secret", b"Attack at dawn", "45a01f645fc35b383552544b9bf5"),
    ],
)
def test_rc4_known_answers(key: bytes, plain: bytes, cipher_hex: str) -> None:
    assert rc4(key, plain).hex() == cipher_hex
    assert rc4(key, bytes.fromhex(cipher_hex)) == plain


@PROPERTY
@given(key=st.binary(min_size=1, max_size=8), data=st.binary(max_size=700))
def test_rc4_is_its_own_inverse_and_prefix_stable(key: bytes, data: bytes) -> None:
    sealed = rc4(key, data)
    assert len(sealed) == len(data)
    assert rc4(key, sealed) == data
    # A stream cipher: a shorter message gets a prefix of the same keystream.
    assert rc4(key, data[: len(data) // 2]) == sealed[: len(data) // 2]


@PROPERTY
@given(data=st.binary(max_size=100), pad=st.booleans())
def test_custom_b64_with_the_standard_alphabet_is_base64(data: bytes, pad: bool) -> None:
    expected = base64.b64encode(data).decode()
    text = encode_custom_b64(data, STANDARD_B64_ALPHABET, pad)
    assert text == (expected if pad else expected.rstrip("="))
    assert decode_custom_b64(text, STANDARD_B64_ALPHABET) == data


@PROPERTY
@given(data=st.binary(max_size=100), pad=st.booleans())
def test_custom_b64_round_trip(data: bytes, pad: bool) -> None:
    text = encode_custom_b64(data, XBOGUS_ALPHABET, pad)
    assert set(text.rstrip("=")) <= set(XBOGUS_ALPHABET)
    assert decode_custom_b64(text, XBOGUS_ALPHABET) == data


def test_custom_b64_is_big_endian_6_bit_groups() -> None:
    # 0x02 0xFF 0x00 -> groups 0, 47, 60, 0.
    assert encode_custom_b64(b"\x02\xff\x00", XBOGUS_ALPHABET, pad=False) == "D" + (
        XBOGUS_ALPHABET[47] + XBOGUS_ALPHABET[60] + "D"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("DFSzD", "cannot have 5"),
        ("D", "cannot have 1"),
        ("DF===", "padding"),
        ("DFSz=", "padding"),
        ("D=Sz", "not in the alphabet"),
        ("DF+z", "not in the alphabet"),
    ],
)
def test_custom_b64_rejects_malformed_text(text: str, message: str) -> None:
    with pytest.raises(TokenDecodeError, match=message):
        decode_custom_b64(text, XBOGUS_ALPHABET)


def test_custom_b64_rejects_set_unused_bits() -> None:
    # "DF" carries 12 bits for one byte; 'F' has its low bits set.
    assert XBOGUS_ALPHABET.index("F") & 0b1111
    with pytest.raises(TokenDecodeError, match="unused bits"):
        decode_custom_b64("DF", XBOGUS_ALPHABET)
    assert decode_custom_b64("DD", XBOGUS_ALPHABET) == b"\x00"
