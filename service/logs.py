"""Logging of the service processes (`signer api`, `signer worker`): structlog to stderr.

One JSON object per line in production, readable lines for people (`SIGNER_LOG_FORMAT`).
The standard library's loggers (ours in `signer/`, aiohttp's, asyncio's) and Python's
warnings go through the same renderer, so every line of a process has one shape.

It lives in `service/`, the composition root: the signing core is a library and a library
never configures logging; `api/`, `accounts/` and `workers/` only get loggers (structlog's
or the standard library's) and this module decides where every line goes.
structlog's own loggers write straight to stderr (no `logging.LogRecord` on the way), and
JSON is encoded by one encoder made once: the API's line per request costs about four
times a bare `json.dumps` of its fields (31 µs against 7.4 µs, measured on a busy 2-core
host), and a line below `SIGNER_LOG_LEVEL` about 5 µs.

No line may carry a secret, whoever wrote it: aiohttp's parser errors quote the raw
bytes of the request they refused (API key, cookies, tokens), so every record, ours and
the libraries', passes `redact_secrets` as the last step before it is rendered, traceback
included. And a process out of file descriptors must not drown its log: asyncio reports a
failed `accept()` on every try, so those records pass at most once a second.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Literal, TextIO, cast

import structlog
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from structlog.typing import EventDict, FilteringBoundLogger, Processor

__all__ = ["REDACTED", "LogSettings", "configure_logging", "get_logger", "redact_secrets"]

REDACTED = "[redacted]"
# Our API keys (`sk_AbCd1234_<secret>`, accounts/apikeys.py, and
# tests/test_logs.py holds the two to one shape): the prefix stays, it names the key.
# Any length of secret, so a key cut short by a library's quoting is caught too.
_KEY = r"(?P<keep_key>sk_[0-9A-Za-z]{8})_[0-9A-Za-z]+"
# Headers whose whole value is a secret, as raw HTTP (`X-Api-Key: v`), a dict's repr
# (`'x-api-key': 'v'`) or `name=value`: everything up to the line's or the quote's end.
_HEADER = (
    r"(?P<keep_header>(?:x-api-key|authorization|proxy-authorization|cookie|set-cookie"
    r"|x-cookie-header)['\"]?\s*[:=]\s*['\"]?)[^\r\n'\"]+"
)
# Query parameters holding a key or a token, plain or percent-encoded inside a signed URL's
# own query (`url=...%26msToken%3D...`): the value ends at `&`, `%26`, space or a quote.
_PARAMETER = (
    r"(?P<keep_parameter>(?:apiKey|api_key|msToken|X-Bogus|X-Gnarly|_signature)(?:=|%3D))"
    r"(?:(?!%26)[^&\s'\"])+"
)
_BEARER = r"(?P<keep_bearer>bearer\s+)[^\s'\"]+"
_SECRET = re.compile("|".join((_KEY, _HEADER, _PARAMETER, _BEARER)), re.IGNORECASE)
# Far cheaper than `_SECRET` (a case-blind alternation costs about 2 µs a string) on the
# many records holding nothing of the kind: substrings of a lowercased copy, and the key
# shape only where `sk_` appears (a key's prefix alone, `key_prefix=sk_AbCd1234` on every
# request line, is not a secret).
_SECRET_NAMES = (
    "apikey", "api_key", "api-key", "authorization", "cookie", "bearer", "mstoken",
    "x-bogus", "x-gnarly", "_signature",
)  # fmt: skip
_KEY_SHAPE = re.compile(r"sk_[0-9A-Za-z]{8}_")
# asyncio's report of a failed accept (EMFILE...): at most one a second.
_ACCEPT_FAILED = "socket.accept() out of system resource"
ACCEPT_FAILURE_INTERVAL = 1.0


def redact_secrets(text: str) -> str:
    """`text` with API keys, secret headers' values, bearer tokens and signing tokens in
    URLs replaced by `[redacted]` (a key keeps its prefix: `sk_AbCd1234_[redacted]`)."""
    if not _may_hold_secret(text):
        return text
    return _SECRET.sub(_keep_name, text)


def _may_hold_secret(text: str) -> bool:
    if "sk_" in text and _KEY_SHAPE.search(text):
        return True
    lowered = text.lower()
    return any(name in lowered for name in _SECRET_NAMES)


def _keep_name(found: re.Match[str]) -> str:
    kept = next(value for value in found.groupdict().values() if value is not None)
    return kept + ("_" if found["keep_key"] is not None else "") + REDACTED


def _redacted(value: object) -> object:
    if isinstance(value, str):
        return redact_secrets(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    if isinstance(value, bytes | bytearray):
        return redact_secrets(repr(value))
    return value


def _redact_event(_logger: object, _method: str, event: EventDict) -> EventDict:
    # Last before the renderer: by then a traceback is a string (`format_exc_info`).
    # One look at all the strings together, as most records hold nothing to hide; then
    # each field, containers and bytes included.
    texts = []
    for value in event.values():
        if type(value) is str:
            texts.append(value)
        elif value is not None and type(value) not in _PLAIN:
            break
    else:
        if not _may_hold_secret("\n".join(texts)):
            return event
    for name, value in event.items():
        if value is not None and type(value) not in _PLAIN:
            event[name] = _redacted(value)
    return event


_PLAIN = frozenset((int, float, bool))


class AcceptFailureFilter(logging.Filter):
    """Lets through one "socket.accept() out of system resource" record a second (with
    the count held back since, and without its traceback); every other record passes."""

    def __init__(self, interval: float = ACCEPT_FAILURE_INTERVAL) -> None:
        super().__init__()
        self.interval = interval
        self._last = -interval
        self._held_back = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not isinstance(record.msg, str) or not record.msg.startswith(_ACCEPT_FAILED):
            return True
        now = time.monotonic()
        if now - self._last < self.interval:
            self._held_back += 1
            return False
        error = record.exc_info[1] if record.exc_info else None
        record.msg = f"{_ACCEPT_FAILED}: {error}; {self._held_back} more held back"
        record.args = None
        record.exc_info = None
        record.exc_text = None
        self._last, self._held_back = now, 0
        return True


class LogSettings(BaseSettings):
    """`SIGNER_LOG_*`: how the API and worker processes write their logs (to stderr)."""

    model_config = SettingsConfigDict(env_prefix="SIGNER_LOG_", extra="ignore")

    format: Literal["json", "console"] | None = Field(
        None,
        description="`json` (one object per line) or `console` (for people); unset: console "
        "when stderr is a terminal, else json.",
    )
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", description="Least severe level written."
    )

    @field_validator("format", mode="before")
    @classmethod
    def _format_case(cls, value: object) -> object:
        # An empty `SIGNER_LOG_FORMAT=` means unset, as it would for a person reading it.
        if isinstance(value, str):
            return value.strip().lower() or None
        return value

    @field_validator("level", mode="before")
    @classmethod
    def _level_case(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value


def configure_logging(settings: LogSettings | None = None, stream: TextIO | None = None) -> str:
    """Send structlog and the standard library's logging to `stream` (stderr) in the
    configured format; returns the format chosen (`json` or `console`)."""
    settings = settings or LogSettings()  # service/ reads the environment
    out = stream or sys.stderr
    is_tty = out.isatty()
    chosen = settings.format or ("console" if is_tty else "json")
    level = logging.getLevelNamesMapping()[settings.level]
    shared: list[Processor] = [
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Tracebacks as one string field, so a JSON record stays one line and its text can be
    # redacted (the console renderer prints the string as it is).
    finish: list[Processor] = [structlog.processors.format_exc_info, _redact_event]
    renderer: Processor
    if chosen == "json":
        renderer = structlog.processors.JSONRenderer(_encode)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=is_tty)
    structlog.configure(
        processors=[*shared, *finish, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=lambda *args: _NamedWriteLogger(out, args[0] if args else ""),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *finish,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)
    asyncio_log = logging.getLogger("asyncio")
    for old in [f for f in asyncio_log.filters if isinstance(f, AcceptFailureFilter)]:
        asyncio_log.removeFilter(old)
    asyncio_log.addFilter(AcceptFailureFilter())
    return chosen


def _encode(data: object, **_options: object) -> str:
    # One encoder made once: `json.dumps` with options builds a new one on every call,
    # which was a third of a request line's cost.
    return _ENCODER.encode(data)


_ENCODER = json.JSONEncoder(default=repr)


def get_logger(name: str) -> FilteringBoundLogger:
    """A structlog logger whose lines say `logger=name`, as the standard library's do."""
    return cast(FilteringBoundLogger, structlog.get_logger(name))


class _NamedWriteLogger(structlog.WriteLogger):
    # `add_logger_name` reads `.name`, which structlog's own writer does not have.
    def __init__(self, file: TextIO, name: str) -> None:
        super().__init__(file)
        self.name = name
