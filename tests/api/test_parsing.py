"""Each dialect's input, shaped as the real clients send it, and every malformed variant."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import urlencode

import pytest

from api.errors import ApiError, api_error_from_sign_error
from api.parsing import (
    MAX_BODY_BYTES,
    MAX_JSON_DEPTH,
    MAX_JSON_INT_DIGITS,
    JsonRefused,
    eulerstream_v1_request,
    eulerstream_v2_request,
    own_request,
    parse_api_key,
    parse_json,
    parse_sign_body,
    signature_request,
)
from signer import InvalidSignRequest, Signer, SignRequest

from .conftest import CLIENT_UA, FETCH_URL

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def _json(data: object) -> bytes:
    return json.dumps(data).encode()


# --- API key ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "headers", "expected"),
    [
        ({"apiKey": "k1"}, {}, "k1"),
        ({}, {"X-Api-Key": "k2"}, "k2"),
        ({}, {"x-api-key": "k3"}, "k3"),
        ({}, {"Authorization": "Bearer k4"}, "k4"),
        ({}, {"authorization": "bearer  k5 "}, "k5"),
        ({"apiKey": "None"}, {}, None),
        ({"apiKey": ""}, {}, None),
        ({"apiKey": "null"}, {"X-Api-Key": ""}, None),
        ({}, {}, None),
        ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, None),
        ({}, {"Authorization": "Bearer "}, None),
        # TikTokLive sends apiKey=None next to a real header key: the real one wins.
        ({"apiKey": "None"}, {"X-Api-Key": "real"}, "real"),
        ({"apiKey": "q"}, {"X-Api-Key": "h"}, "h"),
        ({"apiKey": "q"}, {"Authorization": "Bearer b"}, "b"),
    ],
)
def test_api_key_locations(
    query: dict[str, str], headers: dict[str, str], expected: str | None
) -> None:
    assert parse_api_key(query, headers) == expected


# --- bodies ----------------------------------------------------------------------------


def test_json_body() -> None:
    fields = parse_sign_body("application/json; charset=utf-8", _json({"url": FETCH_URL}))
    assert fields == {"url": FETCH_URL}


def test_form_body() -> None:
    raw = urlencode({"url": FETCH_URL, "method": "GET"}).encode()
    assert parse_sign_body(FORM, raw) == {"url": FETCH_URL, "method": "GET"}


@pytest.mark.parametrize(
    ("content_type", "raw", "status", "fragment"),
    [
        (JSON, b'{"url": ', 400, "not valid JSON"),
        (JSON, b"", 400, "not valid JSON"),
        (JSON, b'["https://www.tiktok.com/"]', 400, "JSON object"),
        (JSON, b"\xff\xfe", 400, "UTF-8"),
        (FORM, b"url=a&url=b", 400, "more than once"),
        ("text/plain", b"https://www.tiktok.com/", 415, "not supported"),
        ("multipart/form-data; boundary=x", b"--x", 415, "not supported"),
        ("", _json({"url": FETCH_URL}), 415, "'none'"),
        (JSON, b" " * (MAX_BODY_BYTES + 1), 413, "limit"),
    ],
)
def test_bad_bodies(content_type: str, raw: bytes, status: int, fragment: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_sign_body(content_type, raw)
    assert caught.value.status == status
    assert caught.value.type == "VALIDATION_ERROR"
    assert fragment in caught.value.message


def test_body_at_the_limit_is_accepted() -> None:
    raw = _json({"url": FETCH_URL, "payload": ""})
    raw = raw[:-1] + b" " * (MAX_BODY_BYTES - len(raw)) + b"}"
    assert len(raw) == MAX_BODY_BYTES
    assert parse_sign_body(JSON, raw)["url"] == FETCH_URL


# --- EulerStream v1 (TikTok-Live-Connector 1.x) --------------------------------------


def test_v1_query_from_tlc_1x() -> None:
    query = {"url": FETCH_URL, "client": "ttlive-node", "uuc": "12", "apiKey": "key"}
    parsed = eulerstream_v1_request(query)
    assert parsed.request == SignRequest(url=FETCH_URL)
    assert parse_api_key(query, {}) == "key"  # read once, by admission
    assert parsed.extras == {"client": "ttlive-node", "uuc": "12"}


def test_v1_without_key_and_with_header_key() -> None:
    assert eulerstream_v1_request({"url": FETCH_URL}, {"X-Api-Key": "h"}).request.url == FETCH_URL
    assert parse_api_key({"url": FETCH_URL}, {}) is None
    assert parse_api_key({"url": FETCH_URL}, {"X-Api-Key": "h"}) == "h"


@pytest.mark.parametrize("query", [{}, {"url": ""}, {"url": "   "}, {"client": "ttlive-node"}])
def test_v1_missing_url(query: dict[str, str]) -> None:
    with pytest.raises(ApiError) as caught:
        eulerstream_v1_request(query)
    assert (caught.value.status, caught.value.type) == (400, "VALIDATION_ERROR")
    assert "'url'" in caught.value.message


# --- EulerStream v2 (TLC 2.x, TikTokLive) --------------------------------------------


def test_v2_json_from_tlc_2x() -> None:
    body = {
        "url": FETCH_URL,
        "method": "GET",
        "userAgent": CLIENT_UA,
        "sessionId": "sess",
        "ttTargetIdc": "useast2a",
    }
    parsed = eulerstream_v2_request(
        parse_sign_body(JSON, _json(body)), {"client": "ttlive-node"}, {"X-Api-Key": "k"}
    )
    assert parsed.request == SignRequest(url=FETCH_URL, method="GET", user_agent=CLIENT_UA)
    assert parse_api_key({"client": "ttlive-node"}, {"X-Api-Key": "k"}) == "k"
    assert parsed.extras == {
        "sessionId": "sess",
        "ttTargetIdc": "useast2a",
        "client": "ttlive-node",
    }


def test_v2_json_from_tiktoklive_with_nulls_and_payload() -> None:
    body = {
        "url": FETCH_URL,
        "userAgent": CLIENT_UA,
        "method": "POST",
        "type": "fetch",
        "payload": '{"a":1}',
        "sessionId": None,
        "ttTargetIdc": None,
    }
    parsed = eulerstream_v2_request(
        parse_sign_body(JSON, _json(body)), {"client": "ttlive-other", "apiKey": "None"}
    )
    assert parsed.request.method == "POST"
    assert parsed.request.body == '{"a":1}'
    assert parse_api_key({"client": "ttlive-other", "apiKey": "None"}, {}) is None
    assert parsed.extras == {"type": "fetch", "client": "ttlive-other"}


def test_v2_form_from_older_tiktoklive() -> None:
    raw = urlencode(
        {"url": FETCH_URL, "userAgent": CLIENT_UA, "method": "GET", "type": "xhr"}
    ).encode()
    parsed = eulerstream_v2_request(parse_sign_body(FORM, raw), {"apiKey": "form-key"})
    assert parsed.request == SignRequest(url=FETCH_URL, method="GET", user_agent=CLIENT_UA)
    assert parse_api_key({"apiKey": "form-key"}, {}) == "form-key"


def test_v2_include_verify_fp_from_form_text() -> None:
    raw = urlencode({"url": FETCH_URL, "includeVerifyFp": "false"}).encode()
    fields = parse_sign_body(FORM, raw)
    assert eulerstream_v2_request(fields).request.include_verify_fp is False


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({}, "'url' is required"),
        ({"url": ""}, "'url' is required"),
        ({"url": None}, "'url' is required"),
        ({"url": 42}, "'url' must be a string"),
        ({"url": ["https://www.tiktok.com/"]}, "'url' must be a string"),
        ({"url": FETCH_URL, "userAgent": 1}, "'userAgent' must be a string"),
        ({"url": FETCH_URL, "method": True}, "'method' must be a string"),
        ({"url": FETCH_URL, "payload": {"a": 1}}, "'payload' must be a string"),
        ({"url": FETCH_URL, "sessionId": 7}, "'sessionId' must be a string"),
        ({"url": FETCH_URL, "type": "websocket"}, "'type' must be"),
        ({"url": FETCH_URL, "includeVerifyFp": "maybe"}, "boolean"),
    ],
)
def test_v2_bad_fields(fields: dict[str, object], fragment: str) -> None:
    with pytest.raises(ApiError) as caught:
        eulerstream_v2_request(fields)
    assert (caught.value.status, caught.value.type) == (400, "VALIDATION_ERROR")
    assert fragment in caught.value.message


# --- tiktok-signature / SignTok ------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    # tiktok-signature's README posts the raw URL labelled JSON; curl -d labels it a form.
    ["text/plain", "text/plain; charset=utf-8", JSON, FORM, ""],
)
def test_signature_raw_url(content_type: str) -> None:
    parsed = signature_request(content_type, FETCH_URL.encode() + b"\n")
    assert parsed.request == SignRequest(url=FETCH_URL)


def test_signature_json_with_user_agent_and_bearer() -> None:
    raw = _json({"url": FETCH_URL, "userAgent": CLIENT_UA})
    parsed = signature_request(JSON, raw, {}, {"Authorization": "Bearer tok"})
    assert parsed.request == SignRequest(url=FETCH_URL, user_agent=CLIENT_UA)
    assert parse_api_key({}, {"Authorization": "Bearer tok"}) == "tok"


def test_signature_form_with_url_field() -> None:
    parsed = signature_request(FORM, urlencode({"url": FETCH_URL}).encode())
    assert parsed.request.url == FETCH_URL


@pytest.mark.parametrize(
    ("content_type", "raw", "status"),
    [
        ("text/plain", b"", 400),
        ("text/plain", b"   \n", 400),
        (JSON, b'{"url": "https://www.tiktok.com/"', 400),
        (JSON, b'{"userAgent": "x"}', 400),
        (JSON, b'{"url": 5}', 400),
        ("text/plain", b"\xc3\x28", 400),
        ("image/png", b"\x89PNG", 415),
        ("text/plain", b"h" * (MAX_BODY_BYTES + 1), 413),
    ],
)
def test_signature_bad_input(content_type: str, raw: bytes, status: int) -> None:
    with pytest.raises(ApiError) as caught:
        signature_request(content_type, raw)
    assert (caught.value.status, caught.value.type) == (status, "VALIDATION_ERROR")


# --- our own /api/signature ----------------------------------------------------------


def test_own_room_url_is_signed_as_given() -> None:
    room = "https://www.tiktok.com/@someone/live"
    parsed = own_request({"roomUrl": room}, {"apiKey": "k"})
    assert parsed.request == SignRequest(url=room)
    assert parse_api_key({"apiKey": "k"}, {}) == "k"


def test_own_url_user_agent_and_ms_token() -> None:
    parsed = own_request({"url": FETCH_URL, "userAgent": CLIENT_UA, "msToken": "abc-_="})
    assert parsed.request == SignRequest(url=FETCH_URL, user_agent=CLIENT_UA, ms_token="abc-_=")


def test_own_null_other_url_is_unset_and_empty_ms_token_is_none() -> None:
    parsed = own_request({"url": FETCH_URL, "roomUrl": None, "msToken": ""})
    assert parsed.request == SignRequest(url=FETCH_URL)


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"url": ""},
        {"roomUrl": "  "},
        {"url": FETCH_URL, "roomUrl": "https://www.tiktok.com/@x/live"},
        {"url": FETCH_URL, "roomUrl": FETCH_URL},  # exactly one, as the document says
        {"url": "", "roomUrl": FETCH_URL},
        {"roomUrl": 3},
        {"url": FETCH_URL, "msToken": 3},
    ],
)
def test_own_bad_fields(fields: dict[str, object]) -> None:
    with pytest.raises(ApiError) as caught:
        own_request(fields)
    assert (caught.value.status, caught.value.type) == (400, "VALIDATION_ERROR")


# --- handed to the core ---------------------------------------------------------------


@pytest.mark.parametrize("url", ["https://example.com/webcast/im/fetch/?aid=1988"])
async def test_foreign_url_is_parsed_then_refused_by_the_core(
    native_signer: Signer, url: str
) -> None:
    parsed = eulerstream_v2_request({"url": url})
    with pytest.raises(InvalidSignRequest) as caught:
        await native_signer.sign(parsed.request)
    error = api_error_from_sign_error(caught.value)
    assert (error.status, error.type) == (400, "VALIDATION_ERROR")
    assert "url" in error.message


# --- text that cannot be encoded (issue 15.1) -------------------------------------------

SURROGATE = "\ud800"


@pytest.mark.parametrize(
    ("parse", "field"),
    [
        (lambda: eulerstream_v2_request({"url": FETCH_URL, "userAgent": SURROGATE}), "userAgent"),
        (lambda: eulerstream_v2_request({"url": FETCH_URL, "userAgent": "a\x00b"}), "userAgent"),
        (lambda: eulerstream_v2_request({"url": FETCH_URL + SURROGATE}), "url"),
        (lambda: eulerstream_v2_request({"url": FETCH_URL + "\x00"}), "url"),
        (lambda: eulerstream_v2_request({"url": FETCH_URL, "method": "G\x00"}), "method"),
        (lambda: eulerstream_v2_request({"url": FETCH_URL, "payload": SURROGATE}), "payload"),
        (lambda: eulerstream_v2_request({"url": FETCH_URL, "sessionId": "s\r\n"}), "sessionId"),
        (lambda: eulerstream_v1_request({"url": FETCH_URL, "client": "c\x00"}), "client"),
        (lambda: eulerstream_v1_request({"url": FETCH_URL + "%00" + SURROGATE}), "url"),
        (lambda: own_request({"url": FETCH_URL, "msToken": SURROGATE}), "msToken"),
        (lambda: own_request({"roomUrl": FETCH_URL + "\x7f"}), "roomUrl"),
        (lambda: own_request({"url": FETCH_URL, "userAgent": "UA\udfff"}), "userAgent"),
        (
            lambda: signature_request(JSON, _json({"url": FETCH_URL, "userAgent": SURROGATE})),
            "userAgent",
        ),
        (lambda: parse_api_key({}, {"X-Api-Key": "k" + SURROGATE}), "X-Api-Key"),
        (lambda: parse_api_key({}, {"Authorization": "Bearer \x00"}), "Authorization"),
        (lambda: parse_api_key({"apiKey": SURROGATE}, {}), "apiKey"),
    ],
)
def test_unencodable_text_is_a_400_naming_the_field(
    parse: Callable[[], object], field: str
) -> None:
    with pytest.raises(ApiError) as caught:
        parse()
    assert (caught.value.status, caught.value.type) == (400, "VALIDATION_ERROR")
    assert f"'{field}'" in caught.value.message


def test_a_payload_may_hold_newlines() -> None:
    parsed = eulerstream_v2_request({"url": FETCH_URL, "method": "POST", "payload": "a\nb"})
    assert parsed.request.body == "a\nb"


# --- malformed URLs are refused before the queue (issue 15.3) ---------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://[www.tiktok.com]/",
        "https://[::1/x",
        "https://www.tiktok.com:99999/",
        "https://evil.com\\.tiktok.com/",
        "ftp://www.tiktok.com/",
        "https://tiktok.com@evil.com/",
    ],
)
def test_malformed_urls_are_a_400(url: str) -> None:
    parsers: list[Callable[[], object]] = [
        lambda: eulerstream_v1_request({"url": url}),
        lambda: eulerstream_v2_request({"url": url}),
        lambda: own_request({"roomUrl": url}),
        lambda: signature_request("text/plain", url.encode()),
    ]
    for parse in parsers:
        with pytest.raises(ApiError) as caught:
            parse()
        assert (caught.value.status, caught.value.type) == (400, "VALIDATION_ERROR")
        assert "'url'" in caught.value.message or "'roomUrl'" in caught.value.message


# --- JSON that the standard library cannot take (issue 15.4) ----------------------------


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b'{"url": ' + b"[" * 1000 + b"]" * 1000 + b"}", "deeper than"),
        (b"[" * 60_000, "deeper than"),
        (b'{"a": ' + b"{" * 40 + b"}" * 40 + b"}", "deeper than"),
        (b'{"url": ' + b"9" * 4301 + b"}", "digits"),
        (b'{"url": -' + b"9" * 65 + b"}", "digits"),
        (b'{"url": NaN}', "not JSON"),
        (b'{"url": Infinity}', "not JSON"),
    ],
)
def test_json_bombs_are_a_400(raw: bytes, fragment: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_sign_body(JSON, raw)
    assert (caught.value.status, caught.value.type) == (400, "VALIDATION_ERROR")
    assert fragment in caught.value.message
    # /signature reads a body that does not start with `{` as a raw URL: still a 400.
    with pytest.raises(ApiError) as caught:
        signature_request(JSON, raw)
    assert caught.value.status == 400
    with pytest.raises(JsonRefused, match=fragment):
        parse_json(raw)


def test_brackets_inside_strings_do_not_count_toward_depth() -> None:
    text = json.dumps({"url": FETCH_URL, "payload": "[{" * 500 + '\\"' + "}]" * 500})
    assert parse_json(text) == json.loads(text)
    nested: object = "x"
    for _ in range(MAX_JSON_DEPTH - 1):
        nested = [nested]
    assert parse_json(json.dumps({"a": nested})) == {"a": nested}
    assert parse_json(b'{"n": ' + b"9" * MAX_JSON_INT_DIGITS + b"}")
