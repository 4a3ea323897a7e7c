"""The batched X-Gnarly paths give exactly what the one-at-a-time functions give."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signer import gnarlycipher, xgnarly
from signer.gnarlycipher import (
    gnarly_keystream,
    gnarly_keystreams,
    gnarly_xor,
    gnarly_xor_many,
    key_words,
    round_count,
)
from signer.tokenerrors import TokenDecodeError
from signer.xgnarly import (
    XGNARLY_ALPHABET,
    GnarlyRandomness,
    XGnarlyFields,
    decode_xgnarly,
    decode_xgnarly_many,
    encode_xgnarly,
    verify_xgnarly,
    verify_xgnarly_many,
)

from .test_xgnarly import (
    KEY,
    MALFORMED,
    QUERY,
    UA,
    contract_fields,
    plaintext,
    reference_keystream,
    seal,
)

PROPERTY = settings(database=None, deadline=None, max_examples=60)
KEYS = st.binary(min_size=48, max_size=48)
LENGTHS = st.one_of(
    st.sampled_from([0, 1, 63, 64, 65, 128, 198, 256]),
    st.integers(min_value=-2, max_value=700),
)
# (token, error message pattern) of the single-token tests' malformed tokens.
MALFORMED_TOKENS = [(str(p.values[0]), str(p.values[1])) for p in MALFORMED]
# Pass widths to run the batches with: one lane, a few, and the default.
LANE_CAPS = [1, 5, gnarlycipher.MAX_LANES]


def key_with_rounds(rounds: int, seed: bytes = KEY) -> bytes:
    """`seed` with the low nibble of word 0 tuned so that the key asks for `rounds`."""
    key = bytearray(seed)
    others = sum(w & 15 for w in key_words(bytes(key))[1:])
    key[0] = (key[0] & 0xF0) | ((rounds - 5 - others) % 16)
    assert round_count(key_words(bytes(key))) == rounds
    return bytes(key)


@contextmanager
def lane_cap(lanes: int) -> Iterator[None]:
    """Run with passes of at most `lanes` lanes (hypothesis tests cannot use monkeypatch)."""
    saved = gnarlycipher.MAX_LANES
    gnarlycipher.MAX_LANES = lanes
    try:
        yield
    finally:
        gnarlycipher.MAX_LANES = saved


def outcome(call: Callable[[], XGnarlyFields]) -> tuple[str, Any]:
    """What a decode gives, in a form that compares fully (field order and messages too)."""
    try:
        fields = call()
    except TokenDecodeError as exc:
        return "error", str(exc)
    return "fields", (list(fields.fields.items()), fields.key)


def batch_outcome(result: XGnarlyFields | TokenDecodeError) -> tuple[str, Any]:
    if isinstance(result, TokenDecodeError):
        return "error", str(result)
    return "fields", (list(result.fields.items()), result.key)


# --- the cipher --------------------------------------------------------------------------


@pytest.mark.parametrize("cap", LANE_CAPS)
def test_keystreams_are_exact_for_every_round_count(cap: int) -> None:
    # Every round count 5..20, each with several lengths and two keys, in one batch.
    requests = [
        (key_with_rounds(rounds, seed), length)
        for rounds in range(5, 21)
        for seed in (KEY, hashlib.sha384(bytes([rounds])).digest())
        for length in (1, 64, 198, 300)
    ]
    with lane_cap(cap):
        streams = gnarly_keystreams(requests)
    assert len(streams) == len(requests)
    for (key, length), stream in zip(requests, streams, strict=True):
        assert stream == reference_keystream(key, length)
        assert stream == gnarly_keystream(key, length)


@pytest.mark.parametrize("cap", LANE_CAPS)
@PROPERTY
@given(requests=st.lists(st.tuples(KEYS, LENGTHS), max_size=40))
def test_keystreams_equal_the_single_ones(cap: int, requests: list[tuple[bytes, int]]) -> None:
    with lane_cap(cap):
        streams = gnarly_keystreams(requests)
    assert streams == [gnarly_keystream(key, length) for key, length in requests]


@pytest.mark.parametrize("cap", LANE_CAPS)
@PROPERTY
@given(items=st.lists(st.tuples(KEYS, st.binary(max_size=700)), max_size=40))
def test_xor_many_equals_the_single_ones(cap: int, items: list[tuple[bytes, bytes]]) -> None:
    with lane_cap(cap):
        mixed = gnarly_xor_many(items)
    assert mixed == [gnarly_xor(key, data) for key, data in items]
    with lane_cap(cap):
        assert gnarly_xor_many(list(zip([k for k, _ in items], mixed, strict=True))) == [
            data for _, data in items
        ]


def test_batches_of_zero_and_one() -> None:
    assert gnarly_keystreams([]) == []
    assert gnarly_xor_many([]) == []
    assert gnarly_keystreams([(KEY, 100)]) == [reference_keystream(KEY, 100)]
    assert gnarly_xor_many([(KEY, b"abc")]) == [gnarly_xor(KEY, b"abc")]


def test_block_counters_wrap_per_lane() -> None:
    wrapping = bytearray(KEY)
    wrapping[32:36] = (0xFFFFFFFF).to_bytes(4, "little")  # kw[8], the counter word
    requests = [(bytes(wrapping), 300), (KEY, 300), (key_with_rounds(20), 129)]
    expected = [reference_keystream(key, length) for key, length in requests]
    assert gnarly_keystreams(requests) == expected


def test_bad_keys_are_refused_like_the_single_call() -> None:
    with pytest.raises(ValueError, match="48"):
        gnarly_keystreams([(KEY, 10), (KEY[:47], 10)])
    with pytest.raises(ValueError, match="48"):
        gnarly_xor_many([(KEY, b"x"), (KEY[:47], b"x")])
    # As alone, nothing is asked of the key when there is nothing to encrypt.
    assert gnarly_keystreams([(KEY, 3), (b"", 0)]) == [gnarly_keystream(KEY, 3), b""]
    assert gnarly_xor_many([(KEY, b"x"), (b"", b"")]) == [gnarly_xor(KEY, b"x"), b""]


# --- tokens ------------------------------------------------------------------------------

randomness_strategy = st.builds(
    GnarlyRandomness,
    key=KEYS,
    counter=st.integers(min_value=0, max_value=2**31 - 1),
    random16=st.integers(min_value=0, max_value=2**16 - 1),
    random32=st.integers(min_value=0, max_value=2**32 - 1),
)


@st.composite
def valid_items(draw: st.DrawFn) -> tuple[str, str, str, bytes | str]:
    """A token and the request it was made for: mixed SDK strings, so mixed lengths."""
    query = draw(st.text(max_size=80))
    user_agent = draw(st.sampled_from([UA, "curl/8", ""]))
    body: bytes | str = draw(st.one_of(st.binary(max_size=40), st.text(max_size=20)))
    token = encode_xgnarly(
        query,
        user_agent,
        draw(st.integers(min_value=0, max_value=2**32 - 1)),
        draw(st.integers(min_value=0, max_value=2**32 - 1)),
        body,
        randomness=draw(randomness_strategy),
        sdk_tag=draw(st.text(max_size=70)),
        sdk_version=draw(st.sampled_from(["2.0.0.485", "1", ""])),
    )
    return token, query, user_agent, body


def corrupt(token: str, index: int, char: str) -> str:
    body = token.rstrip("=")
    index %= len(body)
    return body[:index] + char + body[index + 1 :] + token[len(body) :]


@st.composite
def mixed_items(draw: st.DrawFn) -> tuple[str, str, str, bytes | str]:
    """A valid item, one for another request, a corrupted or cut one, or a malformed one."""
    token, query, user_agent, body = draw(valid_items())
    kind = draw(st.sampled_from(["valid", "other-query", "corrupt", "cut", "malformed"]))
    if kind == "other-query":
        query += "&x=1"
    elif kind == "corrupt":
        token = corrupt(
            token, draw(st.integers(min_value=0)), draw(st.sampled_from(XGNARLY_ALPHABET))
        )
    elif kind == "cut":
        token = token[: draw(st.integers(min_value=0, max_value=len(token)))]
    elif kind == "malformed":
        token = draw(st.sampled_from([token for token, _ in MALFORMED_TOKENS]))
    return token, query, user_agent, body


@PROPERTY
@given(items=st.lists(mixed_items(), max_size=24))
def test_decode_many_equals_decode(items: list[tuple[str, str, str, bytes | str]]) -> None:
    tokens = [item[0] for item in items]
    with lane_cap(8):
        batch = decode_xgnarly_many(tokens)
    assert [batch_outcome(r) for r in batch] == [
        outcome(partial(decode_xgnarly, token)) for token in tokens
    ]


@PROPERTY
@given(items=st.lists(mixed_items(), max_size=24))
def test_verify_many_equals_verify(items: list[tuple[str, str, str, bytes | str]]) -> None:
    with lane_cap(8):
        batch = verify_xgnarly_many(items)
    assert batch == [verify_xgnarly(*item) for item in items]


def test_every_malformed_token_gives_its_error_not_an_exception() -> None:
    good = encode_xgnarly(QUERY, UA, 1, 2, randomness=GnarlyRandomness(KEY, 1, 2, 3))
    tokens = [good, *(token for token, _ in MALFORMED_TOKENS), good]
    results = decode_xgnarly_many(tokens)
    assert isinstance(results[0], XGnarlyFields)
    assert results[0] == results[-1] == decode_xgnarly(good)
    for (_, message), result in zip(MALFORMED_TOKENS, results[1:-1], strict=True):
        assert isinstance(result, TokenDecodeError)
        assert result.__traceback__ is None
        with pytest.raises(TokenDecodeError, match=message):
            raise result
    assert verify_xgnarly_many([(t, QUERY, UA, b"") for t in tokens]) == [
        True,
        *[False] * len(MALFORMED_TOKENS),
        True,
    ]


def test_batches_of_zero_and_one_token() -> None:
    assert decode_xgnarly_many([]) == []
    assert verify_xgnarly_many([]) == []
    token = seal(plaintext(contract_fields()))
    assert decode_xgnarly_many([token]) == [decode_xgnarly(token)]
    assert verify_xgnarly_many([(token, QUERY, UA, b"")]) == [True]
    [error] = decode_xgnarly_many(["u09t="])
    assert isinstance(error, TokenDecodeError)
    assert verify_xgnarly_many([("u09t=", QUERY, UA, b"")]) == [False]


# --- the contract-layout fast path of the parser -----------------------------------------


@contextmanager
def general_parser_only() -> Iterator[None]:
    saved = xgnarly._parse_contract
    xgnarly._parse_contract = lambda plain: None
    try:
        yield
    finally:
        xgnarly._parse_contract = saved


@st.composite
def edited_plaintexts(draw: st.DrawFn) -> bytes:
    """A contract plaintext with odd SDK strings or md5 text, then a few bytes changed."""
    overrides = {
        "f9": draw(st.one_of(st.text(max_size=12).map(str.encode), st.binary(max_size=12))),
        "f10": draw(st.one_of(st.text(max_size=12).map(str.encode), st.binary(max_size=12))),
        "f3": draw(st.sampled_from([hashlib.md5(QUERY.encode()).hexdigest().encode(), b"A" * 32])),
    }
    plain = bytearray(plaintext(contract_fields(**overrides)))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        index = draw(st.integers(min_value=0, max_value=len(plain) - 1))
        plain[index] = draw(st.integers(min_value=0, max_value=255))
    cut = draw(st.sampled_from([0, 0, 0, 1, 2]))
    return bytes(plain[: len(plain) - cut])


def test_the_encoders_plaintexts_take_the_fast_path() -> None:
    for sdk_tag in ("5.1.3-ZTCA", "", "é" * 40):
        plain = plaintext(contract_fields(f9=sdk_tag.encode()))
        fast = xgnarly._parse_contract(plain)
        assert fast is not None
        assert list(fast.items()) == list(xgnarly._parse(plain).items())


@settings(database=None, deadline=None, max_examples=300)
@given(plain=edited_plaintexts())
def test_fast_parse_agrees_with_the_general_parser(plain: bytes) -> None:
    token = seal(plain)
    fast = outcome(lambda: decode_xgnarly(token))
    with general_parser_only():
        general = outcome(lambda: decode_xgnarly(token))
    assert fast == general
