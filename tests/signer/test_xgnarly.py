"""X-Gnarly: the cipher against a plain reference, the contract's layout, round trips, errors."""

from __future__ import annotations

import hashlib
import json
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signer.alphabet import decode_custom_b64, encode_custom_b64
from signer.gnarlycipher import gnarly_keystream, gnarly_xor, key_words, round_count
from signer.tokenerrors import TokenDecodeError
from signer.xgnarly import (
    XGNARLY_ALPHABET,
    GnarlyRandomness,
    XGnarlyFields,
    decode_xgnarly,
    encode_xgnarly,
    verify_xgnarly,
)

PROPERTY = settings(database=None, deadline=None, max_examples=150)
U32 = st.integers(min_value=0, max_value=2**32 - 1)
U16 = st.integers(min_value=0, max_value=2**16 - 1)
UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
QUERY = "WebIdLastTime=1700000000&aid=1988&app_name=tiktok_web&msToken=&verifyFp=verify_x"
KEY = bytes(range(7, 7 + 48))
FIXED = GnarlyRandomness(key=KEY, counter=123_456_789, random16=0xBEEF, random32=0xDEADBEEF)
CONSTANTS = [1196819126, 600974999, 3863347763, 1451689750]
MASK = 0xFFFFFFFF

randomness_strategy = st.builds(
    GnarlyRandomness,
    key=st.binary(min_size=48, max_size=48),
    counter=st.integers(min_value=0, max_value=2**31 - 1),
    random16=U16,
    random32=U32,
)


# --- a deliberately plain reference of the cipher, written from the contract -------------


def _rotl(v: int, r: int) -> int:
    return ((v << r) | (v >> (32 - r))) & MASK


def _quarter(x: list[int], a: int, b: int, c: int, d: int) -> None:
    x[a] = (x[a] + x[b]) & MASK
    x[d] = _rotl(x[d] ^ x[a], 16)
    x[c] = (x[c] + x[d]) & MASK
    x[b] = _rotl(x[b] ^ x[c], 12)
    x[a] = (x[a] + x[b]) & MASK
    x[d] = _rotl(x[d] ^ x[a], 8)
    x[c] = (x[c] + x[d]) & MASK
    x[b] = _rotl(x[b] ^ x[c], 7)


def reference_keystream(key: bytes, length: int) -> bytes:
    kw = list(struct.unpack("<12I", key))
    rounds = 5 + sum(w & 15 for w in kw) % 16
    out = b""
    block = 0
    while len(out) < length:
        state = CONSTANTS + kw
        state[12] = (kw[8] + block) & MASK
        x = list(state)
        for i in range(rounds):
            if i % 2 == 0:
                for q in ((0, 4, 8, 12), (1, 5, 9, 13), (2, 6, 10, 14), (3, 7, 11, 15)):
                    _quarter(x, *q)
            else:
                for q in ((0, 5, 10, 15), (1, 6, 11, 12), (2, 7, 12, 13), (3, 4, 13, 14)):
                    _quarter(x, *q)
        out += struct.pack("<16I", *[(x[j] + state[j]) & MASK for j in range(16)])
        block += 1
    return out[:length]


def reference_xor(key: bytes, data: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, reference_keystream(key, len(data)), strict=True))


def seal(plain: bytes, key: bytes = KEY, lead: int = 75) -> str:
    """Make a token from any plaintext, by the contract, without the module's encoder."""
    ct = reference_xor(key, plain)
    insert = (sum(key) + sum(ct)) % (len(ct) + 1)
    raw = bytes([lead]) + ct[:insert] + key + ct[insert:]
    return encode_custom_b64(raw, XGNARLY_ALPHABET, pad=True)


def unseal(token: str) -> tuple[bytes, bytes, int]:
    """(key, plaintext, insert position) of a token, by the contract."""
    raw = decode_custom_b64(token, XGNARLY_ALPHABET)
    assert raw[0] == 75
    ct_len = len(raw) - 1 - 48
    insert = sum(raw[1:]) % (ct_len + 1)
    key = raw[1 + insert : 1 + insert + 48]
    ct = raw[1 : 1 + insert] + raw[1 + insert + 48 :]
    assert (sum(key) + sum(ct)) % (len(ct) + 1) == insert
    return key, reference_xor(key, ct), insert


def tlv(key: int, value: bytes) -> bytes:
    return bytes([key]) + len(value).to_bytes(2, "big") + value


def contract_fields(**overrides: Any) -> dict[int, bytes]:
    """The contract's fields for QUERY/UA/empty body with FIXED randomness, as raw values."""
    ints = {
        1: (65, 2),
        2: (14, 2),
        6: (1_700_000_000, 4),
        7: (3_045_582_288, 4),
        8: (FIXED.counter, 4),
        11: (1, 2),
        12: (1, 2),
        13: (0, 2),
        14: ((65 << 16) | FIXED.random16, 4),
        15: (FIXED.random32, 4),
    }
    checksum = 0
    for value, _ in ints.values():
        checksum ^= value
    ints[0] = (checksum, 4)
    raw: dict[int, bytes] = {k: v.to_bytes(w, "big") for k, (v, w) in ints.items()}
    raw[3] = hashlib.md5(QUERY.encode()).hexdigest().encode()
    raw[4] = hashlib.md5(b"").hexdigest().encode()
    raw[5] = hashlib.md5(UA.encode()).hexdigest().encode()
    raw[9] = b"5.1.3-ZTCA"
    raw[10] = b"2.0.0.485"
    for name, value in overrides.items():
        raw[int(name.removeprefix("f"))] = value
    return raw


def plaintext(
    fields: dict[int, bytes], order: list[int] | None = None, count: int | None = None
) -> bytes:
    keys = order if order is not None else [*range(1, 16), 0]
    head = bytes([len(keys) if count is None else count])
    return head + b"".join(tlv(k, fields[k]) for k in keys)


def fixed_token(**kwargs: Any) -> str:
    return encode_xgnarly(QUERY, UA, 1_700_000_000, 3_045_582_288, randomness=FIXED, **kwargs)


# --- the cipher --------------------------------------------------------------------------


@PROPERTY
@given(key=st.binary(min_size=48, max_size=48), length=st.integers(min_value=0, max_value=400))
def test_keystream_matches_the_plain_reference(key: bytes, length: int) -> None:
    assert gnarly_keystream(key, length) == reference_keystream(key, length)


def test_block_counter_wraps_at_32_bits() -> None:
    key = bytearray(KEY)
    key[32:36] = (0xFFFFFFFF).to_bytes(4, "little")  # kw[8], the counter word
    assert gnarly_keystream(bytes(key), 200) == reference_keystream(bytes(key), 200)


@pytest.mark.parametrize("rounds", range(5, 21))
def test_every_round_count_matches_the_reference(rounds: int) -> None:
    # Tune the low nibble of word 0 so that the key asks for exactly `rounds`.
    key = bytearray(KEY)
    others = sum(w & 15 for w in key_words(bytes(key))[1:])
    key[0] = (key[0] & 0xF0) | ((rounds - 5 - others) % 16)
    assert round_count(key_words(bytes(key))) == rounds
    assert gnarly_keystream(bytes(key), 256) == reference_keystream(bytes(key), 256)


def test_round_count_rule() -> None:
    assert round_count(key_words(bytes(48))) == 5
    assert round_count(key_words(b"\x0f" * 48)) == 5 + (12 * 15) % 16


def test_xor_is_its_own_inverse() -> None:
    data = bytes(range(256)) * 2
    assert gnarly_xor(KEY, gnarly_xor(KEY, data)) == data
    assert gnarly_xor(KEY, b"") == b""
    with pytest.raises(ValueError, match="48"):
        gnarly_xor(KEY[:47], data)


# --- the encoder follows the contract ----------------------------------------------------


def test_plaintext_layout_is_the_contracts() -> None:
    token = fixed_token()
    key, plain, _ = unseal(token)
    assert key == KEY
    assert plain == plaintext(contract_fields())
    assert seal(plain) == token


def test_fixed_inputs_give_a_fixed_token() -> None:
    assert fixed_token() == fixed_token()
    assert fixed_token() != fixed_token(requests_seen=2)
    assert len(fixed_token()) % 4 == 0


def test_options_land_in_their_fields() -> None:
    token = fixed_token(
        field2=4,
        sdk_tag="5.1.2-ZTCA",
        sdk_version="1.0.0.1",
        requests_seen=7,
        requests_intercepted=3,
        body=b"payload",
    )
    fields = decode_xgnarly(token)
    assert fields.fields[2] == 4
    assert (fields.sdk_tag, fields.sdk_version) == ("5.1.2-ZTCA", "1.0.0.1")
    assert (fields.fields[12], fields.fields[13]) == (7, 3)
    assert fields.body_md5 == hashlib.md5(b"payload").hexdigest()


def test_decoded_fields_reencode_byte_for_byte() -> None:
    token = fixed_token()
    fields = decode_xgnarly(token)
    assert fields.randomness() == FIXED
    again = encode_xgnarly(
        QUERY, UA, fields.timestamp, fields.canvas, randomness=fields.randomness()
    )
    assert again == token


def test_to_json_names_fields_and_serialises() -> None:
    doc = decode_xgnarly(fixed_token()).to_json()
    assert doc["query_md5"] == hashlib.md5(QUERY.encode()).hexdigest()
    assert doc["ua_md5"] == hashlib.md5(UA.encode()).hexdigest()
    assert doc["timestamp"] == 1_700_000_000
    assert doc["canvas"] == 3_045_582_288
    assert doc["counter"] == FIXED.counter
    assert doc["random16"] == (65 << 16) | 0xBEEF
    assert doc["key"] == KEY.hex()
    assert isinstance(doc["fields"], dict)
    assert set(doc["fields"]) == {str(k) for k in range(16)}
    json.dumps(doc)


# --- round trips and verification -------------------------------------------------------


@PROPERTY
@given(
    query=st.text(),
    user_agent=st.text(),
    body=st.binary(),
    timestamp=U32,
    canvas=U32,
    randomness=randomness_strategy,
    field2=U16,
    seen=U16,
)
def test_round_trip(
    query: str,
    user_agent: str,
    body: bytes,
    timestamp: int,
    canvas: int,
    randomness: GnarlyRandomness,
    field2: int,
    seen: int,
) -> None:
    token = encode_xgnarly(
        query,
        user_agent,
        timestamp,
        canvas,
        body,
        randomness=randomness,
        field2=field2,
        requests_seen=seen,
    )
    fields = decode_xgnarly(token)
    assert fields.query_md5 == hashlib.md5(query.encode("utf-8")).hexdigest()
    assert fields.body_md5 == hashlib.md5(body).hexdigest()
    assert fields.ua_md5 == hashlib.md5(user_agent.encode("utf-8")).hexdigest()
    assert (fields.timestamp, fields.canvas) == (timestamp, canvas)
    assert (fields.fields[2], fields.fields[12]) == (field2, seen)
    assert fields.randomness() == randomness
    assert verify_xgnarly(token, query, user_agent, body)
    assert not verify_xgnarly(token, query + "&", user_agent, body)
    assert not verify_xgnarly(token, query, user_agent + " ", body)
    assert not verify_xgnarly(token, query, user_agent, body + b"\x00")


@PROPERTY
@given(query=st.text(min_size=1), index=st.integers(min_value=0), replacement=st.characters())
def test_changed_query_fails(query: str, index: int, replacement: str) -> None:
    index %= len(query)
    changed = query[:index] + replacement + query[index + 1 :]
    token = encode_xgnarly(query, UA, 1, 2, randomness=FIXED)
    # The full md5 is carried, so only an unchanged string verifies.
    assert verify_xgnarly(token, changed, UA) is (changed == query)


@PROPERTY
@given(
    randomness=randomness_strategy,
    index=st.integers(min_value=0),
    char=st.sampled_from(XGNARLY_ALPHABET),
)
def test_one_character_corruption_never_passes_unnoticed(
    randomness: GnarlyRandomness, index: int, char: str
) -> None:
    token = encode_xgnarly(QUERY, UA, 1_700_000_000, 5, randomness=randomness)
    body = token.rstrip("=")
    index %= len(body)
    corrupted = body[:index] + char + body[index + 1 :] + token[len(body) :]
    if corrupted == token:
        return
    try:
        fields = decode_xgnarly(corrupted)
    except TokenDecodeError:
        return
    # The rare corruption that still parses (a changed SDK-string byte whose sum keeps
    # the splice position) must at least not decode to the same fields.
    assert fields.fields != decode_xgnarly(token).fields


def test_body_as_text_is_utf8() -> None:
    token = fixed_token(body="é")
    assert verify_xgnarly(token, QUERY, UA, body="é")
    assert verify_xgnarly(token, QUERY, UA, body="é".encode())
    assert not verify_xgnarly(token, QUERY, UA)


def test_lone_surrogates_hash_like_a_browser() -> None:
    # TextEncoder turns a lone surrogate into U+FFFD.
    token = encode_xgnarly("a=\ud800", UA, 1, 2, randomness=FIXED)
    assert decode_xgnarly(token).query_md5 == hashlib.md5("a=\ufffd".encode()).hexdigest()


def test_fresh_randomness_differs_and_verifies() -> None:
    a = encode_xgnarly(QUERY, UA, 1, 2)
    b = encode_xgnarly(QUERY, UA, 1, 2)
    assert a != b
    assert verify_xgnarly(a, QUERY, UA)
    assert verify_xgnarly(b, QUERY, UA)


def test_draw_gives_values_in_range() -> None:
    for _ in range(50):
        r = GnarlyRandomness.draw()
        assert len(r.key) == 48
        assert 0 <= r.counter < 2**31
        assert 0 <= r.random16 < 2**16
        assert 0 <= r.random32 < 2**32
    assert len({GnarlyRandomness.draw().key for _ in range(20)}) == 20


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key": KEY[:47]}, "48 bytes"),
        ({"counter": 2**31}, "31-bit"),
        ({"counter": -1}, "31-bit"),
        ({"random16": 2**16}, "16 bits"),
        ({"random32": 2**32}, "32 bits"),
    ],
)
def test_randomness_is_validated(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"key": KEY, "counter": 1, "random16": 2, "random32": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        GnarlyRandomness(**args)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timestamp": 2**32}, "timestamp"),
        ({"canvas": -1}, "canvas"),
        ({"field2": 2**16}, "field2"),
        ({"requests_seen": 2**16}, "requests_seen"),
        ({"requests_intercepted": -1}, "requests_intercepted"),
    ],
)
def test_out_of_range_inputs_are_refused(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"timestamp": 1, "canvas": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        encode_xgnarly(QUERY, UA, randomness=FIXED, **args)


# --- decoding by key, and malformed tokens ------------------------------------------------


def test_fields_are_parsed_by_key_in_any_order() -> None:
    order = [0, 15, 3, 9, 1, 5, 7, 2, 4, 6, 8, 10, 11, 12, 13, 14]
    token = seal(plaintext(contract_fields(), order=order))
    assert decode_xgnarly(token).fields == decode_xgnarly(fixed_token()).fields
    assert verify_xgnarly(token, QUERY, UA)


def test_unknown_keys_are_kept_as_hex() -> None:
    fields = contract_fields()
    fields[42] = b"\x01\xab"
    order = [*range(1, 16), 42, 0]
    decoded = decode_xgnarly(seal(plaintext(fields, order=order)))
    assert decoded.fields[42] == "01ab"
    assert verify_xgnarly(seal(plaintext(fields, order=order)), QUERY, UA)


def test_optional_fields_may_be_absent() -> None:
    fields = contract_fields()
    order = [0, 3, 4, 5, 6, 7, 9, 10]
    checksum = int.from_bytes(fields[6], "big") ^ int.from_bytes(fields[7], "big")
    fields[0] = checksum.to_bytes(4, "big")
    assert verify_xgnarly(seal(plaintext(fields, order=order)), QUERY, UA)


def _bad_checksum() -> dict[int, bytes]:
    fields = contract_fields()
    fields[0] = (int.from_bytes(fields[0], "big") ^ 1).to_bytes(4, "big")
    return fields


MALFORMED = [
    pytest.param(seal(plaintext(contract_fields()), lead=74), "start with byte 75", id="lead"),
    pytest.param(
        encode_custom_b64(b"K" + bytes(48), XGNARLY_ALPHABET, True), "too short", id="short"
    ),
    pytest.param(
        seal(plaintext(contract_fields(), count=17)), "ends after 16 of 17", id="count-high"
    ),
    pytest.param(
        seal(plaintext(contract_fields(), count=15)), "bytes after its 15", id="count-low"
    ),
    pytest.param(seal(plaintext(contract_fields())[:-2]), "runs past the end", id="cut-value"),
    pytest.param(seal(plaintext(contract_fields())[:-5]), "ends after", id="cut-header"),
    pytest.param(seal(plaintext(_bad_checksum())), "checksum", id="checksum"),
    pytest.param(seal(plaintext(contract_fields(f6=b"\x00\x01"))), "6 has 2 bytes", id="width"),
    pytest.param(seal(plaintext(contract_fields(f3=b"A" * 32))), "hex md5", id="md5-case"),
    pytest.param(seal(plaintext(contract_fields(f9=b"\xff"))), "UTF-8", id="utf8"),
    pytest.param(
        seal(plaintext(contract_fields(), order=[*range(1, 16), 3, 0])), "twice", id="dup"
    ),
    pytest.param(
        seal(plaintext(contract_fields(), order=[*range(1, 16)])),
        r"lacks fields \[0\]",
        id="missing",
    ),
    pytest.param(seal(b""), "too short", id="empty"),
    pytest.param("u09t=", "padding", id="padding"),
    pytest.param("u09t-._", "not in the alphabet", id="alphabet"),
]


@pytest.mark.parametrize(("token", "message"), MALFORMED)
def test_malformed_tokens_raise(token: str, message: str) -> None:
    with pytest.raises(TokenDecodeError, match=message):
        decode_xgnarly(token)
    assert not verify_xgnarly(token, QUERY, UA)


def test_corrupting_the_spliced_key_is_detected() -> None:
    token = fixed_token()
    _, _, insert = unseal(token)
    # Character index of a byte well inside the key: 1 lead byte + insert + 20.
    index = (1 + insert + 20) * 4 // 3
    for char in "u09tbS":
        if char != token[index]:
            with pytest.raises(TokenDecodeError):
                decode_xgnarly(token[:index] + char + token[index + 1 :])


def test_truncated_token_raises() -> None:
    token = fixed_token().rstrip("=")
    for cut in (4, 8, 40, 100):
        with pytest.raises(TokenDecodeError):
            decode_xgnarly(token[:-cut])


def test_fields_without_a_property_value_raise_key_error() -> None:
    with pytest.raises(KeyError):
        _ = XGnarlyFields({}).query_md5
