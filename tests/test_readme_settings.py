"""Every setting the code reads from the environment is documented in the README."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from service.environment import SETTINGS_CLASSES, environment_names

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
# Every class the service builds (service.environment holds the one list), but the TikTok
# client's, whose README rows come with the connect routes (issue in progress).
SETTINGS: list[type[BaseSettings]] = [
    cls for cls in SETTINGS_CLASSES if cls.__name__ != "TikTokSettings"
]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda cls: cls.__name__)
def test_every_setting_has_a_row_in_the_readme(settings: type[BaseSettings]) -> None:
    missing = [name for name in environment_names(settings) if f"| `{name}` |" not in README]
    assert not missing, f"README.md's settings table lacks {missing}"
