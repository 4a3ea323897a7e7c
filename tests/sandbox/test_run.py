"""`python -m sandbox`: starts, prints each client's settings, serves, stops on SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys
from collections.abc import AsyncIterator

import aiohttp

from sandbox import Sandbox
from sandbox.run import instructions


@contextlib.asynccontextmanager
async def command(*args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python ARGS` as a user runs it, its output piped; killed if the test leaves it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


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
    async with command("-m", "sandbox", "--port", "0", "--rate", "0") as process:
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


async def test_a_bad_script_is_one_line_and_exit_2() -> None:
    async with command("-m", "sandbox", "--port", "0", "--script", "/nonexistent.json") as process:
        _, err = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 2
    assert err.decode().startswith("sandbox: cannot read script /nonexistent.json")


async def test_signer_sandbox_prints_the_settings_serves_and_stops_on_sigterm() -> None:
    # `signer sandbox` is `python -m service sandbox`: the service's CLI hands it over.
    args = ("--port", "0", "--rate", "0", "--mode", "socket", "--sign-url", "http://127.0.0.1:9999")
    async with command("-m", "service", "sandbox", *args) as process:
        assert process.stdout is not None
        lines: list[str] = []
        # The instructions end with tiktok-live-connector 1.x's constructor line.
        while not lines or "new WebcastPushConnection(" not in lines[-1]:
            line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
            assert line, "the command ended before printing its instructions: " + "".join(lines)
            lines.append(line)
        text = "".join(lines)
        match = re.search(r"\(socket mode\) on (http://127\.0\.0\.1:(\d+))", lines[0])
        assert match is not None, text
        base, port = match.group(1), match.group(2)
        assert f"SIGNER_TIKTOK_WEB_URL={base}\n" in text
        assert f"SIGNER_TIKTOK_PUSH_URL=ws://127.0.0.1:{port}/webcast/im/" in text
        assert 'WebDefaults.tiktok_sign_url = "http://127.0.0.1:9999"' in text
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{base}/@sandbox/live") as r,
        ):
            assert r.status == 200
            assert '<script id="SIGI_STATE"' in await r.text()
        process.send_signal(signal.SIGTERM)
        rest, err = await asyncio.wait_for(process.communicate(), 20)
        assert b"sandbox stopped" in rest, err
        assert process.returncode == 0


async def test_signer_sandbox_names_itself_in_its_usage() -> None:
    async with command("-m", "service", "sandbox", "--mode", "nonsense") as process:
        _, err = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 2
    assert err.decode().startswith("usage: signer sandbox ")
    assert "invalid choice: 'nonsense'" in err.decode()
