"""Every setting the code reads from the environment is documented in the README."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from api.account_settings import AccountSettings
from api.ratelimit_settings import RateLimitSettings
from api.server import ApiSettings
from api.usage_settings import UsageSettings
from migrations.settings import DatabaseSettings
from signer.config import SignerSettings
from workers.config import LogSettings, QueueSettings, WorkerSettings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
SETTINGS: list[type[BaseSettings]] = [
    SignerSettings,
    QueueSettings,
    ApiSettings,
    RateLimitSettings,
    UsageSettings,
    AccountSettings,
    DatabaseSettings,
    WorkerSettings,
    LogSettings,
]


def environment_names(settings: type[BaseSettings]) -> list[str]:
    prefix = str(settings.model_config.get("env_prefix", ""))
    names = []
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        names.append(alias if isinstance(alias, str) else f"{prefix}{name}".upper())
    return names


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda cls: cls.__name__)
def test_every_setting_has_a_row_in_the_readme(settings: type[BaseSettings]) -> None:
    missing = [name for name in environment_names(settings) if f"| `{name}` |" not in README]
    assert not missing, f"README.md's settings table lacks {missing}"
