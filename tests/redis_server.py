"""A private Redis for the tests: `REDIS_URL` when given, else our own on a free port."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from service.stack.services import PrivateRedis, ServiceError

__all__ = ["private_redis"]


@contextmanager
def private_redis() -> Iterator[str]:
    """Yield a Redis URL; a server started here is stopped and its folder removed after."""
    given = os.environ.get("REDIS_URL")
    if given:
        yield given
        return
    folder = Path(tempfile.mkdtemp(prefix="signer-redis-"))
    server = PrivateRedis(folder, durable=False)  # thrown away after: no disk writes
    try:
        yield server.start()
    except ServiceError as error:
        raise RuntimeError(f"{error} (or run `make test`, which installs it)") from None
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
