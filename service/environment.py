"""The one place that reads the environment: every settings class built once, and a
warning for each `SIGNER_*` variable that no setting reads.

Several classes share the `SIGNER_` prefix and each ignores the names it does not own,
so a misspelt variable (`SIGNER_CONTEXT=8` for `SIGNER_CONTEXTS`) would be dropped
without a word. Forbidding unknown names class by class cannot work with a shared
prefix (each class would refuse the others' names), so the service warns instead: at
start-up `warn_unknown` names every `SIGNER_*` variable that no class knows, with the
closest known name when one is close.

A class is built on first use (`Environment`'s cached properties), so `signer worker`
does not fail on a bad `SIGNER_ADMIN_TOKEN` it never reads; each is built once.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from functools import cached_property

import structlog
from pydantic_settings import BaseSettings
from structlog.typing import FilteringBoundLogger

from accounts.settings import AccountSettings, RateLimitSettings, UsageSettings
from console.settings import ConsoleSettings, MailSettings
from migrations.settings import DatabaseSettings
from signer import SignerSettings
from tiktok.settings import TikTokSettings
from workers.config import QueueSettings, WorkerSettings

from .api_settings import ApiSettings
from .logs import LogSettings
from .stack.recovery import STATE_TAG

__all__ = [
    "SETTINGS_CLASSES",
    "Environment",
    "environment_names",
    "unknown_signer_names",
    "warn_unknown",
]

SETTINGS_CLASSES: tuple[type[BaseSettings], ...] = (
    SignerSettings,
    QueueSettings,
    WorkerSettings,
    ApiSettings,
    AccountSettings,
    RateLimitSettings,
    UsageSettings,
    DatabaseSettings,
    LogSettings,
    TikTokSettings,
    ConsoleSettings,
    MailSettings,
)
# `SIGNER_*` names read by something other than a settings class: the tag every process
# of one `signer up` carries (service.stack.recovery).
OTHER_NAMES = frozenset({STATE_TAG})
# Prefixes of names for other programs, which the deployment files pass along (Grafana's
# data source in ops/grafana, the Compose file's image and published port).
OTHER_PREFIXES = ("SIGNER_GRAFANA_", "SIGNER_API_IMAGE", "SIGNER_API_PUBLISH")

log: FilteringBoundLogger = structlog.get_logger("service.environment")


def environment_names(settings: type[BaseSettings]) -> list[str]:
    """The environment variables `settings` reads, as written in the README."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    names = []
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        names.append(alias if isinstance(alias, str) else f"{prefix}{name}".upper())
    return names


def _known() -> frozenset[str]:
    return (
        frozenset(name for cls in SETTINGS_CLASSES for name in environment_names(cls)) | OTHER_NAMES
    )


def unknown_signer_names(environ: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """Each `SIGNER_*` variable of `environ` that nothing reads, with the closest known
    name (None when none is close)."""
    known = _known()
    found = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith("SIGNER_") or upper in known or upper.startswith(OTHER_PREFIXES):
            continue
        close = difflib.get_close_matches(upper, known, n=1, cutoff=0.8)
        found.append((name, close[0] if close else None))
    return found


def warn_unknown(environ: Mapping[str, str] | None = None) -> list[str]:
    """Log a warning for each unknown `SIGNER_*` variable; returns their names."""
    unknown = unknown_signer_names(os.environ if environ is None else environ)
    for name, close in unknown:
        log.warning(
            "unknown setting ignored",
            variable=name,
            did_you_mean=close,
            hint="no setting reads this variable; see the README's settings table",
        )
    return [name for name, _ in unknown]


class Environment:
    """Every settings class of the service, each built from the environment once, when
    first asked for. Tests pass ready-made ones as keyword arguments."""

    def __init__(self, **given: BaseSettings) -> None:
        for name, value in given.items():
            setattr(self, name, value)  # set before first use: cached_property keeps it

    @cached_property
    def signer(self) -> SignerSettings:
        return SignerSettings()

    @cached_property
    def queue(self) -> QueueSettings:
        return QueueSettings()

    @cached_property
    def worker(self) -> WorkerSettings:
        return WorkerSettings()

    @cached_property
    def api(self) -> ApiSettings:
        return ApiSettings()

    @cached_property
    def accounts(self) -> AccountSettings:
        return AccountSettings()

    @cached_property
    def limits(self) -> RateLimitSettings:
        return RateLimitSettings()

    @cached_property
    def usage(self) -> UsageSettings:
        return UsageSettings()

    @cached_property
    def database(self) -> DatabaseSettings:
        return DatabaseSettings()

    @cached_property
    def log(self) -> LogSettings:
        return LogSettings()

    @cached_property
    def tiktok(self) -> TikTokSettings:
        return TikTokSettings()

    @cached_property
    def console(self) -> ConsoleSettings:
        return ConsoleSettings()

    @cached_property
    def mail(self) -> MailSettings:
        return MailSettings()
