"""The usage writer while its Postgres goes away and comes back.

Stops and restarts run on a private server of this module's own (`PrivatePostgres`, brought
back on the same port); a COMMIT whose answer is lost is staged with a TCP proxy in front
of the shared test server.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import glob
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeAlias
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from accounts.usage import UsageRow, UsageSettings, UsageWriter
from migrations.runner import apply_migrations
from service.stack.services import PrivatePostgres
from tests.postgres_server import PostgresServer

Connection: TypeAlias = "asyncpg.Connection[Any]"

T0 = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)


def fast_settings(**overrides: Any) -> UsageSettings:
    """Short intervals and back-offs, so that the tests see retries within a second."""
    values: dict[str, Any] = {
        "flush_interval_seconds": 0.05,
        "retry_initial_seconds": 0.05,
        "retry_max_seconds": 0.2,
        "connect_timeout_seconds": 2.0,
        "last_used_resolution_seconds": 0.0,  # exact, to compare with the rows
    }
    values.update(overrides)
    return UsageSettings(**values)


class RestartablePostgres:
    """A private Postgres that stops (cleanly or as in a crash) and starts again on the
    port it first had: a writer keeps the one URL it was given, as in a deployment."""

    def __init__(self, folder: Path) -> None:
        self.server = PrivatePostgres(folder)
        self.folder = folder
        self.port = 0
        self.running = False

    def start(self) -> str:
        url = self.server.start(port=self.port)
        self.port = self.server.port
        self.running = True
        return url

    def stop(self) -> None:
        self.server.stop()  # pg_ctl -m fast: sessions are told, then closed
        self.running = False

    def crash(self) -> None:
        """Stop as a crash would: no word to the clients, transactions cut off."""
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
        pg_ctl = candidates[0] if candidates else shutil.which("pg_ctl") or "pg_ctl"
        command = [pg_ctl, "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop"]
        if os.geteuid() == 0:  # the server runs as `postgres`, as PrivatePostgres starts it
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)
        self.server.port = 0  # nothing left for its stop() to stop
        self.running = False


@pytest.fixture(scope="module")
def restartable() -> Iterator[tuple[RestartablePostgres, str]]:
    parent = "/tmp" if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="signer-usage-outage-", dir=parent))
    folder.chmod(0o755)
    server = RestartablePostgres(folder)
    try:
        url = server.start()
        yield server, url
    finally:
        if server.running:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def outage_db(
    restartable: tuple[RestartablePostgres, str],
) -> AsyncIterator[tuple[RestartablePostgres, str]]:
    server, url = restartable
    if not server.running:  # a failed test may have left it stopped
        server.start()
    async with PostgresServer(url).database() as database_url:
        await apply_migrations(database_url)
        yield server, database_url


def row(n: int, **fields: Any) -> UsageRow:
    return UsageRow(
        created_at=T0 + timedelta(milliseconds=n),
        request_id=f"req-{n:06d}",
        route="sign",
        dialect="eulerstream",
        target="webcast.tiktok.com/webcast/im/fetch/",
        success=True,
        status_code=200,
        response_time_ms=10.0,
        **fields,
    )


async def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s")
        await asyncio.sleep(0.01)


async def fetch(url: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


async def test_a_stream_of_rows_survives_postgres_stopping_and_starting(
    outage_db: tuple[RestartablePostgres, str],
) -> None:
    server, url = outage_db
    conn = await asyncpg.connect(url)
    try:
        alice = await conn.fetchval(
            "INSERT INTO users (email) VALUES ('a@example.com') RETURNING id"
        )
        key = await conn.fetchval(
            "INSERT INTO api_keys (user_id, key_hash, prefix) VALUES ($1, $2, 'sk_a') RETURNING id",
            alice,
            "0" * 64,
        )
    finally:
        await conn.close()
    writer = UsageWriter(url, fast_settings(batch_size=200))
    await writer.start()
    added = 0
    producing = True
    seen_down = False

    async def produce() -> None:
        # About 2,000 rows a second, every third one anonymous.
        nonlocal added, seen_down
        while producing:
            for _ in range(10):
                fields: dict[str, Any] = {}
                if added % 3:
                    fields = {"user_id": alice, "api_key_id": key}
                writer.add(row(added, **fields))
                added += 1
            seen_down = seen_down or not writer.postgres_up
            await asyncio.sleep(0.005)

    producer = asyncio.create_task(produce())
    try:
        await wait_for(lambda: writer.written > 500)
        seen_down = False  # from here on
        # Mid-stream, as a crash would: no goodbye to the clients, COMMITs cut off.
        await asyncio.to_thread(server.crash)
        await wait_for(lambda: seen_down)
        await asyncio.sleep(1.0)
        written_while_down = writer.written
        await asyncio.sleep(0.5)
        assert writer.written == written_while_down
        assert writer.buffered > 500
        await asyncio.to_thread(server.start)
        await wait_for(lambda: writer.postgres_up and writer.written > written_while_down)
        await asyncio.sleep(0.5)
    finally:
        producing = False
        await producer
    async with asyncio.timeout(30):
        await writer.flush()
    await writer.close()

    assert (writer.written, writer.dropped, writer.buffered) == (added, 0, 0)
    ids = [r["request_id"] for r in await fetch(url, "SELECT request_id FROM usage_logs")]
    duplicates = [rid for rid, count in collections.Counter(ids).items() if count > 1]
    assert duplicates == []
    assert sorted(ids) == [f"req-{n:06d}" for n in range(added)]
    counted = sum(1 for n in range(added) if n % 3)
    quota = await fetch(url, "SELECT user_id, date, request_count FROM quota_usage")
    assert [tuple(r) for r in quota] == [(alice, T0.date(), counted)]
    last = max(n for n in range(added) if n % 3)
    used = await fetch(url, "SELECT last_used FROM api_keys")
    assert used[0]["last_used"] == row(last).created_at


async def test_past_the_bound_the_oldest_rows_are_dropped_and_counted_exactly(
    outage_db: tuple[RestartablePostgres, str], caplog: pytest.LogCaptureFixture
) -> None:
    server, url = outage_db
    writer = UsageWriter(url, fast_settings(batch_size=100, max_buffered=1000))
    await writer.start()
    with caplog.at_level(logging.INFO, logger="accounts.usage"):
        for n in range(300):
            writer.add(row(n))
        await writer.flush()
        await asyncio.to_thread(server.stop)
        for n in range(300, 800):
            writer.add(row(n))
        # The writer has tried, failed and put its batch back at the front.
        await wait_for(lambda: any("cannot be written" in r.message for r in caplog.records))
        assert (writer.buffered, writer.dropped) == (500, 0)
        for n in range(800, 2800):
            writer.add(row(n))
        assert (writer.buffered, writer.dropped) == (1000, 1500)
        await asyncio.sleep(0.5)  # retries come and go; nothing is lost or written
        assert (writer.buffered, writer.dropped, writer.written) == (1000, 1500, 300)
        await asyncio.to_thread(server.start)
        async with asyncio.timeout(30):
            await writer.flush()
    await writer.close()

    assert (writer.written, writer.dropped, writer.buffered) == (1300, 1500, 0)
    ids = [
        r["request_id"] for r in await fetch(url, "SELECT request_id FROM usage_logs ORDER BY id")
    ]
    # The first 300, then the newest 1000 of the outage, in order.
    assert ids == [f"req-{n:06d}" for n in [*range(300), *range(1800, 2800)]]
    messages = [r.message for r in caplog.records]
    assert sum("usage buffer full" in m for m in messages) == 1
    assert sum("1500 rows were dropped while it was full" in m for m in messages) == 1
    assert sum("cannot be written to Postgres" in m for m in messages) == 1
    assert sum("written to Postgres again" in m for m in messages) == 1


class CuttingProxy:
    """A TCP proxy in front of Postgres that cuts one connection at COMMIT, once armed:
    before COMMIT reaches Postgres (`"request"`), or after Postgres committed and before
    its answer reaches the client (`"answer"`)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self._url = parts
        self.armed: Literal["request", "answer"] | None = None
        self.cuts = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        """Listen; returns `url` with the proxy's port in place of Postgres's."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        netloc = self._url.netloc.rsplit(":", 1)[0]
        return urlunsplit(self._url._replace(netloc=f"{netloc}:{port}"))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        cut_answer = False

        def cut() -> None:
            self.armed = None
            self.cuts += 1
            writer.close()
            up_writer.close()

        async def client_to_server() -> None:
            nonlocal cut_answer
            while data := await reader.read(65536):
                if self.armed is not None and b"COMMIT" in data:
                    if self.armed == "request":
                        cut()
                        return
                    cut_answer = True
                up_writer.write(data)
                await up_writer.drain()

        async def server_to_client() -> None:
            while data := await up_reader.read(65536):
                if cut_answer:  # Postgres answers COMMIT only once it has committed
                    cut()
                    return
                writer.write(data)
                await writer.drain()

        with contextlib.suppress(OSError):
            await asyncio.gather(client_to_server(), server_to_client())
        writer.close()
        up_writer.close()


@pytest.mark.parametrize("where", ["answer", "request"])
async def test_a_batch_cut_off_at_commit_is_written_exactly_once(
    postgres: PostgresServer, where: Literal["request", "answer"], caplog: pytest.LogCaptureFixture
) -> None:
    """ "answer": Postgres committed but the writer never heard; it must not write the
    batch again. "request": the COMMIT never arrived; the batch must be written again."""
    async with postgres.database() as url:
        await apply_migrations(url)
        conn = await asyncpg.connect(url)
        try:
            alice = await conn.fetchval(
                "INSERT INTO users (email) VALUES ('a@example.com') RETURNING id"
            )
        finally:
            await conn.close()
        proxy = CuttingProxy(url)
        writer = UsageWriter(await proxy.start(), fast_settings(batch_size=100))
        await writer.start()
        try:
            with caplog.at_level(logging.INFO, logger="accounts.usage"):
                proxy.armed = where
                for n in range(250):
                    writer.add(row(n, user_id=alice))
                async with asyncio.timeout(30):
                    await writer.flush()
            await writer.close()
        finally:
            await proxy.close()
        assert proxy.cuts == 1
        assert (writer.written, writer.dropped) == (250, 0)
        ids = [r["request_id"] for r in await fetch(url, "SELECT request_id FROM usage_logs")]
        assert sorted(ids) == [f"req-{n:06d}" for n in range(250)]
        quota = await fetch(url, "SELECT request_count FROM quota_usage")
        assert [r["request_count"] for r in quota] == [250]
        committed = [r for r in caplog.records if "had committed" in r.message]
        assert len(committed) == (1 if where == "answer" else 0)
