"""The errors `Signer` raises: one base class, a stable code for each kind.

The codes are the error types the HTTP API reports, so a caller of the library and a
client of the service see the same vocabulary.
"""

from __future__ import annotations

__all__ = [
    "DeadlineExceeded",
    "EngineUnavailable",
    "InvalidSignRequest",
    "SelfCheckFailed",
    "SignError",
]


class SignError(Exception):
    """Base class of every error raised while signing a request."""

    code = "SIGNATURE_GENERATION_ERROR"
    retryable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidSignRequest(SignError):
    """The request cannot be signed as given; `field` names the input at fault."""

    code = "VALIDATION_ERROR"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class DeadlineExceeded(SignError):
    """The request's deadline passed before it was signed; a late signature is useless."""

    code = "SERVICE_UNAVAILABLE"


class EngineUnavailable(SignError):
    """The signing engine could not serve the request (browser down, page crashed, timeout)."""

    code = "SERVICE_UNAVAILABLE"
    retryable = True


class SelfCheckFailed(SignError):
    """A produced token did not decode or did not match its own request: never returned."""

    code = "SIGNATURE_GENERATION_ERROR"
