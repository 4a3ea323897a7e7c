"""Reading the console's forms and query strings: text fields only, bounded, and each
malformed value a `BadForm` saying which."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from aiohttp import web

from .context import BadForm

__all__ = ["MAX_FIELD", "form_fields", "optional_limit", "parse_moment", "safe_next"]

MAX_FIELD = 2048


async def form_fields(request: web.Request) -> dict[str, str]:
    """The form's text fields (files ignored), each at most `MAX_FIELD` characters."""
    form = await request.post()
    fields: dict[str, str] = {}
    for name, value in form.items():
        if isinstance(value, str):
            fields[name] = value[:MAX_FIELD]
    return fields


def optional_limit(fields: Mapping[str, str], name: str, label: str) -> int | None:
    text = fields.get(name, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise BadForm(f"{label} must be a whole number") from None
    if not 1 <= value <= 2**31 - 1:
        raise BadForm(f"{label} must be at least 1")
    return value


def parse_moment(text: str, label: str) -> datetime | None:
    """A `datetime-local` field (read as UTC) or an ISO time; None when empty."""
    text = text.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadForm(f"{label} is not a date and time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def safe_next(value: str | None, default: str) -> str:
    """Where to go after signing in: a path of the console only, never another site."""
    if not value or not value.startswith("/console") or value.startswith("//"):
        return default
    return default if any(c in value for c in "\\\r\n") else value
