"""decode_token: recognising each kind of token and refusing everything else."""

from __future__ import annotations

import json

import pytest

from signer.tokenerrors import TokenDecodeError
from signer.tokens import (
    KIND_VERIFY_FP,
    KIND_XBOGUS,
    KIND_XGNARLY,
    KIND_XTT_PARAMS,
    decode_token,
)
from signer.verifyfp import make_verify_fp
from signer.xbogus import encode_xbogus
from signer.xgnarly import GnarlyRandomness, encode_xgnarly
from signer.xttparams import encode_xtt_params

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0"
QUERY = "aid=1988&count=30"
RANDOMNESS = GnarlyRandomness(key=bytes(48), counter=5, random16=6, random32=7)


def test_xbogus() -> None:
    kind, fields = decode_token(encode_xbogus(QUERY, UA, 1_700_000_000, 42, (1, 14)))
    assert kind == KIND_XBOGUS == "x-bogus"
    assert fields["timestamp"] == 1_700_000_000
    assert fields["canvas"] == 42
    assert (fields["h1"], fields["h2"]) == (1, 14)


def test_public_xbogus_vector() -> None:
    kind, fields = decode_token("DFSzswSLfwUANnEftawINt9WcBj3")
    assert kind == KIND_XBOGUS
    assert fields["timestamp"] == 1677742816


def test_verify_fp() -> None:
    kind, fields = decode_token(make_verify_fp(1_700_000_000_000))
    assert kind == KIND_VERIFY_FP == "verifyFp"
    assert fields == {"time_ms": 1_700_000_000_000, "time": "2023-11-14T22:13:20.000+00:00"}


def test_xgnarly() -> None:
    token = encode_xgnarly(QUERY, UA, 1_700_000_000, 42, randomness=RANDOMNESS)
    kind, fields = decode_token(token)
    assert kind == KIND_XGNARLY == "x-gnarly"
    assert fields["timestamp"] == 1_700_000_000
    assert fields["canvas"] == 42
    assert fields["counter"] == 5


def test_xtt_params() -> None:
    kind, fields = decode_token(encode_xtt_params(QUERY))
    assert kind == KIND_XTT_PARAMS == "x-tt-params"
    assert fields == {"query": QUERY, "pairs": [["aid", "1988"], ["count", "30"]]}


def test_xtt_params_spec_example_for_an_empty_query() -> None:
    assert decode_token("1BLhm+0j/AG2Dlsz3v4u4w==") == (
        KIND_XTT_PARAMS,
        {"query": "", "pairs": []},
    )


def test_surrounding_whitespace_is_ignored() -> None:
    assert decode_token(" DFSzswSLfwUANnEftawINt9WcBj3\n")[0] == KIND_XBOGUS


def test_every_kind_is_json_ready() -> None:
    tokens = [
        encode_xbogus(QUERY, UA, 1, 2),
        make_verify_fp(),
        encode_xgnarly(QUERY, UA, 1, 2),
        encode_xtt_params(QUERY),
    ]
    for token in tokens:
        json.dumps(decode_token(token))


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", "not a known token"),
        ("hello world", "not a known token"),
        ("DFSzswSLfwUANnEftawINt9WcBj4", "checksum"),  # shaped like X-Bogus: its own error
        ("verify_xyz", "verify_"),
        ("QUJD", "not x-tt-params"),  # base64 but not whole AES blocks
    ],
)
def test_unknown_or_broken_tokens_raise(token: str, message: str) -> None:
    with pytest.raises(TokenDecodeError, match=message):
        decode_token(token)


def test_corrupted_xgnarly_is_not_mistaken_for_another_kind() -> None:
    token = encode_xgnarly(QUERY, UA, 1, 2, randomness=RANDOMNESS)
    middle = len(token) // 2
    corrupted = token[:middle] + ("u" if token[middle] != "u" else "0") + token[middle + 1 :]
    with pytest.raises(TokenDecodeError, match="not X-Gnarly"):
        decode_token(corrupted)
