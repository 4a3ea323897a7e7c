"""Each client dialect's HTTP input turned into a `SignRequest` and the caller's API key.

Inputs are plain data (content type, raw bytes, query and header mappings), so every
rule here is testable without a server. Anything wrong with the input raises `ApiError`
and nothing else; whether the URL's host may be signed is the core's decision.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from signer import SignRequest

from .errors import ApiError

__all__ = [
    "MAX_BODY_BYTES",
    "ParsedSign",
    "eulerstream_v1_request",
    "eulerstream_v2_request",
    "own_request",
    "parse_api_key",
    "parse_sign_body",
    "signature_request",
]

# The largest request body accepted; the signer's own limit on a signed payload is the same.
MAX_BODY_BYTES = 64 * 1024

JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"

# TikTokLive sends the literal `apiKey=None` when no key is configured.
_NO_KEY_VALUES = frozenset({"", "none", "null", "undefined"})

_REQUEST_TYPES = frozenset({"xhr", "fetch"})

_EMPTY: Mapping[str, str] = {}


@dataclass(frozen=True, slots=True)
class ParsedSign:
    """A parsed sign call: the request for the core, the API key, and pass-through fields.

    `extras` holds what the dialect sends but the core does not use (EulerStream's
    `sessionId`, `ttTargetIdc`, `type`, `client`, ...), so handlers can log or forward it.
    """

    request: SignRequest
    api_key: str | None
    extras: Mapping[str, str] = field(default_factory=dict)


def _invalid(message: str) -> ApiError:
    return ApiError(400, "VALIDATION_ERROR", message)


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _check_size(raw: bytes) -> None:
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(
            413,
            "VALIDATION_ERROR",
            f"request body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES} bytes",
        )


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid("request body is not valid UTF-8") from None


def _parse_json_object(text: str) -> dict[str, object]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise _invalid(f"request body is not valid JSON ({error.msg} at {error.pos})") from None
    if not isinstance(data, dict):
        raise _invalid('request body must be a JSON object, e.g. {"url": "https://..."}')
    return data


def _parse_form(text: str) -> dict[str, object]:
    fields: dict[str, object] = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        # A repeated field is ambiguous; refusing it beats silently picking one.
        if name in fields:
            raise _invalid(f"form field {name!r} is given more than once")
        fields[name] = value
    return fields


def parse_sign_body(content_type: str, raw: bytes) -> dict[str, object]:
    """The fields of a JSON or form-encoded sign body; raises `ApiError` (400, 413, 415)."""
    _check_size(raw)
    media_type = _media_type(content_type)
    if media_type == JSON_TYPE:
        return _parse_json_object(_decode(raw))
    if media_type == FORM_TYPE:
        return _parse_form(_decode(raw))
    shown = media_type or "none"
    raise ApiError(
        415,
        "VALIDATION_ERROR",
        f"content type {shown!r} is not supported; send {JSON_TYPE} or {FORM_TYPE}",
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # aiohttp's headers are case-insensitive, a plain dict is not: accept both.
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None


def _key_or_none(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return None if value.lower() in _NO_KEY_VALUES else value


def parse_api_key(query: Mapping[str, str], headers: Mapping[str, str]) -> str | None:
    """The caller's API key from `X-Api-Key`, `Authorization: Bearer` or query `apiKey`.

    The first place holding a real key wins, in that order; `None`, `null` and empty
    values mean "no key" wherever they appear, since clients send them when unset.
    """
    header_key = _key_or_none(_header(headers, "X-Api-Key"))
    if header_key is not None:
        return header_key
    authorization = _header(headers, "Authorization")
    if authorization is not None:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() == "bearer":
            bearer_key = _key_or_none(credentials)
            if bearer_key is not None:
                return bearer_key
    return _key_or_none(query.get("apiKey"))


def _optional_str(fields: Mapping[str, object], name: str) -> str | None:
    """A string field, or None when absent or null; any other type is a 400."""
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(f"field {name!r} must be a string, not {type(value).__name__}")
    return value


def _required_url(fields: Mapping[str, object], name: str = "url") -> str:
    url = _optional_str(fields, name)
    if url is None or not url.strip():
        raise _invalid(f"field {name!r} is required: the TikTok URL to sign")
    return url.strip()


def _optional_bool(fields: Mapping[str, object], name: str) -> bool | None:
    value = fields.get(name)
    if value is None or isinstance(value, bool):
        return value
    # Form bodies and query strings carry booleans as text.
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "false", "0"):
        return value.strip().lower() in ("true", "1")
    raise _invalid(f"field {name!r} must be a boolean")


def _extras(fields: Mapping[str, object], names: tuple[str, ...]) -> dict[str, str]:
    extras: dict[str, str] = {}
    for name in names:
        value = _optional_str(fields, name)
        if value:
            extras[name] = value
    return extras


def eulerstream_v1_request(
    query: Mapping[str, str], headers: Mapping[str, str] = _EMPTY
) -> ParsedSign:
    """GET /webcast/sign_url?url=...&client=...&uuc=... (TikTok-Live-Connector 1.x)."""
    url = _required_url(query)
    return ParsedSign(
        request=SignRequest(url=url),
        api_key=parse_api_key(query, headers),
        extras=_extras(query, ("client", "uuc")),
    )


_V2_EXTRAS = ("sessionId", "ttTargetIdc", "ttwid", "type")


def eulerstream_v2_request(
    fields: Mapping[str, object],
    query: Mapping[str, str] = _EMPTY,
    headers: Mapping[str, str] = _EMPTY,
) -> ParsedSign:
    """POST /webcast/sign_url and /tiktok/sign_url (TLC 2.x, TikTokLive), JSON or form.

    `payload` is the body of the request being signed; `sessionId` and `ttTargetIdc`
    are carried through in `extras` along with `type` and the query's `client`.
    """
    url = _required_url(fields)
    method = _optional_str(fields, "method")
    request_type = _optional_str(fields, "type")
    if request_type and request_type.lower() not in _REQUEST_TYPES:
        raise _invalid("field 'type' must be 'xhr' or 'fetch'")
    include_verify_fp = _optional_bool(fields, "includeVerifyFp")
    request = SignRequest(
        url=url,
        method=method.strip() if method and method.strip() else "GET",
        body=_optional_str(fields, "payload") or b"",
        user_agent=_optional_str(fields, "userAgent"),
        include_verify_fp=True if include_verify_fp is None else include_verify_fp,
    )
    extras = _extras(fields, _V2_EXTRAS)
    extras.update(_extras(query, ("client",)))
    return ParsedSign(request=request, api_key=parse_api_key(query, headers), extras=extras)


def signature_request(
    content_type: str,
    raw: bytes,
    query: Mapping[str, str] = _EMPTY,
    headers: Mapping[str, str] = _EMPTY,
) -> ParsedSign:
    """POST /signature (tiktok-signature, SignTok): a raw URL as text, or JSON {url, userAgent}.

    The content type is not trusted to tell the two apart: tiktok-signature's own README
    posts the raw URL with `Content-type: application/json`, and curl's `-d` labels it
    form-encoded. A body starting with `{` is JSON; `url=...` in a form body is a form.
    """
    _check_size(raw)
    media_type = _media_type(content_type)
    if media_type and not (media_type.startswith("text/") or media_type in (JSON_TYPE, FORM_TYPE)):
        raise ApiError(
            415,
            "VALIDATION_ERROR",
            f"content type {media_type!r} is not supported; send the URL as text/plain "
            f'or JSON {{"url": ...}}',
        )
    text = _decode(raw).strip()
    if text.startswith("{"):
        fields = _parse_json_object(text)
    elif media_type == FORM_TYPE and text.startswith("url="):
        fields = _parse_form(text)
    else:
        fields = {"url": text}
    request = SignRequest(url=_required_url(fields), user_agent=_optional_str(fields, "userAgent"))
    return ParsedSign(request=request, api_key=parse_api_key(query, headers))


def own_request(
    fields: Mapping[str, object],
    query: Mapping[str, str] = _EMPTY,
    headers: Mapping[str, str] = _EMPTY,
) -> ParsedSign:
    """POST /api/signature: {url} or {roomUrl}, optional userAgent and msToken.

    A `roomUrl` (e.g. https://www.tiktok.com/@user/live) is signed exactly as given, like
    any other URL: the core checks its host, and guessing the API URLs a page would call
    belongs to the client that calls them.
    """
    url = _optional_str(fields, "url")
    room_url = _optional_str(fields, "roomUrl")
    if url and url.strip() and room_url and room_url.strip() and url.strip() != room_url.strip():
        raise _invalid("give either 'url' or 'roomUrl', not two different URLs")
    name = "url" if url and url.strip() else "roomUrl"
    if name == "roomUrl" and not (room_url and room_url.strip()):
        raise _invalid("field 'url' (or 'roomUrl') is required: the TikTok URL to sign")
    ms_token = _optional_str(fields, "msToken")
    request = SignRequest(
        url=_required_url(fields, name),
        user_agent=_optional_str(fields, "userAgent"),
        ms_token=ms_token.strip() if ms_token and ms_token.strip() else None,
    )
    return ParsedSign(request=request, api_key=parse_api_key(query, headers))
