"""Apply the numbered SQL files of this package, once each, in order.

Each file runs in its own transaction together with the row recording it in
`schema_migrations` (name, checksum, applied_at), so a file is either wholly applied and
recorded or not at all. A session-level advisory lock on a fixed key is held throughout,
so replicas starting at once take turns: the first applies, the others find nothing left.
(Session-level locks need a real session: point the runner at Postgres itself, not at a
pooler in transaction mode.)

An applied file must never change: if its checksum differs from the one recorded, nothing
is applied and `MigrationChecksumError` says which file; the fix is a new numbered file.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import asyncpg

from .partitions import Connection, ensure_partitions, utc_today
from .settings import DatabaseSettings

__all__ = [
    "MIGRATION_LOCK_KEY",
    "MigrationChecksumError",
    "MigrationError",
    "MigrationFile",
    "apply_migrations",
    "apply_migrations_on",
    "migrate",
    "migration_files",
]

# "signmigr" in ASCII: a fixed advisory-lock key no other part of the service uses.
MIGRATION_LOCK_KEY = int.from_bytes(b"signmigr", "big")

_FILE_NAME = re.compile(r"(\d+)_[A-Za-z0-9_]+\.sql")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name text PRIMARY KEY,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(RuntimeError):
    """The migrations cannot be applied as they stand."""


class MigrationChecksumError(MigrationError):
    """A file already applied has been edited since."""


@dataclass(frozen=True)
class MigrationFile:
    """One numbered SQL file: `0001_accounts.sql` is number 1."""

    name: str
    sql: str

    @property
    def number(self) -> int:
        found = _FILE_NAME.fullmatch(self.name)
        if found is None:
            raise MigrationError(f"{self.name}: a migration is named like 0001_what_it_does.sql")
        return int(found[1])

    @property
    def checksum(self) -> str:
        """SHA-256 of the text, with line endings normalised (a Windows checkout is no edit)."""
        normalised = self.sql.replace("\r\n", "\n")
        return hashlib.sha256(normalised.encode()).hexdigest()


def migration_files() -> list[MigrationFile]:
    """The package's `*.sql` files in numeric order."""
    found = [
        MigrationFile(entry.name, entry.read_text(encoding="utf-8"))
        for entry in resources.files("migrations").iterdir()
        if entry.name.endswith(".sql")
    ]
    found.sort(key=lambda file: file.number)
    for before, after in itertools.pairwise(found):
        if before.number == after.number:
            raise MigrationError(f"{before.name} and {after.name} share a number")
    return found


async def apply_migrations_on(
    conn: Connection, files: Sequence[MigrationFile] | None = None
) -> list[str]:
    """Apply on `conn` what is not applied yet; return the names applied now, in order.

    `files` defaults to `migration_files()`. The connection must not be in a transaction:
    each file gets a transaction of its own.
    """
    if conn.is_in_transaction():
        raise MigrationError("apply_migrations_on needs a connection outside any transaction")
    files = migration_files() if files is None else files
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        applied = await _apply_locked(conn, files)
    except BaseException:
        # Best effort only, so the original error is the one raised: a lock left behind
        # on a broken connection goes when the connection does.
        with contextlib.suppress(Exception):
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
        raise
    await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    return applied


async def _apply_locked(conn: Connection, files: Sequence[MigrationFile]) -> list[str]:
    await conn.execute(_CREATE_TABLE)
    recorded = {
        record["name"]: record["checksum"]
        for record in await conn.fetch("SELECT name, checksum FROM schema_migrations")
    }
    # Every check before any change: an edited file stops the run before it starts.
    # Names recorded but not among `files` are let be: during a rolling upgrade, a
    # replica of the previous version meets a database the next one has migrated.
    for file in files:
        if file.name in recorded and recorded[file.name] != file.checksum:
            raise MigrationChecksumError(
                f"migration {file.name} was changed after it was applied (recorded "
                f"checksum {recorded[file.name][:12]}…, file now {file.checksum[:12]}…): "
                "restore it and put the change in a new numbered file"
            )
    applied: list[str] = []
    for file in files:
        if file.name in recorded:
            continue
        async with conn.transaction():
            await conn.execute(file.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)",
                file.name,
                file.checksum,
            )
        applied.append(file.name)
    return applied


async def apply_migrations(dsn: str) -> list[str]:
    """Connect to `dsn`, apply what is not applied yet and return the names applied now."""
    conn = await asyncpg.connect(dsn)
    try:
        return await apply_migrations_on(conn)
    finally:
        await conn.close()


async def migrate(settings: DatabaseSettings) -> list[str]:
    """Apply migrations, then bring the usage partitions up to date; one line per change.

    What `signer migrate` and start-up run: a fresh database can take usage rows at once.
    """
    conn = await asyncpg.connect(settings.database_url)
    try:
        applied = await apply_migrations_on(conn)
        changes = await ensure_partitions(
            conn,
            today=utc_today(),
            ahead_days=settings.partition_ahead_days,
            retention_days=settings.usage_retention_days,
        )
    finally:
        await conn.close()
    return [f"applied {name}" for name in applied] + changes.describe()
