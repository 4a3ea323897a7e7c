"""TikTokLive 6.6.6, unmodified, opening a LIVE by handle through our signer: one JSON line
per event on stdout, for tests/clients/test_connect.py.

    python tests/clients/connect_tiktoklive.py SIGN_URL API_KEY WEB_URL WEBCAST_URL

It runs in an interpreter of its own because the client is configured through class
attributes (`WebDefaults`, spec section 8.1) that would otherwise stay set in the test
process. The settings are the documented ones: the sign server and key, and the two TikTok
hosts (the sandbox). Exit 0 after the client's `LiveEndEvent`, 1 when connecting fails.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from typing import Any


def _out(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def _user(user: Any) -> dict[str, object]:
    return {"nickname": user.nickname, "unique_id": user.unique_id}


async def connect(sign_url: str, api_key: str, web_url: str, webcast_url: str) -> int:
    settings: Any = importlib.import_module("TikTokLive.client.web.web_settings")
    settings.WebDefaults.tiktok_sign_url = sign_url
    settings.WebDefaults.tiktok_sign_api_key = api_key
    settings.WebDefaults.tiktok_app_url = web_url
    settings.WebDefaults.tiktok_webcast_url = f"{webcast_url}/webcast"
    live: Any = importlib.import_module("TikTokLive")
    events: Any = importlib.import_module("TikTokLive.events")

    client = live.TikTokLiveClient(unique_id="@sandbox")
    ended = asyncio.Event()

    async def on_connect(event: Any) -> None:
        _out(event="connected", room_id=str(event.room_id), unique_id=event.unique_id)

    async def on_comment(event: Any) -> None:
        _out(event="chat", text=event.comment, **_user(event.user))

    async def on_gift(event: Any) -> None:
        _out(
            event="gift",
            name=event.gift.name,
            gift_id=event.gift_id,
            repeat_end=bool(event.repeat_end),
            **_user(event.user),
        )

    async def on_live_end(event: Any) -> None:
        _out(event="live_end")
        ended.set()

    client.add_listener(events.ConnectEvent, on_connect)
    client.add_listener(events.CommentEvent, on_comment)
    client.add_listener(events.GiftEvent, on_gift)
    client.add_listener(events.LiveEndEvent, on_live_end)
    try:
        task = await client.start()
    except Exception as error:  # the client's own error, reported as the test's finding
        _out(event="error", error=f"{type(error).__name__}: {error}")
        return 1
    # The client disconnects itself on a live end; the loop task then finishes.
    await asyncio.wait([task], timeout=60)
    if not task.done():
        await client.disconnect()
    if task.done() and not task.cancelled() and task.exception() is not None:
        _out(event="error", error=repr(task.exception()))
    _out(event="closed", live_end=ended.is_set())
    return 0 if ended.is_set() else 1


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    return asyncio.run(connect(*argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
