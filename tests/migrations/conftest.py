"""A Postgres server for the session and a fresh, empty database for each test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tests.postgres_server import PostgresServer


@pytest.fixture
async def database_url(postgres: PostgresServer) -> AsyncIterator[str]:
    async with postgres.database() as url:
        yield url


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    connection = await asyncpg.connect(database_url)
    yield connection
    await connection.close()
