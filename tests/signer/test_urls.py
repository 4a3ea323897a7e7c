"""Request validation and query shaping, before any engine sees a request."""

from __future__ import annotations

import time

import pytest

from signer import InvalidSignRequest, SignerSettings, SignRequest
from signer.native import profile_navigator
from signer.profiles import get_profile
from signer.urls import append_tokens, host_allowed, prepare_request, rewrite_query

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
