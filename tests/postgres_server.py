"""Fresh, empty Postgres databases for the tests: one server, a new database per use.

`postgres_server()` yields a `PostgresServer`: the server at `DATABASE_URL` when that is
set, else a private one started with `service.stack.services.PrivatePostgres` in a temporary
folder. `await server.fresh_database()` creates a database named `test_<hex>` and returns
its URL; `await server.drop(url)` removes it, open connections or not; `server.database()`
does both around a block. Nothing but `test_<hex>` databases is ever created or dropped.

Every `postgres_server()` in one process shares one private server, stopped when the last
one ends, so each test package can declare its own fixtures without starting another:

    @pytest.fixture(scope="session")
    def postgres() -> Iterator[PostgresServer]:
        with postgres_server() as server:
            yield server

    @pytest.fixture
    async def database_url(postgres: PostgresServer) -> AsyncIterator[str]:
        async with postgres.database() as url:
            yield url
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from service.stack.services import PrivatePostgres, ServiceError

__all__ = ["PostgresServer", "postgres_server", "with_database"]

_TEST_DATABASE = re.compile(r"test_[0-9a-f]{16}")


def with_database(url: str, name: str) -> str:
    """`url` pointing at database `name` instead (credentials and options kept)."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


class PostgresServer:
    """A Postgres server on which tests create and drop databases of their own."""

    def __init__(self, url: str) -> None:
        self.url = url
        # CREATE and DROP DATABASE run from the maintenance database, present everywhere.
        self._maintenance = with_database(url, "postgres")

    async def fresh_database(self) -> str:
        """Create an empty database and return its URL."""
        name = f"test_{secrets.token_hex(8)}"
        await self._run(f'CREATE DATABASE "{name}"')
        return with_database(self.url, name)

    async def drop(self, url: str) -> None:
        """Drop a database made by `fresh_database`, closing its connections first."""
        name = urlsplit(url).path.lstrip("/")
        if not _TEST_DATABASE.fullmatch(name):
            raise ValueError(f"{url} is not a database of ours to drop")
        await self._run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @asynccontextmanager
    async def database(self) -> AsyncIterator[str]:
        """A fresh database for the length of the block."""
        url = await self.fresh_database()
        try:
            yield url
        finally:
            await self.drop(url)

    async def _run(self, statement: str) -> None:
        conn = await asyncpg.connect(self._maintenance)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()


class _SharedPrivateServer:
    """One private server per process, counted in and out by `postgres_server()`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._server: PrivatePostgres | None = None
        self._folder: Path | None = None
        self._url = ""

    def enter(self) -> str:
        with self._lock:
            if self._users == 0:
                self._url = self._start()
            self._users += 1
            return self._url

    def leave(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                self._stop()

    def _start(self) -> str:
        # As root, Postgres runs as the `postgres` user, who must be able to enter every
        # folder above its data: /tmp is open to all, whatever TMPDIR says.
        parent = "/tmp" if os.geteuid() == 0 else None
        self._folder = Path(tempfile.mkdtemp(prefix="signer-postgres-", dir=parent))
        self._folder.chmod(0o755)
        # Thrown away after the tests: no fsync, which makes them much faster.
        self._server = PrivatePostgres(self._folder, durable=False)
        try:
            return self._server.start()
        except ServiceError as error:
            self._stop()
            raise RuntimeError(f"{error} (or run `make test`, which installs it)") from None

    def _stop(self) -> None:
        try:
            if self._server is not None:
                self._server.stop()
        finally:
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)
            self._server, self._folder = None, None


_shared = _SharedPrivateServer()


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Yield the server tests make their databases on (see the module docstring)."""
    given = os.environ.get("DATABASE_URL")
    if given:
        yield PostgresServer(given)
        return
    url = _shared.enter()
    try:
        yield PostgresServer(url)
    finally:
        _shared.leave()
