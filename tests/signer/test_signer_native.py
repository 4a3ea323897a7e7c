"""`Signer` with the native engine: the contract every engine must meet."""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, urlsplit

import pytest

from signer import (
    DeadlineExceeded,
    InvalidSignRequest,
    Signer,
    SignerSettings,
    SignRequest,
    SignResult,
)
from signer.verifyfp import is_verify_fp
from signer.xbogus import decode_xbogus, verify_xbogus
from signer.xgnarly import verify_xgnarly
from signer.xttparams import decode_xtt_params

from .conftest import FETCH_URL, TIKTOK_UA_WINDOWS


def _query_before_xbogus(signed_url: str) -> str:
    query = urlsplit(signed_url).query
    return query[: query.index("&X-Bogus=")]


def assert_consistent(result: SignResult, body: bytes = b"") -> None:
    """What a client relies on: tokens match the URL it will call and the UA it will send."""
    query = _query_before_xbogus(result.signed_url)
    params = dict(parse_qsl(urlsplit(result.signed_url).query, keep_blank_values=True))
    assert params["X-Bogus"] == result.x_bogus
    assert params["X-Gnarly"] == result.x_gnarly
    assert params["msToken"] == result.ms_token
    assert verify_xbogus(result.x_bogus, query, result.user_agent, body)
    assert verify_xgnarly(result.x_gnarly, query, result.user_agent, body)
    assert decode_xtt_params(result.x_tt_params) == query
    assert decode_xbogus(result.x_bogus).timestamp == result.timestamp
    assert decode_xbogus(result.x_bogus).canvas == result.canvas
    assert abs(result.timestamp - time.time()) < 10
    assert result.navigator.user_agent == result.user_agent
    assert params["browser_version"] == result.navigator.browser_version
    assert params["browser_platform"] == result.navigator.platform
    assert "Headless" not in result.user_agent


async def test_native_sign_is_consistent() -> None:
    async with Signer(engine="native") as signer:
        result = await signer.sign(SignRequest(FETCH_URL))
    assert_consistent(result)
    assert result.engine == "native"
    assert is_verify_fp(result.verify_fp)
    assert result.signed_url.startswith("https://webcast.tiktok.com/webcast/im/fetch/?aid=1988&")
    assert "&msToken=&X-Bogus=" in result.signed_url
    assert result.navigator.platform == "Win32"
    assert "os=windows" in result.signed_url


async def test_caller_user_agent_and_body_and_token_pass_through() -> None:
    body = b'{"a": 1}\x00\xff'
    async with Signer(engine="native") as signer:
        result = await signer.sign(
            SignRequest(
                FETCH_URL, method="POST", body=body, user_agent=TIKTOK_UA_WINDOWS, ms_token="tok-1_"
            )
        )
    assert result.user_agent == TIKTOK_UA_WINDOWS
    assert result.navigator.browser_version.endswith("Chrome/120.0.0.0 Safari/537.36")
    assert result.ms_token == "tok-1_"
    assert not result.ms_token_minted
    assert_consistent(result, body)


async def test_sign_many_answers_each_request() -> None:
    requests = [
        SignRequest(FETCH_URL),
        SignRequest("https://evil.example/x"),
        SignRequest(FETCH_URL, deadline=time.time() - 1),
        SignRequest(FETCH_URL, mint_ms_token=True),
    ]
    async with Signer(engine="native") as signer:
        answers = await signer.sign_many(requests)
    assert len(answers) == 4
    assert isinstance(answers[0], SignResult)
    assert isinstance(answers[1], InvalidSignRequest)
    assert isinstance(answers[2], DeadlineExceeded)
    assert isinstance(answers[3], SignResult)
    assert answers[3].ms_token_minted
    assert len(answers[3].ms_token) >= 148


async def test_sign_raises_the_typed_error() -> None:
    async with Signer(SignerSettings(engine="native")) as signer:
        with pytest.raises(InvalidSignRequest):
            await signer.sign(SignRequest(""))
