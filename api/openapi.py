"""The service described as an OpenAPI 3.1 document, and a docs page that needs no CDN.

Request schemas are built from the parser's own `FieldSpec` tables (api/parsing.py), so
what the document accepts is what the service accepts: required fields, lengths,
patterns, enums and nulls come from the same definitions that validate requests.
"""

from __future__ import annotations

from typing import Any, get_args

from accounts import users as accounts
from accounts.tiers import TIERS

from .connect_parsing import CONNECT_QUERY, COOKIE_HEADER, ROOM_ID_FIELD, UNIQUE_ID_FIELD
from .errors import ErrorType
from .parsing import (
    MAX_BODY_BYTES,
    OWN_FIELDS,
    SIGNATURE_FIELDS,
    URL_FIELD,
    V1_QUERY,
    V2_FIELDS,
    FieldSpec,
)

__all__ = ["OPENAPI_VERSION", "openapi_document"]

OPENAPI_VERSION = "3.1.0"

Schema = dict[str, Any]

# Any one key location will do; `{}` because a deployment may run without keys.
_SECURITY: list[dict[str, list[str]]] = [
    {"apiKeyQuery": []},
    {"apiKeyHeader": []},
    {"bearer": []},
    {},
]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _string(description: str, **extra: Any) -> Schema:
    return {"type": "string", "description": description, **extra}


def _object(properties: dict[str, Schema], required: list[str] | None = None) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _json(schema: Schema) -> dict[str, Schema]:
    return {"application/json": {"schema": schema}}


def _errors(error_schema: str, statuses: tuple[int, ...]) -> dict[str, Any]:
    descriptions = {
        400: "Invalid request: malformed body, missing `url`, or a URL that cannot be signed.",
        401: "Missing or invalid API key.",
        413: f"Body larger than {MAX_BODY_BYTES} bytes.",
        414: "Request line too long; send long URLs by POST.",
        415: "Unsupported content type.",
        429: "Rate limit reached; see `Retry-After` and `limit_label`.",
        500: "A produced signature failed its self-check; nothing is returned.",
        503: "Deadline passed or engine unavailable; retry after `Retry-After` seconds.",
    }
    return {
        str(status): {"description": descriptions[status], "content": _json(_ref(error_schema))}
        for status in statuses
    }


_SIGN_ERRORS = (400, 401, 413, 415, 429, 500, 503)

_NAVIGATOR = _object(
    {
        "user_agent": _string("User-Agent of the signing browser."),
        "platform": _string("navigator.platform, e.g. Win32."),
        "language": _string("navigator.language."),
        "languages": {"type": "array", "items": {"type": "string"}},
        "device_scale_factor": {"type": "number"},
        "screen_width": {"type": "integer"},
        "screen_height": {"type": "integer"},
        "timezone": _string("IANA time zone."),
        "browser_name": _string("TikTok's browser_name query value, e.g. Mozilla."),
        "browser_version": _string("TikTok's browser_version query value."),
    },
    [
        "user_agent",
        "platform",
        "language",
        "languages",
        "device_scale_factor",
        "screen_width",
        "screen_height",
        "timezone",
        "browser_name",
        "browser_version",
    ],
)


def field_schema(spec: FieldSpec, *, nullable: bool = True) -> Schema:
    """The JSON Schema of one parser field; null is allowed where the parser reads it as
    absent (clients send null for unset fields)."""
    kind: Any = [spec.kind, "null"] if nullable else spec.kind
    schema: Schema = {"type": kind, "description": spec.description}
    if spec.enum:
        schema["enum"] = [*spec.enum, None] if nullable else list(spec.enum)
    if spec.pattern is not None:
        schema["pattern"] = spec.pattern
    if spec.min_length is not None:
        schema["minLength"] = spec.min_length
    if spec.max_length is not None:
        schema["maxLength"] = spec.max_length
    if spec.default is not None:
        schema["default"] = spec.default
    if spec.kind == "string" and not spec.text:
        # Anything but a lone surrogate, which JSON can spell but UTF-8 cannot carry.
        schema["pattern"] = "^[^\\uD800-\\uDFFF]*$"
    return schema


def fields_schema(specs: tuple[FieldSpec, ...], required: tuple[str, ...] = ()) -> Schema:
    """An object of `specs`; a required field may not be null or empty."""
    properties = {
        spec.name: field_schema(spec, nullable=spec.name not in required) for spec in specs
    }
    return _object(properties, list(required))


_V2_REQUEST = fields_schema(V2_FIELDS, ("url",))

_SCHEMAS: dict[str, Schema] = {
    "Navigator": _NAVIGATOR,
    "EulerStreamV1Response": _object(
        {
            "code": {"type": "integer", "const": 200},
            "message": {"type": "string"},
            "signedUrl": _string("The URL to call; carries msToken, X-Bogus and X-Gnarly."),
            "User-Agent": _string("The User-Agent to send with it."),
            "msToken": {"type": "string"},
            "X-Bogus": {"type": "string"},
            "X-Gnarly": {"type": "string"},
            "_signature": _string("Legacy signature; empty unless configured."),
            "browserName": {"type": "string"},
            "browserVersion": {"type": "string"},
        },
        ["code", "signedUrl", "User-Agent", "msToken", "X-Bogus"],
    ),
    "EulerStreamV2Request": _V2_REQUEST,
    "EulerStreamV2Response": _object(
        {
            "code": {"type": "integer", "const": 200},
            "message": {"type": "string"},
            "response": _object(
                {
                    "signedUrl": {"type": "string"},
                    "userAgent": {"type": "string"},
                    "browserName": {"type": "string"},
                    "browserVersion": {"type": "string"},
                    "tokens": {
                        "type": "object",
                        "description": "Non-empty tokens only: X-Bogus, X-Gnarly, msToken, "
                        "verifyFp, x-tt-params, _signature.",
                        "additionalProperties": {"type": "string"},
                    },
                    "requestHeaders": {
                        "type": "object",
                        "description": "User-Agent and Accept-Language to send.",
                        "additionalProperties": {"type": "string"},
                    },
                    "cookies": {
                        "type": "array",
                        "description": "The msToken cookie, when there is one.",
                        "items": _object(
                            {
                                "name": {"type": "string"},
                                "value": {"type": "string"},
                                "domain": {"type": "string"},
                                "path": {"type": "string"},
                            },
                            ["name", "value", "domain", "path"],
                        ),
                    },
                },
                [
                    "signedUrl",
                    "userAgent",
                    "browserName",
                    "browserVersion",
                    "tokens",
                    "requestHeaders",
                    "cookies",
                ],
            ),
        },
        ["code", "message", "response"],
    ),
    "SignatureRequest": fields_schema(SIGNATURE_FIELDS, ("url",)),
    "SignatureResponse": _object(
        {
            "status": {"type": "string", "const": "ok"},
            "data": _object(
                {
                    "signature": _string("Legacy `_signature`; empty unless configured."),
                    "verify_fp": {"type": "string"},
                    "signed_url": {"type": "string"},
                    "x-tt-params": {"type": "string"},
                    "x-bogus": {"type": "string"},
                    "X-Bogus": _string("Same as x-bogus, SignTok's spelling."),
                    "x-gnarly": {"type": "string"},
                    "timestamp": {"type": "integer"},
                    "navigator": _object(
                        {
                            "deviceScaleFactor": {"type": "number"},
                            "user_agent": {"type": "string"},
                            "browser_language": {"type": "string"},
                            "browser_platform": {"type": "string"},
                            "browser_name": {"type": "string"},
                            "browser_version": {"type": "string"},
                        }
                    ),
                },
                ["signature", "verify_fp", "signed_url", "x-tt-params", "x-bogus", "navigator"],
            ),
        },
        ["status", "data"],
    ),
    # Exactly one of `url` and `roomUrl` (the parser also takes both when they are equal).
    "OwnRequest": {
        **fields_schema(OWN_FIELDS),
        "oneOf": [
            # One of them given, the other absent or null (clients send null for unset).
            {
                "required": ["url"],
                "properties": {
                    "url": field_schema(URL_FIELD, nullable=False),
                    "roomUrl": {"type": "null"},
                },
            },
            {
                "required": ["roomUrl"],
                "properties": {
                    "roomUrl": field_schema(OWN_FIELDS[1], nullable=False),
                    "url": {"type": "null"},
                },
            },
        ],
    },
    "OwnResponse": _object(
        {
            "status": {"type": "string", "const": "success"},
            "data": _object(
                {
                    "signature": {"type": "string"},
                    "signed_url": {"type": "string"},
                    "X-Bogus": {"type": "string"},
                    "X-Gnarly": {"type": "string"},
                    "x-tt-params": {"type": "string"},
                    "verify_fp": {"type": "string"},
                    "ms_token": {"type": "string"},
                    "ms_token_minted": {"type": "boolean"},
                    "navigator": _ref("Navigator"),
                    "engine": {"type": "string"},
                    "profile": {"type": "string"},
                    "timestamp": {"type": "integer"},
                },
                ["signed_url", "X-Bogus", "X-Gnarly", "navigator", "timestamp"],
            ),
            "response_time_ms": {"type": "number"},
        },
        ["status", "data", "response_time_ms"],
    ),
    "EulerStreamError": _object(
        {
            "code": {"type": "integer", "description": "The HTTP status."},
            "message": {"type": "string"},
            "limit_label": _string("Which limit was hit, on 429."),
        },
        ["code", "message"],
    ),
    "RoomId": _object(
        {
            "code": {"type": "integer", "const": 200},
            "ok": {"type": "boolean", "const": True},
            "room_id": _string("Decimal digits; empty when TikTok gave none (offline)."),
            "is_live": {"type": "boolean"},
            "message": {"type": "string"},
            "routes_attempted": {"type": "array", "items": {"type": "string"}},
            "source": _string("Where it was found: live_page, api_live_user_room or cache."),
        },
        ["code", "ok", "room_id", "is_live", "routes_attempted"],
    ),
    "RoomIdError": _object(
        {
            "code": {"type": "integer", "description": "The HTTP status."},
            "ok": {"type": "boolean", "const": False},
            "message": {"type": "string"},
            "room_id": {"type": "string"},
            "is_live": {"type": "boolean"},
            "routes_attempted": {"type": "array", "items": {"type": "string"}},
            "limit_label": _string("Which limit was hit, on 429."),
        },
        ["code", "ok", "message", "routes_attempted"],
    ),
    "StructuredError": _object(
        {
            "status": {"type": "string", "const": "error"},
            "error": _object(
                {
                    "type": {
                        "type": "string",
                        "enum": list(get_args(ErrorType)),
                    },
                    "message": {"type": "string"},
                    "code": {"type": "integer", "description": "The HTTP status."},
                    "timestamp": _string("When it happened, ISO 8601 UTC.", format="date-time"),
                },
                ["type", "message", "code", "timestamp"],
            ),
        },
        ["status", "error"],
    ),
    "Health": _object({"status": {"type": "string"}}, ["status"]),
}

_SECURITY_SCHEMES = {
    "apiKeyQuery": {"type": "apiKey", "in": "query", "name": "apiKey"},
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
    "bearer": {"type": "http", "scheme": "bearer"},
    "adminToken": {"type": "apiKey", "in": "header", "name": "X-Admin-Token"},
}
# The admin token goes in `Authorization: Bearer` or `X-Admin-Token`.
_ADMIN_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"adminToken": []}]

_LIMIT_WINDOW = _object(
    {
        "max": {"type": ["integer", "null"], "description": "The window's limit; null: none."},
        "remaining": {"type": ["integer", "null"]},
        "reset_at": {"type": ["string", "null"], "description": "ISO 8601 UTC end of window."},
    },
    ["max", "remaining", "reset_at"],
)


def _admin(
    summary: str,
    operation_id: str,
    *,
    body: Schema | None = None,
    parameters: list[Schema] | None = None,
    created: bool = False,
    errors: tuple[int, ...] = (400, 401, 403, 404, 503),
) -> Schema:
    """An admin operation: `{"status": "success", "data": ...}` or the structured error."""
    descriptions = {
        400: "Invalid input.",
        401: "Missing or wrong admin token.",
        403: "Admin routes are disabled (no SIGNER_ADMIN_TOKEN).",
        404: "Unknown user or key.",
        409: "That email is taken.",
        429: "Too many failed admin authentications from this address; see `Retry-After`.",
        503: "Postgres cannot be reached, or its schema is not migrated.",
    }
    operation: Schema = {
        "summary": summary,
        "operationId": operation_id,
        "tags": ["admin"],
        "security": _ADMIN_SECURITY,
        "responses": {
            "201" if created else "200": {
                "description": "Done.",
                "content": _json(
                    _object({"status": {"const": "success"}, "data": {}}, ["status", "data"])
                ),
            },
            **{
                str(status): {
                    "description": descriptions[status],
                    "content": _json(_ref("StructuredError")),
                }
                for status in (*errors, 429)
            },
        },
    }
    if body is not None:
        # The admin routes refuse fields they do not know.
        body = {**body, "additionalProperties": False}
        operation["requestBody"] = {"required": True, "content": _json(body)}
    if parameters:
        operation["parameters"] = parameters
    return operation


def _email(description: str) -> Schema:
    # As accounts.users checks it (surrounding blanks are trimmed first).
    return _string(
        description, pattern=f"^{accounts.EMAIL_PATTERN}$", maxLength=accounts.MAX_EMAIL_LENGTH
    )


def _path_param(name: str, description: str) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


_CONNECT_ERRORS = {
    "400": {
        "description": "A room id that is not one, a handle holding `/`, `..`, `%` or a "
        "control character, an oversized `user_agent`, an unknown `platform`; nothing was "
        "sent to TikTok.",
        "content": _json(_ref("EulerStreamError")),
    },
    "401": {"description": "Invalid API key.", "content": _json(_ref("EulerStreamError"))},
    "404": {
        "description": "TikTok says the user does not exist or is not LIVE.",
        "content": _json(_ref("EulerStreamError")),
    },
    "429": {
        "description": "Rate limit reached: `message`, `limit_label`, `Retry-After`, "
        "`X-RateLimit-Reset`, `RateLimit-Remaining`, `RateLimit-Reset`.",
        "content": _json(_ref("EulerStreamError")),
    },
    "502": {
        "description": "TikTok refused, answered empty or could not be reached.",
        "content": _json(_ref("EulerStreamError")),
    },
    "503": {
        "description": "TikTok keeps failing (the breaker is open; `Retry-After`), the "
        "signer is busy, or this server opens no LIVE rooms.",
        "content": _json(_ref("EulerStreamError")),
    },
    "504": {
        "description": "TikTok did not answer in time.",
        "content": _json(_ref("EulerStreamError")),
    },
}
_CONNECT_OK = {
    "description": "TikTok's `ProtoMessageFetchResult`, relayed unchanged (or built for the "
    "`socket` strategy); open the WebSocket at its `push_server`.",
    "headers": {
        "X-Set-TT-Cookie": {
            "description": "Cookies for the WebSocket, Cookie-header syntax, `ttwid` first.",
            "schema": {"type": "string"},
        },
        "X-Room-Id": {"description": "The room connected to.", "schema": {"type": "string"}},
        "X-Connect-Strategy": {
            "description": "Which strategy answered: `fetch` or `socket`.",
            "schema": {"type": "string", "enum": ["fetch", "socket"]},
        },
    },
    "content": {"application/protobuf": {"schema": {"type": "string", "format": "binary"}}},
}
_COOKIE_PARAM = {
    "name": COOKIE_HEADER,
    "in": "header",
    "required": False,
    "description": "Your own TikTok cookies (a logged-in connect); passed on to TikTok, "
    "never logged or stored.",
    "schema": {"type": "string"},
}


def _connect_operation(summary: str, operation_id: str, parameters: list[Schema]) -> Schema:
    return {
        "summary": summary,
        "operationId": operation_id,
        "tags": ["connect"],
        "parameters": [*parameters, _COOKIE_PARAM],
        "security": _SECURITY,
        "responses": {"200": _CONNECT_OK, **_CONNECT_ERRORS},
    }


def _room_id_operation(summary: str, operation_id: str, parameter: Schema) -> Schema:
    errors = {
        status: {**answer, "content": _json(_ref("RoomIdError"))}
        for status, answer in _CONNECT_ERRORS.items()
    }
    return {
        "summary": summary,
        "operationId": operation_id,
        "tags": ["connect"],
        "parameters": [parameter],
        "security": _SECURITY,
        "responses": {
            "200": {"description": "The room.", "content": _json(_ref("RoomId"))},
            **errors,
        },
    }


def _connect_paths() -> dict[str, Schema]:
    # The room is `room_id` or `unique_id`: one exploded object, since OpenAPI can only say
    # "at least one of" of an object's properties, not of separate parameters.
    properties = {spec.name: field_schema(spec, nullable=False) for spec in CONNECT_QUERY}
    room_query = {
        "type": "object",
        "properties": properties,
        "anyOf": [{"required": ["room_id"]}, {"required": ["unique_id"]}],
        # Clients send dozens of im/fetch parameters besides (spec section 2.1): ignored.
        "additionalProperties": {"type": "string"},
    }
    query = [
        {
            "name": "connect",
            "in": "query",
            "required": True,
            "style": "form",
            "explode": True,
            "description": "The room (`room_id` or `unique_id`) and what to fetch it for; "
            "unknown parameters are ignored.",
            "schema": room_query,
        }
    ]
    in_path = [_query_field(spec) for spec in CONNECT_QUERY if spec.name != "room_id"]
    room_path = {**_path_param("room_id", ROOM_ID_FIELD.description)}
    room_path["schema"] = field_schema(ROOM_ID_FIELD, nullable=False)
    room_path["schema"].pop("description")
    handle_path = {**_path_param("unique_id", UNIQUE_ID_FIELD.description)}
    handle_path["schema"] = field_schema(UNIQUE_ID_FIELD, nullable=False)
    handle_path["schema"].pop("description")
    by_query = {**_query_field(UNIQUE_ID_FIELD, required=True), "name": "uniqueId"}
    return {
        "/webcast/fetch": {
            "get": _connect_operation(
                "Open a LIVE: TikTok's im/fetch for the room (TikTokLive 6.x)",
                "webcastFetch",
                query,
            )
        },
        "/webcast/fetch/": {
            "get": _connect_operation(
                "Open a LIVE (older TikTokLive: trailing slash)", "webcastFetchSlash", query
            )
        },
        "/webcast/rooms/{room_id}/connect": {
            "get": _connect_operation(
                "Open a LIVE by room id (tiktok-live-connector 2.4 and later)",
                "roomsConnect",
                [room_path, *in_path],
            )
        },
        "/webcast/anchors/{unique_id}/room_id": {
            "get": _room_id_operation(
                "A handle's room id (tiktok-live-connector 2.4 and later)",
                "anchorRoomId",
                handle_path,
            )
        },
        "/webcast/room_id": {
            "get": _room_id_operation(
                "A handle's room id (tiktok-live-connector 2.0 to 2.3)", "roomId", by_query
            )
        },
    }


def _admin_paths() -> dict[str, Schema]:
    tier = {"type": "string", "enum": list(TIERS)}
    limit = {"type": ["integer", "null"], "minimum": 1}
    return {
        "/admin/users": {
            "post": _admin(
                "Add a user",
                "adminCreateUser",
                body=_object({"email": _email("The user's email."), "tier": tier}, ["email"]),
                created=True,
                errors=(400, 401, 403, 409, 503),
            ),
            "get": _admin("List users", "adminListUsers", errors=(401, 403, 503)),
        },
        "/admin/users/{email}": {
            "patch": _admin(
                "Change a user's tier",
                "adminSetTier",
                body=_object({"tier": tier}, ["tier"]),
                parameters=[_path_param("email", "The user's email.")],
            ),
        },
        "/admin/keys": {
            "post": _admin(
                "Issue an API key (shown once, in data.key)",
                "adminCreateKey",
                body=_object(
                    {
                        "user": _email("The owner's email."),
                        "name": _string("What the key is for."),
                        "per_minute": limit,
                        "per_day": limit,
                    },
                    ["user"],
                ),
                created=True,
            ),
            "get": _admin(
                "List keys (prefixes, never hashes)",
                "adminListKeys",
                parameters=[_query("user", "Only this user's keys.")],
                errors=(400, 401, 403, 404, 503),
            ),
        },
        "/admin/keys/{prefix}": {
            "delete": _admin(
                "Revoke a key",
                "adminRevokeKey",
                parameters=[_path_param("prefix", "The key's prefix, like sk_AbCd1234.")],
            ),
        },
        "/admin/usage": {
            "get": _admin(
                "Requests, success rate and p50/p95 latency per UTC day",
                "adminUsage",
                parameters=[
                    _query("user", "Only this user's requests."),
                    _query("days", "Days back (default 7)."),
                ],
            ),
        },
    }


def _query(name: str, description: str, required: bool = False) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": {"type": "string"},
    }


def _query_field(spec: FieldSpec, required: bool = False) -> Schema:
    schema = field_schema(spec, nullable=False)
    return {
        "name": spec.name,
        "in": "query",
        "required": required,
        "description": schema.pop("description"),
        "schema": schema,
    }


_CLIENT_PARAM = _query_field(V1_QUERY[1])


def _v2_operation(summary: str, operation_id: str) -> Schema:
    return {
        "summary": summary,
        "operationId": operation_id,
        "tags": ["EulerStream"],
        "parameters": [_CLIENT_PARAM],
        "security": _SECURITY,
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _ref("EulerStreamV2Request")},
                "application/x-www-form-urlencoded": {"schema": _ref("EulerStreamV2Request")},
            },
        },
        "responses": {
            "200": {
                "description": "Signed.",
                "content": _json(_ref("EulerStreamV2Response")),
            },
            **_errors("EulerStreamError", _SIGN_ERRORS),
        },
    }


def _paths() -> dict[str, Schema]:
    return {
        "/webcast/sign_url": {
            "get": {
                "summary": "Sign a URL (EulerStream v1, TikTok-Live-Connector 1.x)",
                "operationId": "eulerstreamSignV1",
                "tags": ["EulerStream"],
                "parameters": [
                    _query_field(V1_QUERY[0], required=True),
                    _CLIENT_PARAM,
                    _query_field(V1_QUERY[2]),
                ],
                "security": _SECURITY,
                "responses": {
                    "200": {
                        "description": "Signed.",
                        "content": _json(_ref("EulerStreamV1Response")),
                    },
                    **_errors("EulerStreamError", (400, 401, 414, 429, 500, 503)),
                },
            },
            "post": _v2_operation(
                "Sign a request (EulerStream v2: TLC 2.x, TikTokLive)", "eulerstreamSignV2"
            ),
        },
        "/webcast/sign_url/": {
            "post": _v2_operation(
                "Sign a request (older TikTokLive: trailing slash, form body)",
                "eulerstreamSignV2Slash",
            ),
        },
        "/tiktok/sign_url": {
            "post": _v2_operation("Sign a request (TLC 2.4 and later)", "tiktokSign"),
        },
        "/signature": {
            "post": {
                "summary": "Sign a URL (tiktok-signature, SignTok)",
                "operationId": "signature",
                "tags": ["tiktok-signature"],
                "security": _SECURITY,
                "requestBody": {
                    "required": True,
                    "content": {
                        "text/plain": {"schema": field_schema(URL_FIELD, nullable=False)},
                        "application/json": {"schema": _ref("SignatureRequest")},
                    },
                },
                "responses": {
                    "200": {"description": "Signed.", "content": _json(_ref("SignatureResponse"))},
                    **_errors("StructuredError", _SIGN_ERRORS),
                },
            }
        },
        "/api/signature": {
            "post": {
                "summary": "Sign a URL (this service's own API)",
                "operationId": "ownSignature",
                "tags": ["signer"],
                "security": _SECURITY,
                "requestBody": {"required": True, "content": _json(_ref("OwnRequest"))},
                "responses": {
                    "200": {"description": "Signed.", "content": _json(_ref("OwnResponse"))},
                    **_errors("StructuredError", _SIGN_ERRORS),
                },
            }
        },
        "/webcast/rate_limits": {
            "get": {
                "summary": "The caller's rate-limit windows, read without counting",
                "operationId": "rateLimits",
                "tags": ["EulerStream"],
                "security": _SECURITY,
                "responses": {
                    "200": {
                        "description": "Each window's limit, what is left and when it ends.",
                        "content": _json(
                            _object(
                                {
                                    "code": {"type": "integer"},
                                    "message": {"type": "string"},
                                    "minute": _LIMIT_WINDOW,
                                    "hour": _LIMIT_WINDOW,
                                    "day": _LIMIT_WINDOW,
                                },
                                ["code", "message", "minute", "hour", "day"],
                            )
                        ),
                    },
                    **_errors("EulerStreamError", (401, 503)),
                },
            }
        },
        **_connect_paths(),
        **_admin_paths(),
        "/health": {
            "get": {
                "summary": "Liveness and readiness",
                "operationId": "health",
                "tags": ["operations"],
                "responses": {
                    "200": {"description": "Ready.", "content": _json(_ref("Health"))},
                    "503": {"description": "Not ready.", "content": _json(_ref("Health"))},
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "operationId": "metrics",
                "tags": ["operations"],
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "openapi",
                "tags": ["operations"],
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1 document.",
                        "content": _json({"type": "object"}),
                    }
                },
            }
        },
        "/docs": {
            "get": {
                "summary": "Human-readable API documentation",
                "operationId": "docs",
                "tags": ["operations"],
                "responses": {
                    "200": {
                        "description": "HTML page.",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/docs/{name}": {
            "get": {
                "summary": "The documentation page's stylesheet and script",
                "operationId": "docsAsset",
                "tags": ["operations"],
                "parameters": [
                    {
                        "name": "name",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": ["reference.css", "reference.js"]},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "CSS or JavaScript.",
                        "content": {
                            "text/css": {"schema": {"type": "string"}},
                            "text/javascript": {"schema": {"type": "string"}},
                        },
                    },
                    "404": {
                        "description": "No such file.",
                        "content": _json(_ref("StructuredError")),
                    },
                },
            }
        },
    }


def openapi_document(version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 description of every route; `version` is the service's version."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "TikTok signer",
            "version": version,
            "description": "Self-hosted TikTok request signing. Drop-in for EulerStream's "
            "sign routes and for tiktok-signature / SignTok; the API key may be given as "
            "query `apiKey`, header `X-Api-Key` or `Authorization: Bearer`.",
        },
        "paths": _paths(),
        "components": {"schemas": _SCHEMAS, "securitySchemes": _SECURITY_SCHEMES},
    }
