"""What travels through Redis: a job's arguments and its answer, as plain JSON-able data."""

from __future__ import annotations

import base64
from dataclasses import fields
from typing import Any

from signer import (
    DeadlineExceeded,
    EngineUnavailable,
    Navigator,
    SignError,
    SignRequest,
    SignResult,
)
from signer.errors import InvalidSignRequest, SelfCheckFailed

__all__ = ["decode_answer", "decode_request", "encode_error", "encode_request", "encode_result"]

_ERRORS: dict[str, type[SignError]] = {
    "DeadlineExceeded": DeadlineExceeded,
    "EngineUnavailable": EngineUnavailable,
    "SelfCheckFailed": SelfCheckFailed,
    "SignError": SignError,
}


def encode_request(request: SignRequest) -> dict[str, Any]:
    body = request.body.encode() if isinstance(request.body, str) else request.body
    return {
        "url": request.url,
        "method": request.method,
        "body": base64.b64encode(body).decode(),
        "user_agent": request.user_agent,
        "ms_token": request.ms_token,
        "mint_ms_token": request.mint_ms_token,
        "include_verify_fp": request.include_verify_fp,
        "rewrite_params": request.rewrite_params,
        "deadline": request.deadline,
    }


def decode_request(data: dict[str, Any]) -> SignRequest:
    return SignRequest(
        url=data["url"],
        method=data["method"],
        body=base64.b64decode(data["body"]),
        user_agent=data["user_agent"],
        ms_token=data["ms_token"],
        mint_ms_token=data["mint_ms_token"],
        include_verify_fp=data["include_verify_fp"],
        rewrite_params=data["rewrite_params"],
        deadline=data["deadline"],
    )


def encode_result(result: SignResult) -> dict[str, Any]:
    return {"result": result.to_json()}


def encode_error(error: SignError) -> dict[str, Any]:
    if isinstance(error, InvalidSignRequest):
        return {
            "error": {"kind": "InvalidSignRequest", "field": error.field, "reason": error.reason}
        }
    return {"error": {"kind": type(error).__name__, "message": error.message}}


def decode_answer(answer: dict[str, Any]) -> SignResult | SignError:
    """The worker's answer as the result or error `Signer` itself would have given."""
    if "error" in answer:
        error = answer["error"]
        if error["kind"] == "InvalidSignRequest":
            return InvalidSignRequest(error["field"], error["reason"])
        return _ERRORS.get(error["kind"], SignError)(error["message"])
    data = dict(answer["result"])
    navigator = data.pop("navigator")
    navigator["languages"] = tuple(navigator["languages"])
    names = {f.name for f in fields(SignResult)}
    return SignResult(
        navigator=Navigator(**navigator), **{k: v for k, v in data.items() if k in names}
    )
