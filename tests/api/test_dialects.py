"""Each dialect's 200 body holds exactly the keys its clients read, with the right values."""

from __future__ import annotations

import json
from dataclasses import replace
from urllib.parse import parse_qsl, urlsplit

from api.dialects import (
    accept_language,
    eulerstream_v1_response,
    eulerstream_v2_response,
    own_response,
    signature_response,
)
from api.parsing import eulerstream_v1_request, eulerstream_v2_request, signature_request
from signer import Signer, SignRequest, SignResult

from .conftest import CLIENT_UA, FETCH_URL


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def test_eulerstream_v1_shape(signed: SignResult) -> None:
    body = eulerstream_v1_response(signed)
    assert body == {
        "code": 200,
        "message": "Sign success",
        "signedUrl": signed.signed_url,
        "User-Agent": signed.user_agent,
        "msToken": "tok_123-abc=",
        "X-Bogus": signed.x_bogus,
        "X-Gnarly": signed.x_gnarly,
        "_signature": "",
        "browserName": "Mozilla",
        "browserVersion": signed.user_agent.removeprefix("Mozilla/"),
    }
    assert _query(signed.signed_url)["msToken"] == body["msToken"]


def test_eulerstream_v2_shape(signed: SignResult) -> None:
    body = eulerstream_v2_response(signed)
    assert set(body) == {"code", "message", "response"}
    assert body["code"] == 200
    response = body["response"]
    assert isinstance(response, dict)
    assert set(response) == {
        "signedUrl",
        "userAgent",
        "browserName",
        "browserVersion",
        "tokens",
        "requestHeaders",
        "cookies",
    }
    assert response["signedUrl"] == signed.signed_url
    assert response["userAgent"] == signed.user_agent
    assert response["tokens"] == {
        "X-Bogus": signed.x_bogus,
        "X-Gnarly": signed.x_gnarly,
        "msToken": "tok_123-abc=",
        "verifyFp": signed.verify_fp,
        "x-tt-params": signed.x_tt_params,
    }
    assert response["requestHeaders"] == {
        "User-Agent": signed.user_agent,
        "Accept-Language": "en-US,en;q=0.9",
    }
    assert response["cookies"] == [
        {"name": "msToken", "value": "tok_123-abc=", "domain": ".tiktok.com", "path": "/"}
    ]
    json.dumps(body)  # everything must be JSON-serialisable as is


def test_eulerstream_v2_leaves_out_empty_tokens_and_cookies(signed: SignResult) -> None:
    bare = replace(signed, ms_token="", verify_fp="", x_tt_params="")
    response = eulerstream_v2_response(bare)["response"]
    assert isinstance(response, dict)
    assert response["tokens"] == {"X-Bogus": signed.x_bogus, "X-Gnarly": signed.x_gnarly}
    assert response["cookies"] == []


def test_legacy_signature_is_reported_when_present(signed: SignResult) -> None:
    with_signature = replace(signed, signature="_02B4Z6wo00f01")
    response = eulerstream_v2_response(with_signature)["response"]
    assert isinstance(response, dict)
    assert response["tokens"]["_signature"] == "_02B4Z6wo00f01"
    assert eulerstream_v1_response(with_signature)["_signature"] == "_02B4Z6wo00f01"
    data = signature_response(with_signature)["data"]
    assert isinstance(data, dict)
    assert data["signature"] == "_02B4Z6wo00f01"


def test_signature_shape(signed: SignResult) -> None:
    body = signature_response(signed)
    assert body["status"] == "ok"
    data = body["data"]
    assert isinstance(data, dict)
    assert data == {
        "signature": "",
        "verify_fp": signed.verify_fp,
        "signed_url": signed.signed_url,
        "x-tt-params": signed.x_tt_params,
        "x-bogus": signed.x_bogus,
        "X-Bogus": signed.x_bogus,
        "x-gnarly": signed.x_gnarly,
        "timestamp": signed.timestamp,
        "navigator": {
            "deviceScaleFactor": signed.navigator.device_scale_factor,
            "user_agent": signed.user_agent,
            "browser_language": signed.navigator.language,
            "browser_platform": signed.navigator.platform,
            "browser_name": signed.navigator.browser_name,
            "browser_version": signed.navigator.browser_version,
        },
    }


def test_own_shape(signed: SignResult) -> None:
    body = own_response(signed, 1.23456)
    assert body["status"] == "success"
    assert body["response_time_ms"] == 1.235
    data = body["data"]
    assert isinstance(data, dict)
    assert set(data) == {
        "signature",
        "signed_url",
        "X-Bogus",
        "X-Gnarly",
        "x-tt-params",
        "verify_fp",
        "ms_token",
        "ms_token_minted",
        "navigator",
        "engine",
        "profile",
        "timestamp",
    }
    assert data["ms_token_minted"] is False
    assert data["engine"] == "native"
    assert data["navigator"] == signed.navigator.to_json()
    json.dumps(body)


def test_accept_language_weights(signed: SignResult) -> None:
    navigator = replace(signed.navigator, languages=("fr-FR", "fr", "en-US", "en"))
    assert accept_language(navigator) == "fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7"
    assert accept_language(replace(navigator, languages=())) == navigator.language


async def test_tiktoklive_round_trip_signed_url_has_ms_token(native_signer: Signer) -> None:
    """TikTokLive requires `msToken` in signedUrl even when it sent none."""
    parsed = eulerstream_v2_request(
        {"url": FETCH_URL, "userAgent": CLIENT_UA, "method": "GET", "type": "fetch"}
    )
    result = await native_signer.sign(parsed.request)
    response = eulerstream_v2_response(result)["response"]
    assert isinstance(response, dict)
    assert "msToken" in _query(response["signedUrl"])
    # The fingerprint agrees with the User-Agent the client will send.
    assert response["userAgent"] == CLIENT_UA
    assert response["requestHeaders"]["User-Agent"] == CLIENT_UA
    assert response["browserVersion"] == CLIENT_UA.removeprefix("Mozilla/")


async def test_tlc_1x_round_trip(native_signer: Signer) -> None:
    parsed = eulerstream_v1_request({"url": FETCH_URL, "client": "ttlive-node", "uuc": "1"})
    body = eulerstream_v1_response(await native_signer.sign(parsed.request))
    assert body["signedUrl"]
    query = _query(str(body["signedUrl"]))
    assert query["X-Bogus"] == body["X-Bogus"]
    assert query["room_id"] == "7312345678901234567"


async def test_signature_round_trip(native_signer: Signer) -> None:
    parsed = signature_request("application/json", FETCH_URL.encode())
    data = signature_response(await native_signer.sign(parsed.request))["data"]
    assert isinstance(data, dict)
    assert _query(data["signed_url"])["X-Bogus"] == data["x-bogus"]


async def test_own_ms_token_reaches_the_signed_url(native_signer: Signer) -> None:
    result = await native_signer.sign(SignRequest(FETCH_URL, ms_token="mine"))
    data = own_response(result, 0.5)["data"]
    assert isinstance(data, dict)
    assert data["ms_token"] == "mine"
    assert _query(data["signed_url"])["msToken"] == "mine"
