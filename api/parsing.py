"""Each client dialect's HTTP input turned into a `SignRequest` and the caller's API key.

Inputs are plain data (content type, raw bytes, query and header mappings), so every
rule here is testable without a server. Anything wrong with the input raises `ApiError`
and nothing else; whether the URL's host may be signed is the core's decision.

Each dialect's fields are declared once, as `FieldSpec` tables: the parser checks input
against them and `api.openapi` describes them, so the document and the parser cannot
drift. Text that cannot be encoded (a lone surrogate) or that holds control characters
is refused here, naming the field, before it can reach the queue or a browser.

`parse_json` is the one JSON parser for request bodies (admin routes included): it
bounds nesting depth and integer size, which the standard library would turn into a
RecursionError or a ValueError deep inside `json.loads`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl

from signer import InvalidSignRequest, SignerSettings, SignRequest
from signer.config import MAX_BODY_BYTES
from signer.urls import METHODS, MS_TOKEN_PATTERN, bad_text, split_url

from .errors import ApiError

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_JSON_INT_DIGITS",
    "MAX_URL_LENGTH",
    "OWN_FIELDS",
    "SIGNATURE_FIELDS",
    "V1_QUERY",
    "V2_FIELDS",
    "FieldSpec",
    "JsonRefused",
    "ParsedSign",
    "eulerstream_v1_request",
    "eulerstream_v2_request",
    "own_request",
    "parse_api_key",
    "parse_json",
    "parse_sign_body",
    "signature_request",
]

JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"

# TikTokLive sends the literal `apiKey=None` when no key is configured.
_NO_KEY_VALUES = frozenset({"", "none", "null", "undefined"})

_REQUEST_TYPES = ("xhr", "fetch")
_BOOLEAN_TEXTS = {"true": True, "1": True, "false": False, "0": False}

_EMPTY: Mapping[str, str] = {}

# Deeper than any real body; json.loads recurses per level and gives up near 1,000.
MAX_JSON_DEPTH = 32
# Python refuses to parse integers over 4,300 digits with a ValueError; no field of ours
# is a number that long.
MAX_JSON_INT_DIGITS = 64
# The core's default URL limit (SIGNER_MAX_URL_LENGTH), shown in the OpenAPI document;
# the core itself enforces the configured one.
MAX_URL_LENGTH: int = SignerSettings.model_fields["max_url_length"].default
MAX_USER_AGENT_LENGTH = 1024
MAX_INFO_LENGTH = 256  # informational query fields, kept short so a GET fits its line


class JsonRefused(ValueError):
    """A body that is not JSON we accept (malformed, too deep, a giant number)."""


_STRING_IN_JSON = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")


def _check_depth(text: str) -> None:
    # Cheap: only a body with many brackets is scanned, its strings blanked out first.
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return
    depth = 0
    for char in _NOT_BRACKETS.sub("", _STRING_IN_JSON.sub('""', text)):
        if char in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise JsonRefused(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        else:
            depth -= 1


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_JSON_INT_DIGITS:
        raise JsonRefused(f"a number has more than {MAX_JSON_INT_DIGITS} digits")
    return int(digits)


def _no_constant(name: str) -> object:
    raise JsonRefused(f"{name} is not JSON")


def parse_json(raw: bytes | str) -> object:
    """`raw` parsed as JSON; raises `JsonRefused` (a ValueError) for anything malformed,
    nested deeper than `MAX_JSON_DEPTH` or holding an integer longer than
    `MAX_JSON_INT_DIGITS`, and UnicodeDecodeError for bytes that are not UTF-8."""
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    _check_depth(text)
    try:
        return json.loads(text, parse_int=_bounded_int, parse_constant=_no_constant)
    except JsonRefused:
        raise
    except json.JSONDecodeError as error:
        raise JsonRefused(f"{error.msg} at {error.pos}") from None
    except (ValueError, RecursionError) as error:  # the depth scan should make these moot
        raise JsonRefused(str(error) or type(error).__name__) from None


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One input field: how the parser checks it and how the OpenAPI document shows it.

    Every field may be absent or null (clients send null for unset). A `text` field
    refuses control characters; every string refuses lone surrogates. `pattern` and
    `max_length` are documented; the core enforces them (its limits are settings).
    """

    name: str
    description: str
    kind: Literal["string", "boolean"] = "string"
    text: bool = True
    enum: tuple[str, ...] = ()
    pattern: str | None = None
    max_length: int | None = None
    min_length: int | None = None
    default: object = None


def _host_pattern(patterns: list[str]) -> str:
    def literal(text: str) -> str:
        # Hosts are case-insensitive, and `(?i)` is not in every regex dialect.
        return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in text)

    label = r"[A-Za-z0-9_-]{1,63}"
    options = []
    for pattern in patterns:
        if pattern.startswith("*."):
            options.append(rf"(?:{label}\.)+{literal(pattern[2:])}")
        else:
            options.append(literal(pattern))
    return "(?:" + "|".join(options) + ")"


_PORT = (
    r"(?::(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])?)?"
)
# A URL the core signs with its default settings: an allowed host, no userinfo, no
# backslash, no spaces or control characters (see signer.urls.split_url).
URL_PATTERN = (
    "^[Hh][Tt][Tt][Pp][Ss]?://"
    + _host_pattern(SignerSettings.model_fields["allowed_hosts"].default_factory())  # type: ignore[misc, call-arg]
    + _PORT
    + r"(?:[/?#][!-\[\]-~]*)?$"
)
_NO_CONTROLS = r"^[^\x00-\x1f\x7f]*$"

_URL_DESCRIPTION = "The unsigned TikTok URL; its host must be on the allowed list."
URL_FIELD = FieldSpec(
    "url", _URL_DESCRIPTION, pattern=URL_PATTERN, max_length=MAX_URL_LENGTH, min_length=1
)
_USER_AGENT = FieldSpec(
    "userAgent",
    "User-Agent the client will send; the profile is matched to it.",
    pattern=_NO_CONTROLS,
    max_length=MAX_USER_AGENT_LENGTH,
)

V1_QUERY: tuple[FieldSpec, ...] = (
    URL_FIELD,
    FieldSpec(
        "client",
        "Client name, e.g. ttlive-node; informational.",
        pattern=_NO_CONTROLS,
        max_length=MAX_INFO_LENGTH,
    ),
    FieldSpec(
        "uuc", "Viewer count hint; informational.", pattern=_NO_CONTROLS, max_length=MAX_INFO_LENGTH
    ),
)

V2_FIELDS: tuple[FieldSpec, ...] = (
    URL_FIELD,
    _USER_AGENT,
    FieldSpec(
        "method",
        "HTTP method of the signed request; empty means GET.",
        enum=("", *METHODS),
        default="GET",
    ),
    FieldSpec("type", "How the client sends it.", enum=("", *_REQUEST_TYPES)),
    FieldSpec("payload", "Body of the signed request, if any.", text=False),
    FieldSpec("sessionId", "Passed through.", pattern=_NO_CONTROLS),
    FieldSpec("ttTargetIdc", "Passed through.", pattern=_NO_CONTROLS),
    FieldSpec("ttwid", "Passed through.", pattern=_NO_CONTROLS),
    FieldSpec("includeVerifyFp", "Add verifyFp to the signed URL.", kind="boolean", default=True),
)

SIGNATURE_FIELDS: tuple[FieldSpec, ...] = (URL_FIELD, _USER_AGENT)

OWN_FIELDS: tuple[FieldSpec, ...] = (
    URL_FIELD,
    FieldSpec(
        "roomUrl",
        "Alternative to `url`, e.g. a LIVE page URL; signed as given.",
        pattern=URL_PATTERN,
        max_length=MAX_URL_LENGTH,
        min_length=1,
    ),
    _USER_AGENT,
    FieldSpec(
        "msToken", "Your own msToken, put into the signed URL.", pattern=f"^{MS_TOKEN_PATTERN}$"
    ),
)


_DECLARED = frozenset(spec.name for spec in (*V2_FIELDS, *OWN_FIELDS))


def _check_fields(fields: Mapping[str, object], specs: tuple[FieldSpec, ...]) -> None:
    """Types and encodability of every declared field present; names the field at fault."""
    for spec in specs:
        value = fields.get(spec.name)
        if value is None:
            continue
        if spec.kind == "boolean":
            _optional_bool(fields, spec.name)
            continue
        if not isinstance(value, str):
            raise _invalid(f"field {spec.name!r} must be a string, not {type(value).__name__}")
        problem = bad_text(value, controls=spec.text)
        if problem is not None:
            raise _invalid(f"field {spec.name!r} {problem}")


@dataclass(frozen=True, slots=True)
class ParsedSign:
    """A parsed sign call: the request for the core and pass-through fields. (The API key
    is not here: the admission middleware reads it once, with `parse_api_key`.)

    `extras` holds what the dialect sends but the core does not use (EulerStream's
    `sessionId`, `ttTargetIdc`, `type`, `client`, ...), so handlers can log or forward it.
    """

    request: SignRequest
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
        data = parse_json(text)
    except JsonRefused as error:
        raise _invalid(f"request body is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise _invalid('request body must be a JSON object, e.g. {"url": "https://..."}')
    return data


def _parse_form(text: str) -> dict[str, object]:
    fields: dict[str, object] = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        # A repeated field of ours is ambiguous; refusing it beats silently picking one.
        # Fields we do not read may repeat: they are ignored either way.
        if name in fields and name in _DECLARED:
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
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    # aiohttp keeps header bytes that are not UTF-8 as lone surrogates.
    problem = bad_text(value) if value is not None else None
    if problem is not None:
        raise _invalid(f"header {name!r} {problem}")
    return value


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
    query_key = query.get("apiKey")
    problem = bad_text(query_key) if query_key is not None else None
    if problem is not None:
        raise _invalid(f"query parameter 'apiKey' {problem}")
    return _key_or_none(query_key)


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
    url = url.strip()
    # Its shape is checked here, so a malformed URL is a 400 at once; whether its host
    # may be signed is the core's (configured) decision.
    try:
        split_url(url)
    except InvalidSignRequest as error:
        raise _invalid(f"field {name!r} {error.reason}") from None
    return url


def _optional_bool(fields: Mapping[str, object], name: str) -> bool | None:
    value = fields.get(name)
    if value is None or isinstance(value, bool):
        return value
    # Form bodies and query strings carry booleans as text, and an unset one as
    # `null`, `None` or nothing.
    if isinstance(value, str) and value.strip().lower() in _NO_KEY_VALUES:
        return None
    if isinstance(value, str) and value.strip().lower() in _BOOLEAN_TEXTS:
        return _BOOLEAN_TEXTS[value.strip().lower()]
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
    _check_fields(query, V1_QUERY)
    url = _required_url(query)
    return ParsedSign(
        request=SignRequest(url=url),
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
    _check_fields(fields, V2_FIELDS)
    _check_fields(query, V1_QUERY[1:2])
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
    return ParsedSign(request=request, extras=extras)


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
    _check_fields(fields, SIGNATURE_FIELDS)
    request = SignRequest(url=_required_url(fields), user_agent=_optional_str(fields, "userAgent"))
    return ParsedSign(request=request)


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
    _check_fields(fields, OWN_FIELDS)
    url = _optional_str(fields, "url")
    room_url = _optional_str(fields, "roomUrl")
    # Exactly one of them, as the document's `oneOf` says: the other absent or null.
    if url is not None and room_url is not None:
        raise _invalid("give either 'url' or 'roomUrl', not both")
    if url is None and room_url is None:
        raise _invalid("field 'url' (or 'roomUrl') is required: the TikTok URL to sign")
    name = "url" if url is not None else "roomUrl"
    ms_token = _optional_str(fields, "msToken")
    request = SignRequest(
        url=_required_url(fields, name),
        user_agent=_optional_str(fields, "userAgent"),
        ms_token=ms_token.strip() if ms_token and ms_token.strip() else None,
    )
    return ParsedSign(request=request)
