"""verifyFp: the shape the spec describes, and reading its time back."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signer.tokenerrors import TokenDecodeError
from signer.verifyfp import is_verify_fp, make_verify_fp, verify_fp_time_ms

PROPERTY = settings(database=None, deadline=None)
GOOD = "verify_lk7ybl1c_Xy3kP9aQ_Zt0b_4mQ2_9Lf1_aB3dE5gH7jK9"


def test_shape_matches_the_spec() -> None:
    for _ in range(200):
        value = make_verify_fp(1_700_000_000_000)
        prefix, stamp, rest = value[:7], value[7:15], value[16:]
        assert prefix == "verify_"
        assert stamp == "loyw3v28"  # (1700000000000).toString(36) in JS
        assert value[15] == "_"
        assert len(rest) == 36
        assert [len(group) for group in rest.split("_")] == [8, 4, 4, 4, 12]
        assert rest[14] == "4"
        assert rest[19] in "89AB"
        assert re.fullmatch(r"[0-9A-Za-z_]+", rest)


def test_random_part_varies() -> None:
    values = {make_verify_fp(1)[10:] for _ in range(50)}
    assert len(values) == 50


def test_default_time_is_now() -> None:
    before = time.time_ns() // 1_000_000
    stamp = verify_fp_time_ms(make_verify_fp())
    after = time.time_ns() // 1_000_000
    assert before <= stamp <= after


@PROPERTY
@given(ms=st.integers(min_value=0, max_value=36**9 - 1))
def test_time_round_trip(ms: int) -> None:
    value = make_verify_fp(ms)
    assert is_verify_fp(value)
    assert verify_fp_time_ms(value) == ms


def test_known_value_parses() -> None:
    assert verify_fp_time_ms(GOOD) == int("lk7ybl1c", 36)
    assert is_verify_fp(GOOD)


@pytest.mark.parametrize(
    "value",
    [
        "",
        GOOD.replace("verify_", "verifi_"),
        GOOD + "x",
        GOOD[:-1],
        GOOD.replace("_4mQ2", "_5mQ2"),  # version character
        GOOD.replace("_9Lf1", "_CLf1"),  # variant character
        GOOD.replace("lk7ybl1c", "LK7YBL1C"),  # JS writes base 36 in lowercase
        GOOD.replace("lk7ybl1c", ""),
        GOOD.replace("lk7ybl1c", "1" * 10),  # beyond any usable date
        GOOD.replace("Xy3kP9aQ", "Xy3kP9a-"),
        GOOD.replace("_", "-"),
        GOOD + "\n",
    ],
)
def test_wrong_shapes_are_rejected(value: str) -> None:
    assert not is_verify_fp(value)
    with pytest.raises(TokenDecodeError, match="verify_"):
        verify_fp_time_ms(value)


@pytest.mark.parametrize("ms", [-1, 36**9])
def test_out_of_range_time_is_refused(ms: int) -> None:
    with pytest.raises(ValueError, match="now_ms"):
        make_verify_fp(ms)
