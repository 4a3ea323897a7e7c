"""The HTTP side of the service, and only that: each client dialect translated to and
from the signer (parsing, rendering, errors, OpenAPI), the routes and middlewares of
the aiohttp application (`api.app`, `api.middlewares`) and the admin sub-app. Who may
call and what they used is `accounts/`; the process that serves all this is `service/`.
"""

from .dialects import (
    eulerstream_v1_response,
    eulerstream_v2_response,
    own_response,
    signature_response,
)
from .errors import (
    ApiError,
    ErrorType,
    api_error_from_sign_error,
    eulerstream_error_body,
    structured_error_body,
)
from .openapi import openapi_document
from .parsing import (
    MAX_BODY_BYTES,
    ParsedSign,
    eulerstream_v1_request,
    eulerstream_v2_request,
    own_request,
    parse_api_key,
    parse_sign_body,
    signature_request,
)

__all__ = [
    "MAX_BODY_BYTES",
    "ApiError",
    "ErrorType",
    "ParsedSign",
    "api_error_from_sign_error",
    "eulerstream_error_body",
    "eulerstream_v1_request",
    "eulerstream_v1_response",
    "eulerstream_v2_request",
    "eulerstream_v2_response",
    "openapi_document",
    "own_request",
    "own_response",
    "parse_api_key",
    "parse_sign_body",
    "signature_request",
    "signature_response",
    "structured_error_body",
]
