"""msToken stand-ins: realistic length, base64url, and the plausibility check."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from signer.mstoken import MS_TOKEN_MAX, MS_TOKEN_MIN, is_plausible_ms_token, mint_ms_token

VECTORS_PATH = Path(__file__).parents[3] / "shared" / "vectors" / "xbogus.json"


def test_default_length_is_realistic_and_varies() -> None:
    lengths = {len(mint_ms_token()) for _ in range(300)}
    assert min(lengths) >= MS_TOKEN_MIN
    assert max(lengths) <= MS_TOKEN_MAX
    assert len(lengths) > 5


@pytest.mark.parametrize("length", [MS_TOKEN_MIN, 160, MS_TOKEN_MAX])
def test_requested_length_is_honoured(length: int) -> None:
    token = mint_ms_token(length)
    assert len(token) == length
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert is_plausible_ms_token(token)


def test_tokens_are_random() -> None:
    assert len({mint_ms_token(150) for _ in range(20)}) == 20


@pytest.mark.parametrize("length", [0, MS_TOKEN_MIN - 1, MS_TOKEN_MAX + 1])
def test_unrealistic_length_is_refused(length: int) -> None:
    with pytest.raises(ValueError, match="length"):
        mint_ms_token(length)


@pytest.mark.skipif(not VECTORS_PATH.exists(), reason=f"vectors not found at {VECTORS_PATH}")
def test_captured_token_is_plausible() -> None:
    vectors = json.loads(VECTORS_PATH.read_text())["vectors"]
    captured = [
        v["query"].split("msToken=")[1].split("&")[0] for v in vectors if "msToken=" in v["query"]
    ]
    assert captured
    for token in captured:
        assert is_plausible_ms_token(token)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "A" * (MS_TOKEN_MIN - 1),
        "A" * (MS_TOKEN_MAX + 1),
        "A" * 149 + "+",
        "A" * 149 + "/",
        "A" * 145 + "=" * 3,
        "A" * 100 + "=" + "A" * 50,
        "A" * 149 + " ",
    ],
)
def test_implausible_values(value: str) -> None:
    assert not is_plausible_ms_token(value)


def test_padded_value_is_plausible() -> None:
    assert is_plausible_ms_token("A" * 148 + "==")
