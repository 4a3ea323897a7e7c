"""The self-check: no signature leaves `Signer` unless it matches its own request."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest

from signer import SelfCheckFailed, Signer, SignerSettings, SignRequest
from signer.engine import EngineOutput
from signer.errors import SignError
from signer.native import NativeEngine
from signer.selfcheck import check_output, check_outputs
from signer.urls import PreparedRequest, prepare_request

from .conftest import FETCH_URL, TIKTOK_UA_WINDOWS

SETTINGS = SignerSettings(engine="native")


def _signed(url: str = FETCH_URL) -> tuple[PreparedRequest, EngineOutput]:
    request = prepare_request(SignRequest(url, body=b"payload"), SETTINGS)
    return request, NativeEngine(SETTINGS).sign_one(request)


def test_a_sound_output_passes() -> None:
    request, output = _signed()
    check_output(request, output)


@pytest.mark.parametrize(
    "tamper",
    [
        {"x_bogus": "DFSzswSLfwUANnEftawINt9WcBj3"},
        {"query": "aid=1"},
        {"user_agent": TIKTOK_UA_WINDOWS},
        {"x_tt_params": "1BLhm+0j/AG2Dlsz3v4u4w=="},
        {"x_tt_params": "%%%"},
        {"verify_fp": ""},
    ],
)
def test_each_tampered_field_is_caught(tamper: dict[str, Any]) -> None:
    request, output = _signed()
    with pytest.raises(SelfCheckFailed):
        check_output(request, dataclasses.replace(output, **tamper))


def test_x_gnarly_of_another_request_is_caught_in_a_batch() -> None:
    pairs = [_signed(), _signed(), _signed(FETCH_URL + "&other=1")]
    foreign = pairs[2][1].x_gnarly
    pairs[1] = (pairs[1][0], dataclasses.replace(pairs[1][1], x_gnarly=foreign))
    pairs[2] = (pairs[2][0], dataclasses.replace(pairs[2][1], x_gnarly="garbage"))
    failures = check_outputs(pairs)
    assert failures[0] is None
    assert isinstance(failures[1], SelfCheckFailed)
    assert isinstance(failures[2], SelfCheckFailed)


class _CorruptingEngine(NativeEngine):
    """The real native engine with its X-Gnarly swapped for another request's."""

    async def sign_batch(
        self, requests: Sequence[PreparedRequest]
    ) -> list[EngineOutput | SignError]:
        outputs = [self.sign_one(request) for request in requests]
        other = self.sign_one(prepare_request(SignRequest(FETCH_URL + "&x=1"), SETTINGS))
        return [dataclasses.replace(o, x_gnarly=other.x_gnarly) for o in outputs]


async def test_signer_never_returns_a_failing_signature() -> None:
    signer = Signer(SETTINGS)
    signer.engine = _CorruptingEngine(SETTINGS)
    with pytest.raises(SelfCheckFailed):
        await signer.sign(SignRequest(FETCH_URL))
    answers = await signer.sign_many([SignRequest(FETCH_URL), SignRequest(FETCH_URL)])
    assert all(isinstance(answer, SelfCheckFailed) for answer in answers)
