"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM_HINT = "Chromium not found: run `make test` (installs Debian's chromium as root)"


def chromium_available() -> bool:
    configured = os.environ.get("SIGNER_CHROMIUM_PATH")
    if configured:
        return Path(configured).is_file()
    return bool(Path("/usr/bin/chromium").exists() or shutil.which("chromium"))


@pytest.fixture(scope="session")
def require_chromium() -> None:
    # The suite is meant to run against a real Chromium; fail loudly rather than skip,
    # so a CI machine without it cannot pass by testing nothing.
    if not chromium_available():
        pytest.fail(CHROMIUM_HINT)
