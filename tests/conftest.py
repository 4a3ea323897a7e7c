"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Browser, async_playwright

from migrations import DatabaseSettings, migrate
from signer.browser.launch import CHROMIUM_ARGS, resolve_executable
from tests.postgres_server import PostgresServer, postgres_server

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


@pytest.fixture
async def browser(require_chromium: None) -> AsyncIterator[Browser]:
    """A headless Chromium for web pages (the console, /docs), found and flagged as the
    signer's own is: the tests see what the service's browser would."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=resolve_executable(os.environ.get("SIGNER_CHROMIUM_PATH")),
            args=list(CHROMIUM_ARGS),
            headless=True,
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """The test Postgres server (`DATABASE_URL`'s, else a private one): one per session."""
    with postgres_server() as server:
        yield server


@pytest.fixture
async def migrated_url(postgres: PostgresServer) -> AsyncIterator[str]:
    """A fresh database brought up to date as `signer migrate` does, dropped after."""
    async with postgres.database() as url:
        await migrate(DatabaseSettings(DATABASE_URL=url))
        yield url


@pytest.fixture
async def migrated_conn(migrated_url: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    """A connection to a fresh migrated database."""
    connection = await asyncpg.connect(migrated_url)
    try:
        yield connection
    finally:
        await connection.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that needs Chromium (through `require_chromium`, directly or by way of
    a fixture such as `browser_signer` or the hostile stack) carries the `browser`
    marker, so `pytest -m "not browser"` is a fast lane that launches no browser."""
    for item in items:
        if "require_chromium" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)
