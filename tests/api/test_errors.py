"""`ApiError`, the mapping from signer errors, and both error body shapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from api.errors import (
    ApiError,
    api_error_from_sign_error,
    eulerstream_error_body,
    structured_error_body,
)
from signer import (
    DeadlineExceeded,
    EngineUnavailable,
    InvalidSignRequest,
    SelfCheckFailed,
    SignError,
)


@pytest.mark.parametrize(
    ("error", "status", "kind", "retry_after"),
    [
        (InvalidSignRequest("url", "has no host"), 400, "VALIDATION_ERROR", None),
        (DeadlineExceeded("late"), 503, "SERVICE_UNAVAILABLE", 1),
        (EngineUnavailable("browser down"), 503, "SERVICE_UNAVAILABLE", 1),
        (SelfCheckFailed("bad token"), 500, "SIGNATURE_GENERATION_ERROR", None),
        (SignError("unknown"), 500, "SIGNATURE_GENERATION_ERROR", None),
    ],
)
def test_sign_errors_map_to_statuses(
    error: SignError, status: int, kind: str, retry_after: int | None
) -> None:
    api_error = api_error_from_sign_error(error)
    assert (api_error.status, api_error.type, api_error.retry_after) == (
        status,
        kind,
        retry_after,
    )
    assert api_error.message == error.message


def test_eulerstream_body_is_code_and_message() -> None:
    error = ApiError(401, "AUTHENTICATION_ERROR", "The provided API Key is invalid.")
    assert eulerstream_error_body(error) == {
        "code": 401,
        "message": "The provided API Key is invalid.",
    }


def test_eulerstream_body_carries_limit_label() -> None:
    error = ApiError(
        429, "RATE_LIMIT_ERROR", "slow down", retry_after=30, limit_label="rate_limit_account_day"
    )
    assert eulerstream_error_body(error) == {
        "code": 429,
        "message": "slow down",
        "limit_label": "rate_limit_account_day",
    }


def test_structured_body_has_utc_timestamp() -> None:
    now = datetime(2026, 1, 2, 5, 4, 5, 678000, tzinfo=timezone(timedelta(hours=2)))
    body = structured_error_body(ApiError(400, "VALIDATION_ERROR", "bad url"), now)
    assert body == {
        "status": "error",
        "error": {
            "type": "VALIDATION_ERROR",
            "message": "bad url",
            "code": 400,
            "timestamp": "2026-01-02T03:04:05.678Z",
        },
    }


def test_structured_body_defaults_to_now() -> None:
    body = structured_error_body(ApiError(503, "SERVICE_UNAVAILABLE", "busy", retry_after=1))
    error = body["error"]
    assert isinstance(error, dict)
    stamp = datetime.fromisoformat(error["timestamp"])
    assert abs(stamp - datetime.now(UTC)) < timedelta(seconds=5)
    assert error["retry_after"] == 1
