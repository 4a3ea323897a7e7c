"""`python -m sandbox`: starts, prints each client's settings, serves, stops on SIGINT."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import aiohttp

from sandbox import Sandbox
from sandbox.run import instructions


async def test_instructions_name_every_client() -> None:
    async with Sandbox(port=0) as tiktok:
        text = instructions(tiktok, "http://127.0.0.1:9999")
    assert f"SIGNER_TIKTOK_WEB_URL={tiktok.web_url}" in text
    assert f'WebDefaults.tiktok_webcast_url = "{tiktok.webcast_url}/webcast"' in text
    assert "SIGN_API_URL=http://127.0.0.1:9999" in text
    # The TTLC 2.x scheme trap: a loopback host would make it speak https.
    assert f"TIKTOK_HOST_WEB: '0.0.0.0:{tiktok.port}'" in text
    assert "signProviderOptions: { host: 'http://127.0.0.1:9999/' }" in text


async def test_the_command_serves_until_interrupted() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox",
        "--port",
        "0",
        "--rate",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        first = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        match = re.search(r"on (http://127\.0\.0\.1:\d+)", first)
        assert match is not None, first
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{match.group(1)}/@sandbox/live") as r,
        ):
            assert r.status == 200
        process.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(process.communicate(), 20)
        assert b"sandbox stopped" in rest
        assert process.returncode == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_a_bad_script_is_one_line_and_exit_2() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox",
        "--port",
        "0",
        "--script",
        "/nonexistent.json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 2
    assert err.decode().startswith("sandbox: cannot read script /nonexistent.json")
