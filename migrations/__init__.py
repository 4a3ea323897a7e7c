"""Numbered SQL migrations for Postgres and the runner that applies them."""

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
from .settings import DatabaseSettings

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
