"""A `SignResult` rendered as each client dialect's exact 200 response body.

Key names are the clients' own (see specs/clients.md), mixed case and all: a client reads
`signedUrl` or `X-Bogus` literally, so these dicts are the contract.
"""

from __future__ import annotations

from signer import Navigator, SignResult

__all__ = [
    "SIGN_SUCCESS_MESSAGE",
    "TIKTOK_COOKIE_DOMAIN",
    "accept_language",
    "eulerstream_v1_response",
    "eulerstream_v2_response",
    "own_response",
    "signature_response",
]

SIGN_SUCCESS_MESSAGE = "Sign success"
TIKTOK_COOKIE_DOMAIN = ".tiktok.com"


def accept_language(navigator: Navigator) -> str:
    """The Accept-Language header the signing browser sends, e.g. `en-US,en;q=0.9`."""
    languages = list(navigator.languages) or [navigator.language]
    parts = [languages[0]]
    for index, language in enumerate(languages[1:], start=1):
        quality = max(1.0 - index / 10, 0.1)
        parts.append(f"{language};q={quality:.1f}")
    return ",".join(parts)


def eulerstream_v1_response(result: SignResult) -> dict[str, object]:
    """GET /webcast/sign_url, the legacy flat shape TikTok-Live-Connector 1.x reads."""
    return {
        "code": 200,
        "message": SIGN_SUCCESS_MESSAGE,
        "signedUrl": result.signed_url,
        "User-Agent": result.user_agent,
        "msToken": result.ms_token,
        "X-Bogus": result.x_bogus,
        "X-Gnarly": result.x_gnarly,
        "_signature": result.signature,
        "browserName": result.browser_name,
        "browserVersion": result.browser_version,
    }


def _tokens(result: SignResult) -> dict[str, str]:
    # EulerStream lists only the tokens that have a value; clients copy them as-is.
    candidates = {
        "X-Bogus": result.x_bogus,
        "X-Gnarly": result.x_gnarly,
        "msToken": result.ms_token,
        "verifyFp": result.verify_fp,
        "x-tt-params": result.x_tt_params,
        "_signature": result.signature,
    }
    return {name: value for name, value in candidates.items() if value}


def _request_headers(result: SignResult) -> dict[str, str]:
    # Only what makes the follow-up request look like the signing browser. x-tt-params
    # stays in `tokens`: sent as a header to webcast endpoints it would alter the request.
    return {
        "User-Agent": result.user_agent,
        "Accept-Language": accept_language(result.navigator),
    }


def _cookies(result: SignResult) -> list[dict[str, str]]:
    # msToken is the one cookie we produce; an empty one would overwrite a client's real
    # cookie with nothing, so it is left out.
    if not result.ms_token:
        return []
    return [
        {
            "name": "msToken",
            "value": result.ms_token,
            "domain": TIKTOK_COOKIE_DOMAIN,
            "path": "/",
        }
    ]


def eulerstream_v2_response(result: SignResult) -> dict[str, object]:
    """POST /webcast/sign_url and /tiktok/sign_url (TLC 2.x+, TikTokLive)."""
    return {
        "code": 200,
        "message": SIGN_SUCCESS_MESSAGE,
        "response": {
            "signedUrl": result.signed_url,
            "userAgent": result.user_agent,
            "browserName": result.browser_name,
            "browserVersion": result.browser_version,
            "tokens": _tokens(result),
            "requestHeaders": _request_headers(result),
            "cookies": _cookies(result),
        },
    }


def signature_response(result: SignResult) -> dict[str, object]:
    """POST /signature, as tiktok-signature and SignTok answer it.

    `signature` is the legacy `_signature` (empty unless TikTok's script was supplied);
    both spellings of X-Bogus are given because SignTok and tiktok-signature differ.
    """
    navigator = result.navigator
    return {
        "status": "ok",
        "data": {
            "signature": result.signature,
            "verify_fp": result.verify_fp,
            "signed_url": result.signed_url,
            "x-tt-params": result.x_tt_params,
            "x-bogus": result.x_bogus,
            "X-Bogus": result.x_bogus,
            "x-gnarly": result.x_gnarly,
            "timestamp": result.timestamp,
            "navigator": {
                "deviceScaleFactor": navigator.device_scale_factor,
                "user_agent": result.user_agent,
                "browser_language": navigator.language,
                "browser_platform": navigator.platform,
                "browser_name": navigator.browser_name,
                "browser_version": navigator.browser_version,
            },
        },
    }


def own_response(result: SignResult, response_time_ms: float) -> dict[str, object]:
    """POST /api/signature: every token, the full navigator and where it was signed."""
    return {
        "status": "success",
        "data": {
            "signature": result.signature,
            "signed_url": result.signed_url,
            "X-Bogus": result.x_bogus,
            "X-Gnarly": result.x_gnarly,
            "x-tt-params": result.x_tt_params,
            "verify_fp": result.verify_fp,
            "ms_token": result.ms_token,
            "ms_token_minted": result.ms_token_minted,
            "navigator": result.navigator.to_json(),
            "engine": result.engine,
            "profile": result.profile,
            "timestamp": result.timestamp,
        },
        "response_time_ms": round(response_time_ms, 3),
    }
