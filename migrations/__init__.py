"""Numbered SQL migrations for Postgres and the runner that applies them.

The runner (and asyncpg with it) is imported on first use: every process reads
`migrations.settings`, which runs this file first, and only some of them migrate.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .settings import DatabaseSettings

if TYPE_CHECKING:
    from .runner import (
        MIGRATION_LOCK_KEY,
        MigrationChecksumError,
        MigrationError,
        MigrationFile,
        apply_migrations,
        apply_migrations_on,
        migrate,
        migration_files,
    )

__all__ = [
    "MIGRATION_LOCK_KEY",
    "DatabaseSettings",
    "MigrationChecksumError",
    "MigrationError",
    "MigrationFile",
    "apply_migrations",
    "apply_migrations_on",
    "migrate",
    "migration_files",
]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(".runner", __name__), name)
    globals()[name] = value
    return value
