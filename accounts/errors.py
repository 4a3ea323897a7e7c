"""Every error the accounts raise, drawn as the tree it is:

    AccountsError
    ├── Refused                 a request may not go on (admission)
    │   ├── InvalidKey          the key is unknown, revoked or inactive
    │   ├── RateLimited         a budget of the caller is spent (carries the decision)
    │   └── AccountsUnavailable Postgres or Redis cannot be asked right now
    └── AccountError            a user or key operation cannot be carried out as asked
        ├── InvalidInput        a malformed email, tier, name, limit or day count
        ├── DuplicateUser       a user with this email exists already
        ├── UnknownUser         no user has this email
        ├── UnknownKey          no key has this prefix
        └── SchemaNotReady      the accounts tables are missing or behind

They say what happened, never how to answer it: `api/errors.py` turns each into its
HTTP status and dialect, `service/admin_cli.py` into one line on stderr.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for the annotation: ratelimit imports nothing from here
    from .ratelimit import RateDecision

__all__ = [
    "AccountError",
    "AccountsError",
    "AccountsUnavailable",
    "DuplicateUser",
    "InvalidInput",
    "InvalidKey",
    "RateLimited",
    "Refused",
    "SchemaNotReady",
    "UnknownKey",
    "UnknownUser",
]

# EulerStream's own words, which clients show their users as they are.
INVALID_KEY_MESSAGE = "The provided API Key is invalid."


class AccountsError(Exception):
    """The root: anything the accounts raise on purpose."""


class Refused(AccountsError):
    """A request may not go on; the message is what its caller reads."""


class InvalidKey(Refused):
    """The API key is not one of ours, or no longer valid."""

    def __init__(self, message: str = INVALID_KEY_MESSAGE) -> None:
        super().__init__(message)


class RateLimited(Refused):
    """A budget of the caller is spent; `decision` says which, and until when."""

    def __init__(self, decision: RateDecision) -> None:
        from .ratelimit import limit_message  # the words belong with the limiter

        super().__init__(limit_message(decision))
        self.decision = decision


class AccountsUnavailable(Refused):
    """Postgres (a key's look-up) or Redis (the limits) cannot be asked now; the same
    request may pass in `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int = 2) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AccountError(AccountsError):
    """A request the accounts cannot carry out as asked; the message says why."""


class InvalidInput(AccountError):
    """A malformed email, tier, name, limit or day count."""


class DuplicateUser(AccountError):
    """A user with this email (in any letter case) exists already."""


class UnknownUser(AccountError):
    """No user has this email."""


class UnknownKey(AccountError):
    """No key has this prefix."""


class SchemaNotReady(AccountError):
    """The database lacks the accounts tables or has migrations still to apply."""
