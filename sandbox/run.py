"""`run_sandbox`: the offline TikTok as a command, with the settings each client needs.

Meant for `signer sandbox` (the CLI calls `run_sandbox`) and `python -m sandbox`. It serves
until interrupted and prints, before anything else, what to set in our signer and in each
client (spec section 8.1) so a bot connects to the fake room instead of TikTok.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from pathlib import Path

from sandbox.rooms import DEFAULT_UNIQUE_ID
from sandbox.script import EventMix, Script, load_script
from sandbox.server import Sandbox
from sandbox.state import Mode

__all__ = ["DEFAULT_SIGN_URL", "instructions", "run_sandbox", "serve"]

DEFAULT_SIGN_URL = "http://127.0.0.1:8080"


def instructions(sandbox: Sandbox, sign_url: str = DEFAULT_SIGN_URL) -> str:
    """The lines a user pastes: our signer's settings, then each client's."""
    web, webcast, handle = sandbox.web_url, sandbox.webcast_url, DEFAULT_UNIQUE_ID
    host_port = f"{sandbox.advertise_host}:{sandbox.port}"
    ttlc_host = host_port
    scheme_note = ""
    if sandbox.advertise_host.startswith("127.") or sandbox.advertise_host in ("localhost", "::1"):
        # TTLC 2.3+ picks https for loopback names (spec 8.1, "the TTLC scheme trap").
        ttlc_host = f"0.0.0.0:{sandbox.port}"
        scheme_note = (
            "  // loopback names make TTLC use https; 0.0.0.0 reaches this server over http\n"
        )
    return f"""\
TikTok sandbox ({sandbox.mode} mode) on {web}
  live room: @{handle} (room id {sandbox.room(handle).room_id}); offline: @sandbox_offline
  push socket: {sandbox.push_url}

Our signer (point it at the sandbox instead of TikTok):
  SIGNER_TIKTOK_WEB_URL={web}
  SIGNER_TIKTOK_WEBCAST_URL={webcast}
  SIGNER_TIKTOK_PUSH_URL={sandbox.push_url}

TikTokLive (Python) 6.x, run against our signer at {sign_url}:
  from TikTokLive.client.web.web_settings import WebDefaults
  WebDefaults.tiktok_sign_url = "{sign_url}"
  WebDefaults.tiktok_app_url = "{web}"
  WebDefaults.tiktok_webcast_url = "{webcast}/webcast"
  client = TikTokLiveClient(unique_id="@{handle}")

tiktok-live-connector 2.x (Node):
  SIGN_API_URL={sign_url} node bot.js      # read at import
  new TikTokLiveConnection('{handle}', {{
    webConfigOverrides: {{ TIKTOK_HOST_WEB: '{ttlc_host}', TIKTOK_HOST_WEBCAST: '{ttlc_host}' }},
{scheme_note}  }})

tiktok-live-connector 1.x (Node):
  const config = require('tiktok-live-connector/dist/lib/webcastConfig.js');
  config.TIKTOK_URL_WEB = '{web}/';
  config.TIKTOK_URL_WEBCAST = '{webcast}/webcast/';
  new WebcastPushConnection('{handle}', {{ signProviderOptions: {{ host: '{sign_url}/' }} }})
"""


async def serve(sandbox: Sandbox, sign_url: str, out: Callable[[str], None]) -> None:
    """Run `sandbox` until SIGINT/SIGTERM (or cancellation), then stop it cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    async with sandbox:
        out(instructions(sandbox, sign_url))
        await stop.wait()
        out("sandbox stopped")


def run_sandbox(
    host: str = "127.0.0.1",
    port: int = 8090,
    mode: Mode = "fetch",
    script: Path | Script | None = None,
    rate: float | None = 1.0,
    *,
    sign_url: str = DEFAULT_SIGN_URL,
    advertise_host: str | None = None,
    out: Callable[[str], None] = print,
) -> None:
    """Serve an offline TikTok with a live `@sandbox` room until interrupted.

    `script` (a JSON file or a `Script`) plays to every socket that connects; `rate` adds
    random events per second on top (None or 0 for none). Raises ValueError for a bad script.
    """
    loaded = load_script(script) if isinstance(script, Path) else script
    mix = EventMix(rate=rate) if rate else None
    sandbox = Sandbox(
        mode=mode, host=host, port=port, advertise_host=advertise_host, script=loaded, mix=mix
    )
    asyncio.run(serve(sandbox, sign_url, out))
