"""im/fetch through the client to the sandbox, signed by a native signer behind `Sign`."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
import redis.asyncio as redis

from sandbox import DEFAULT_ROOM_ID, Sandbox
from sandbox.cookies import parse_cookie_header
from signer import Signer, SignRequest, SignResult
from tiktok import EmptyAnswer, InvalidInput, InvalidRoomId, TikTokClient
from tiktok.proto import ProtoMessageFetchResult

from .conftest import settings_for

CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/150.0.0.0 Safari/537.36"
)


async def test_fetch_relays_tiktoks_answer_with_ttwid_first(
    client: TikTokClient, tiktok: Sandbox
) -> None:
    answer = await client.fetch(DEFAULT_ROOM_ID)
    assert tiktok.requests.outcomes("im_fetch") == ["ok"]
    result = ProtoMessageFetchResult.FromString(answer.body)
    assert result.cursor
    assert result.is_first
    assert result.push_server == tiktok.push_url
    assert answer.status == 200
    assert answer.latency > 0
    names = [name for name, _ in answer.cookies]
    assert names[0] == "ttwid"
    assert "msToken" in names
    assert answer.set_tt_cookie().startswith("ttwid=1%7C")
    assert "ttwid=" not in repr(answer)


async def test_query_headers_and_user_agent_agree(client: TikTokClient, tiktok: Sandbox) -> None:
    answer = await client.fetch(DEFAULT_ROOM_ID, user_agent=CHROME_MAC)
    (sent,) = tiktok.requests.of("im_fetch")
    query = sent.query
    assert sent.header("User-Agent") == answer.user_agent == CHROME_MAC
    assert query["browser_name"] == "Mozilla"
    assert query["browser_version"] == CHROME_MAC.removeprefix("Mozilla/")
    assert query["browser_platform"] == "MacIntel"
    assert sent.header("Referer") == "https://www.tiktok.com/"
    assert sent.header("Origin") == "https://www.tiktok.com"
    for key, value in {
        "aid": "1988", "app_name": "tiktok_web", "device_platform": "web", "did_rule": "3",
        "fetch_rule": "1", "resp_content_type": "protobuf", "live_id": "12",
        "identity": "audience", "version_code": "180800", "room_id": DEFAULT_ROOM_ID,
        "cursor": "", "internal_ext": "",
    }.items():  # fmt: skip
        assert query[key] == value, key
    assert len(query["device_id"]) == 19
    assert query["device_id"].isdigit()
    assert query["X-Bogus"]
    assert query["X-Gnarly"]
    assert "msToken" in query


async def test_another_profile_signing_is_signed_again_for_it(
    tiktok: Sandbox, native_signer: Signer, redis_client: redis.Redis, key_prefix: str
) -> None:
    # The guess's time zone is New York's; a signer whose profile is elsewhere makes the
    # client rebuild the query for that profile and sign once more.
    calls: list[SignRequest] = []

    async def sign(request: SignRequest) -> SignResult:
        calls.append(request)
        return await native_signer.sign(request)

    async with TikTokClient(
        settings_for(tiktok), sign=sign, redis_client=redis_client, key_prefix=key_prefix
    ) as tiktok_client:
        await tiktok_client.fetch(DEFAULT_ROOM_ID)
        first = len(calls)
        await tiktok_client.fetch(DEFAULT_ROOM_ID)
        assert len(calls) - first == 1  # the profile is known now: one signature
    (_, sent) = tiktok.requests.of("im_fetch")
    result = await native_signer.sign(SignRequest("https://webcast.tiktok.com/x?a=1"))
    assert sent.query["tz_name"] == result.navigator.timezone
    assert sent.query["screen_width"] == str(result.navigator.screen_width)


async def test_ttwid_is_cached_per_profile_and_ms_token_carried_on(
    client: TikTokClient, tiktok: Sandbox, redis_client: redis.Redis
) -> None:
    first = await client.fetch(DEFAULT_ROOM_ID)
    second = await client.fetch(DEFAULT_ROOM_ID)
    assert tiktok.requests.count("home") == 1  # one visit for the ttwid
    assert dict(first.cookies)["ttwid"] == dict(second.cookies)["ttwid"]
    assert client.stats().ttwid_fetches == 1
    _one, two = tiktok.requests.of("im_fetch")
    sent_ms_token = parse_cookie_header(two.header("Cookie") or "")["msToken"]
    assert sent_ms_token == dict(first.cookies)["msToken"]  # what TikTok gave the first
    assert two.query["msToken"] == sent_ms_token  # and it is the one signed
    stored = await redis_client.get(client.ttwids.key(first.profile))
    assert stored is not None
    assert dict(first.cookies)["ttwid"] in stored.decode()
    assert 0 < await redis_client.ttl(client.ttwids.key(first.profile)) <= 24 * 3600


async def test_a_refused_ttwid_is_replaced(client: TikTokClient, tiktok: Sandbox) -> None:
    first = await client.fetch(DEFAULT_ROOM_ID)
    tiktok.revoke_ttwids()
    second = await client.fetch(DEFAULT_ROOM_ID)
    assert tiktok.requests.outcomes("im_fetch") == ["ok", "bad_ttwid", "ok"]
    assert dict(second.cookies)["ttwid"] != dict(first.cookies)["ttwid"]
    assert client.stats().ttwid_refreshes == 1
    await client.fetch(DEFAULT_ROOM_ID)  # the replacement is the one kept
    assert tiktok.requests.outcomes("im_fetch")[-1] == "ok"
    assert tiktok.requests.count("home") == 1


async def test_the_callers_cookie_header_is_passed_through(
    client: TikTokClient, tiktok: Sandbox
) -> None:
    await client.fetch(DEFAULT_ROOM_ID, cookie_header="sessionid=s3cret; tt-target-idc=useast1a")
    (sent,) = tiktok.requests.of("im_fetch")
    cookies = parse_cookie_header(sent.header("Cookie") or "")
    assert cookies["sessionid"] == "s3cret"
    assert cookies["tt-target-idc"] == "useast1a"
    assert unquote(cookies["ttwid"]).startswith("1|")
    with pytest.raises(InvalidInput) as refused:
        await client.fetch(DEFAULT_ROOM_ID, cookie_header="sessionid=s3cret\r\nX-Evil: 1")
    assert "s3cret" not in str(refused.value)
    assert tiktok.requests.count("im_fetch") == 1


async def test_an_empty_answer_is_an_error_that_says_so(
    client: TikTokClient, tiktok: Sandbox
) -> None:
    tiktok.mode = "socket"  # im/fetch answers an empty 200, as TikTok was reported to
    with pytest.raises(EmptyAnswer) as empty:
        await client.fetch(DEFAULT_ROOM_ID)
    assert "TikTok" in str(empty.value)
    assert empty.value.status == 200


@pytest.mark.parametrize(
    "room_id", ["", "abc", "12a", "1" * 20, "-1", "0", "١٢٣", "1 2", "9" * 19, "1/../2"]
)
async def test_bad_room_ids_are_refused_with_nothing_sent(
    client: TikTokClient, tiktok: Sandbox, room_id: str
) -> None:
    with pytest.raises(InvalidRoomId):
        await client.fetch(room_id)
    assert len(tiktok.requests) == 0


async def test_socket_strategy_body(client: TikTokClient, tiktok: Sandbox) -> None:
    result = ProtoMessageFetchResult.FromString(client.socket_body(DEFAULT_ROOM_ID))
    assert result.push_server == tiktok.push_url
    assert "?" not in result.push_server
    assert result.is_first
    assert result.cursor
    assert result.internal_ext
    assert dict(result.route_params) == {
        "cursor": result.cursor,
        "internal_ext": result.internal_ext,
    }
    again = ProtoMessageFetchResult.FromString(
        client.socket_body(DEFAULT_ROOM_ID, cursor="c-1", internal_ext="e-2")
    )
    assert (again.cursor, again.internal_ext) == ("c-1", "e-2")
    # Not one of ours (it would break an unencoded socket query): a fresh one instead.
    fresh = ProtoMessageFetchResult.FromString(
        client.socket_body(DEFAULT_ROOM_ID, cursor="a&b=c", internal_ext="x y")
    )
    assert fresh.cursor.startswith("t-")
    assert fresh.internal_ext.startswith("internal_src-")
    assert len(tiktok.requests) == 0
