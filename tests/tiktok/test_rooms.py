"""Room look-ups against the sandbox: caches, shared misses, refusals before any request."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as redis

from sandbox import DEFAULT_ROOM_ID, OFFLINE_UNIQUE_ID, Sandbox
from signer import Signer
from tiktok import (
    InvalidHandle,
    LookupFailed,
    TikTokClient,
    UserNotFound,
    UserOffline,
    clean_handle,
)
from tiktok.rooms import FOUND_TTL, MISSING_TTL

from .conftest import settings_for


async def test_a_live_handle_resolves_from_the_live_page(
    client: TikTokClient, tiktok: Sandbox
) -> None:
    info = await client.room("@Sandbox")
    assert (info.unique_id, info.room_id, info.is_live) == ("sandbox", DEFAULT_ROOM_ID, True)
    assert info.routes_attempted == ("live_page",)
    assert tiktok.requests.count("live_page") == 1
    assert tiktok.requests.count("api_live_room") == 0
    assert await client.live_room_id("sandbox") == DEFAULT_ROOM_ID


async def test_100_concurrent_lookups_cost_one_upstream_request(
    client: TikTokClient, tiktok: Sandbox
) -> None:
    ids = await asyncio.gather(*(client.live_room_id("sandbox") for _ in range(100)))
    assert set(ids) == {DEFAULT_ROOM_ID}
    assert tiktok.requests.count("live_page", "api_live_room") == 1
    stats = client.stats()
    assert stats.room_cache_misses == 1
    # Later look-ups never leave the process.
    for _ in range(10):
        await client.live_room_id("sandbox")
    assert tiktok.requests.count("live_page", "api_live_room") == 1
    assert client.stats().room_cache_hits["process"] == 10


async def test_another_process_finds_the_room_in_redis(
    client: TikTokClient,
    tiktok: Sandbox,
    native_signer: Signer,
    redis_client: redis.Redis,
    key_prefix: str,
) -> None:
    await client.live_room_id("sandbox")
    ttl = await redis_client.ttl(client.rooms.key("sandbox"))
    assert FOUND_TTL - 5 <= ttl <= FOUND_TTL
    async with TikTokClient(
        settings_for(tiktok), sign=native_signer.sign, redis_client=redis_client,
        key_prefix=key_prefix,
    ) as other:  # fmt: skip
        assert await other.live_room_id("sandbox") == DEFAULT_ROOM_ID
        assert other.stats().room_cache_hits == {"redis": 1}
    assert tiktok.requests.count("live_page") == 1


async def test_offline_and_unknown_users_are_cached_briefly(
    client: TikTokClient, tiktok: Sandbox, redis_client: redis.Redis
) -> None:
    info = await client.room(OFFLINE_UNIQUE_ID)
    assert not info.is_live
    with pytest.raises(UserOffline) as offline:
        await client.live_room_id(OFFLINE_UNIQUE_ID)
    assert offline.value.unique_id == OFFLINE_UNIQUE_ID
    with pytest.raises(UserNotFound):
        await client.room("nobody_here")
    with pytest.raises(UserNotFound):
        await client.room("nobody_here")
    assert tiktok.requests.count("live_page") == 2  # one each: the second asks were cached
    for handle in (OFFLINE_UNIQUE_ID, "nobody_here"):
        ttl = await redis_client.ttl(client.rooms.key(handle))
        assert 0 < ttl <= MISSING_TTL


async def test_both_routes_are_tried_before_a_lookup_fails(
    client: TikTokClient, tiktok: Sandbox
) -> None:
    # A page without SIGI_STATE (a captcha, say) and an API answer that is not JSON.
    tiktok.fail(200)  # every route answers the text "sandbox fault" with 200
    with pytest.raises(LookupFailed) as failed:
        await client.room("sandbox")
    assert failed.value.routes_attempted == ("live_page", "api_live_user_room")
    assert "TikTok" in str(failed.value)
    tiktok.heal()
    assert (await client.room("sandbox")).room_id == DEFAULT_ROOM_ID  # failures not cached
    assert tiktok.requests.count("live_page") == 2
    assert tiktok.requests.count("api_live_room") == 1


@pytest.mark.parametrize(
    "handle",
    [
        "a/b",
        "../admin",
        "a..b",
        "a%2Fb",
        "a%2fb",
        "a\x00b",
        "a\nb",
        "a\x7fb",
        "x" * 65,
        "",
        "@",
        "sp ace",
        "ünï",
        "a?b=c",
        "a#b",
    ],
)
async def test_bad_handles_are_refused_with_nothing_sent(
    client: TikTokClient, tiktok: Sandbox, handle: str
) -> None:
    with pytest.raises(InvalidHandle) as refused:
        await client.room(handle)
    assert refused.value.field == "unique_id"
    assert len(tiktok.requests) == 0


def test_handles_are_keyed_as_tiktok_keys_them() -> None:
    assert clean_handle(" @Some.User_1 ") == "some.user_1"
