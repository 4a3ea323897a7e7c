"""Request validation and query shaping, before any engine sees a request."""

from __future__ import annotations

import time

import pytest

from signer import InvalidSignRequest, Signer, SignerSettings, SignRequest, SignResult
from signer.native import profile_navigator
from signer.profiles import get_profile
from signer.urls import (
    PreparedRequest,
    append_tokens,
    host_allowed,
    prepare_request,
    rewrite_query,
)

SETTINGS = SignerSettings(engine="native")
BASE = "https://webcast.tiktok.com/webcast/im/fetch/"


@pytest.mark.parametrize(
    ("url", "field", "fragment"),
    [
        ("", "url", "empty"),
        ("   ", "url", "empty"),
        ("not a url", "url", "spaces"),
        ("ftp://www.tiktok.com/x", "url", "http"),
        ("//www.tiktok.com/x", "url", "http"),
        ("https://", "url", "no host"),
        ("https://evil.com/webcast/im/fetch/?aid=1", "url", "not allowed"),
        ("https://tiktok.com.evil.com/x", "url", "not allowed"),
        ("https://eviltiktok.com/x", "url", "not allowed"),
        ("https://user:pw@www.tiktok.com/x", "url", "credentials"),
        ("https://www.tiktok.com:99999/x", "url", "valid URL"),
        ("https://[::1/x", "url", "valid URL"),
        ("https://www.tiktok.com/x\r\nHost: a", "url", "control"),
        (BASE + "?a=" + "x" * 20_000, "url", "longer than"),
    ],
)
def test_bad_urls_raise_the_typed_error(url: str, field: str, fragment: str) -> None:
    with pytest.raises(InvalidSignRequest) as caught:
        prepare_request(SignRequest(url), SETTINGS)
    assert caught.value.field == field
    assert fragment in caught.value.message
    assert caught.value.code == "VALIDATION_ERROR"


def test_non_string_url_is_a_validation_error() -> None:
    with pytest.raises(InvalidSignRequest):
        prepare_request(SignRequest(None), SETTINGS)  # type: ignore[arg-type]


def test_oversized_body_and_bad_method_and_agent() -> None:
    with pytest.raises(InvalidSignRequest, match="body"):
        prepare_request(SignRequest(BASE, body=b"x" * 70_000), SETTINGS)
    with pytest.raises(InvalidSignRequest, match="method"):
        prepare_request(SignRequest(BASE, method="BREW"), SETTINGS)
    with pytest.raises(InvalidSignRequest, match="user_agent"):
        prepare_request(SignRequest(BASE, user_agent="a\nb"), SETTINGS)
    with pytest.raises(InvalidSignRequest, match="ms_token"):
        prepare_request(SignRequest(BASE, ms_token="a b&c"), SETTINGS)


def test_hosts() -> None:
    patterns = ["tiktok.com", "*.tiktok.com", "*.tiktokv.com"]
    assert host_allowed("www.tiktok.com", patterns)
    assert host_allowed("WEBCAST.TikTok.com.", patterns)
    assert host_allowed("tiktok.com", patterns)
    assert host_allowed("api16-normal-c-useast1a.tiktokv.com", patterns)
    assert not host_allowed("tiktokv.com", patterns)
    assert not host_allowed("nottiktok.com", patterns)
    assert not host_allowed("tiktok.com.evil.net", patterns)


def test_configured_hosts_are_honoured() -> None:
    settings = SignerSettings(engine="native", allowed_hosts=["example.org"])
    prepare_request(SignRequest("https://example.org/a?b=1"), settings)
    with pytest.raises(InvalidSignRequest):
        prepare_request(SignRequest(BASE), settings)


def test_stale_tokens_are_stripped_and_the_url_ms_token_kept() -> None:
    url = BASE + "?aid=1988&X-Bogus=DFSzold&msToken=abc%3D&room_id=7&X-Gnarly=old&_signature=x"
    prepared = prepare_request(SignRequest(url), SETTINGS)
    assert prepared.query == "aid=1988&room_id=7"
    assert prepared.ms_token == "abc="
    assert not prepared.ms_token_minted
    assert prepared.base == BASE
    explicit = prepare_request(SignRequest(url, ms_token="mine"), SETTINGS)
    assert explicit.ms_token == "mine"


def test_ms_token_minted_only_when_asked() -> None:
    assert prepare_request(SignRequest(BASE + "?aid=1"), SETTINGS).ms_token == ""
    minted = prepare_request(SignRequest(BASE + "?aid=1", mint_ms_token=True), SETTINGS)
    assert minted.ms_token_minted
    assert 148 <= len(minted.ms_token) <= 168


def test_existing_verify_fp_is_kept_and_not_added_twice() -> None:
    prepared = prepare_request(SignRequest(BASE + "?aid=1&verifyFp=verify_x"), SETTINGS)
    assert prepared.query == "aid=1&verifyFp=verify_x"
    assert not prepared.include_verify_fp


def test_default_deadline() -> None:
    prepared = prepare_request(SignRequest(BASE), SETTINGS)
    assert 4.5 < prepared.deadline - time.time() <= 5.0


def test_rewrite_matches_the_profile_and_keeps_other_segments() -> None:
    navigator = profile_navigator(get_profile("mac-chrome-retina"), 156)
    query = "aid=1988&browser_platform=Win32&os=windows&screen_width=1&odd=%2F&browser_version=1"
    prepared = prepare_request(SignRequest(BASE + "?" + query), SETTINGS)
    rewritten = prepared.query_for(navigator)
    assert "browser_platform=MacIntel" in rewritten
    assert "os=mac" in rewritten
    assert "screen_width=1512" in rewritten
    assert "odd=%2F" in rewritten
    assert "browser_version=5.0%20%28Macintosh%3B%20Intel%20Mac%20OS%20X" in rewritten
    off = prepare_request(SignRequest(BASE + "?" + query, rewrite_params=False), SETTINGS)
    assert off.query_for(navigator) == query
    assert rewrite_query("", {"os": "mac"}) == ""


def test_append_tokens_order() -> None:
    assert append_tokens("a=1", "verify_x", "tok") == "a=1&verifyFp=verify_x&msToken=tok"
    assert append_tokens("", "", "") == "msToken="


# --- hosts as a browser reads them (issue 15.10) ---------------------------------------

# Each trick is refused: Python's urlsplit and a browser's WHATWG parser would see
# different hosts, or the host is not a plain DNS name at all.
HOST_TRICKS = [
    "https://evil.com\\.tiktok.com/",  # WHATWG: host evil.com, path /.tiktok.com/
    "https://evil.com\\@www.tiktok.com/",
    "https:/\\evil.com/.tiktok.com/",
    "https://www.tiktok.com\\@evil.com/",
    "https://tiktok.com@evil.com/",  # userinfo tiktok.com, host evil.com
    "https://www.tiktok.com:@evil.com/",
    "https://www.tiktok.com%40evil.com/",
    "https://..tiktok.com/",
    "https://evil..tiktok.com/",
    "https://.www.tiktok.com/",
    "https://www.tiktok.com./",
    "https://www.tiktok.com../",
    "https://evil.com%2f.tiktok.com/",
    "https://evil.com%00.tiktok.com/",
    "https://www%2etiktok.com/",
    "https://evil.com\t.tiktok.com/",  # WHATWG strips tabs and newlines
    "https://evil.com\n.tiktok.com/",
    "https://www.tiktok\u3002com/",  # ideographic full stop: a dot to IDNA
    "https://www.tiktok\uff0ecom/",  # fullwidth full stop
    "https://evil\uff0ecom.tiktok.com/",
    "https://www.tiktok.\u212aom/",  # Kelvin sign lower-cases to k
    "https://www.tìktok.com/",
    "https://[::1]/",
    "https://127.0.0.1/",
    "https://2130706433/",
    "https://0x7f.1/",
    "https://www.tiktok.com:99999/",
    "https://www.tiktok.com:80a/",
    "https://www.tiktok.com:+80/",
    "https://www.tiktok.com:-1/",
    "https://www.tiktok.com\ud800/",
    "https:www.tiktok.com/",  # WHATWG: host www.tiktok.com; urlsplit: no host
    "https:///www.tiktok.com/",
]


@pytest.mark.parametrize("url", HOST_TRICKS)
def test_host_tricks_are_refused(url: str) -> None:
    with pytest.raises(InvalidSignRequest) as caught:
        prepare_request(SignRequest(url), SETTINGS)
    assert caught.value.field == "url"


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://WWW.TikTok.COM/x", "www.tiktok.com"),
        ("https://www.tiktok.com:443/x", "www.tiktok.com:443"),
        ("https://www.tiktok.com:/x", "www.tiktok.com:"),
        ("https://api16-normal-c-useast1a.tiktokv.com/x", "api16-normal-c-useast1a.tiktokv.com"),
        ("https://xn--tktok-bsa.tiktok.com/x", "xn--tktok-bsa.tiktok.com"),
    ],
)
def test_plain_hosts_are_signed_as_a_browser_sees_them(url: str, host: str) -> None:
    prepared = prepare_request(SignRequest(url), SETTINGS)
    assert prepared.base.lower() == f"https://{host}/x"


# --- input that cannot be encoded (issue 15.5) ------------------------------------------


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (SignRequest(BASE + "?a=\ud800"), "url"),
        (SignRequest(BASE + "?a=\x00"), "url"),
        (SignRequest(BASE, user_agent="Mozilla/5.0 \ud800"), "user_agent"),
        (SignRequest(BASE, user_agent="Mozilla\x00"), "user_agent"),
        (SignRequest(BASE, ms_token="abc\udfff"), "ms_token"),
        (SignRequest(BASE, method="GET\ud800"), "method"),
        (SignRequest(BASE, method="POST", body="{\ud800}"), "body"),
        (SignRequest(BASE, body=12), "body"),  # type: ignore[arg-type]
        (SignRequest(BASE, deadline="soon"), "deadline"),  # type: ignore[arg-type]
    ],
)
def test_unencodable_input_is_the_typed_error(request_: SignRequest, field: str) -> None:
    with pytest.raises(InvalidSignRequest) as caught:
        prepare_request(request_, SETTINGS)
    assert caught.value.field == field


async def test_a_poison_request_fails_alone_in_its_batch() -> None:
    requests = [SignRequest(BASE + f"?aid={i}") for i in range(3)]
    requests.insert(1, SignRequest(BASE + "?a=\ud800"))
    requests.insert(3, SignRequest(BASE, deadline="soon"))  # type: ignore[arg-type]
    async with Signer(SETTINGS) as signer:
        answers = await signer.sign_many(requests)
    assert [type(answer).__name__ for answer in answers] == [
        "SignResult",
        "InvalidSignRequest",
        "SignResult",
        "InvalidSignRequest",
        "SignResult",
    ]


async def test_any_error_while_preparing_stays_with_its_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A bug in preparation (not a bad input it knows about) still fails one request only.
    import signer.signer as signer_module

    def flaky(request: SignRequest, settings: SignerSettings) -> PreparedRequest:
        if "boom" in request.url:
            raise KeyError("boom")
        return prepare_request(request, settings)

    monkeypatch.setattr(signer_module, "prepare_request", flaky)
    async with Signer(SETTINGS) as signer:
        answers = await signer.sign_many([SignRequest(BASE + "?boom=1"), SignRequest(BASE)])
    assert isinstance(answers[0], InvalidSignRequest)
    assert "KeyError" in answers[0].message
    assert isinstance(answers[1], SignResult)
