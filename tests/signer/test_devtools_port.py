"""The DevTools port is read from the profile folder, waited for while Chromium writes it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from signer.browser.devtools import devtools_port
from signer.errors import EngineUnavailable


@pytest.fixture
def process_with_profile(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A real process whose command line names a profile folder, as Chromium's does."""
    profile = tmp_path / "profile"
    profile.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", f"--user-data-dir={profile}"]
    )
    try:
        # Until the child has exec'd: its command line is the parent's a moment before.
        cmdline = Path(f"/proc/{child.pid}/cmdline")
        deadline = time.monotonic() + 10
        while b"--user-data-dir=" not in cmdline.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.01)
        yield child.pid, profile
    finally:
        child.kill()
        child.wait()


async def test_a_port_written_late_is_waited_for(process_with_profile: tuple[int, Path]) -> None:
    pid, profile = process_with_profile

    async def write_late() -> None:
        await asyncio.sleep(0.2)
        (profile / "DevToolsActivePort").write_text("")  # created, not yet written
        await asyncio.sleep(0.1)
        (profile / "DevToolsActivePort").write_text("45678\n/devtools/browser/x\n")

    writer = asyncio.create_task(write_late())
    assert await devtools_port(pid, timeout=5) == 45678
    await writer


async def test_no_port_is_an_engine_error(process_with_profile: tuple[int, Path]) -> None:
    pid, _ = process_with_profile
    with pytest.raises(EngineUnavailable, match="DevTools port"):
        await devtools_port(pid, timeout=0.2)
