"""The DevTools endpoint is read from the profile folder, waited for while Chromium writes
it, and a Chromium that exits before it listens fails at once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from signer.browser.launch import DEVTOOLS_ENDPOINT_FILE, devtools_endpoint
from signer.errors import EngineUnavailable


async def test_an_endpoint_written_late_is_waited_for(tmp_path: Path) -> None:
    async def write_late() -> None:
        await asyncio.sleep(0.2)
        (tmp_path / DEVTOOLS_ENDPOINT_FILE).write_text("")  # created, not yet written
        await asyncio.sleep(0.1)
        (tmp_path / DEVTOOLS_ENDPOINT_FILE).write_text("45678\n/devtools/browser/x\n")

    writer = asyncio.create_task(write_late())
    assert await devtools_endpoint(tmp_path, timeout=5) == (45678, "/devtools/browser/x")
    await writer


async def test_no_endpoint_is_an_engine_error(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailable, match="DevTools port"):
        await devtools_endpoint(tmp_path, timeout=0.2)


async def test_a_browser_that_exits_at_start_fails_at_once(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec("sh", "-c", "exit 3")
    exited = asyncio.ensure_future(process.wait())
    started = time.monotonic()
    with pytest.raises(EngineUnavailable, match="exited with status 3"):
        await devtools_endpoint(tmp_path, timeout=30, alive=exited)
    assert time.monotonic() - started < 10
