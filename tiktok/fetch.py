"""`webcast/im/fetch/` as a browser on www.tiktok.com sends it, signed through a callable.

The signature and the browser must agree: the query's browser values, the `User-Agent`
header and the `msToken` all come from one `SignResult`. Which profile signs is only known
from the answer, so the query is built for the profile that signed last time (with a pool of
one, always right); when another profile answered, the query is rebuilt for it and signed
once more, which keeps a pool's profiles from borrowing each other's time zone or msToken.

The caller's own cookie header (a logged-in connect) is passed through to TikTok and never
logged or stored; its cookies win over ours by name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from signer.models import Navigator, SignRequest, SignResult
from signer.profiles import browser_params

from .cookies import MsTokenJar, ProfileCookies, TtwidStore, cookie_header, parse_cookie_header
from .errors import EmptyAnswer, TikTokRefused
from .hosts import TIKTOK_ORIGIN, TIKTOK_REFERER, WEBCAST_ORIGIN, rebase
from .params import im_fetch_url, navigator_values, new_device_id
from .transport import Upstream, UpstreamResponse
from .validation import clean_room_id

__all__ = ["ENDPOINT", "ImFetchResult", "ImFetcher", "Sign"]

Sign = Callable[[SignRequest], Awaitable[SignResult]]
ENDPOINT = "im_fetch"
# TikTok refusing the cookies it issued answers one of these; a fresh ttwid may fix it.
_COOKIE_REFUSALS = frozenset({401, 403})

# The first request's guess at the browser, before any profile has signed: the signer
# rewrites its browser values anyway, and a wrong time zone costs one more signature.
_DEFAULT_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Safari/537.36"
)
_name, _version = browser_params(_DEFAULT_USER_AGENT)
GUESS_NAVIGATOR = Navigator(
    user_agent=_DEFAULT_USER_AGENT,
    platform="Win32",
    language="en-US",
    languages=("en-US", "en"),
    device_scale_factor=1.0,
    screen_width=1920,
    screen_height=1080,
    timezone="America/New_York",
    browser_name=_name,
    browser_version=_version,
)


@dataclass(frozen=True, slots=True)
class ImFetchResult:
    """TikTok's answer, unchanged, and what the connect route tells its caller."""

    body: bytes  # the ProtoMessageFetchResult bytes as TikTok sent them
    status: int
    latency: float  # seconds, TikTok's part only
    cookies: tuple[tuple[str, str], ...]  # for X-Set-TT-Cookie: ttwid first
    room_id: str
    user_agent: str  # the UA the client must use on the WebSocket
    profile: str

    def set_tt_cookie(self) -> str:
        """The `X-Set-TT-Cookie` value (spec 2.5): Cookie syntax, ttwid first."""
        return "; ".join(f"{name}={value}" for name, value in self.cookies)

    def __repr__(self) -> str:  # cookies are not for logs
        return (
            f"ImFetchResult(room_id={self.room_id!r}, status={self.status}, "
            f"bytes={len(self.body)}, latency={self.latency:.3f})"
        )


class ImFetcher:
    def __init__(
        self,
        *,
        upstream: Upstream,
        sign: Sign,
        ttwids: TtwidStore,
        ms_tokens: MsTokenJar,
        webcast_url: str,
    ) -> None:
        self._upstream = upstream
        self._sign = sign
        self._ttwids = ttwids
        self._ms_tokens = ms_tokens
        self._webcast_url = webcast_url
        self._navigators: dict[str, Navigator] = {}
        self._device_ids: dict[str, str] = {}
        self._last_profile = ""

    async def fetch(
        self,
        room_id: str,
        *,
        user_agent: str | None = None,
        cursor: str = "",
        internal_ext: str = "",
        caller_cookies: str | None = None,
    ) -> ImFetchResult:
        """Fetch `im/fetch` for `room_id`. Raises `InvalidInput` for a bad room id or cookie
        header (nothing sent), the signer's `SignError`s, and the `TikTokError`s: TikTok's
        refusal (`TikTokRefused`) and an empty 200 (`EmptyAnswer`) included."""
        room_id = clean_room_id(room_id)
        theirs = parse_cookie_header(caller_cookies) if caller_cookies else []
        signed = await self._signed(room_id, user_agent, cursor, internal_ext)
        profile = signed.profile
        own_ttwid = any(name == "ttwid" for name, _ in theirs)
        url = rebase(signed.signed_url, WEBCAST_ORIGIN, self._webcast_url)
        for attempt in range(2):
            cookies = await self._ttwids.get(profile, signed.user_agent)
            answer = await self._upstream.get(ENDPOINT, url, self._headers(signed, cookies, theirs))
            self._ms_tokens.remember(profile, answer)
            issued = next(
                (
                    cookie
                    for cookie in answer.cookies
                    if cookie.name == "ttwid" and cookie.value and cookie.value != cookies.ttwid
                ),
                None,
            )
            # TikTok refuses a ttwid with a refusal status, or with an empty 200 that
            # carries a new one (as it treats a first visit).
            refused = answer.status in _COOKIE_REFUSALS or (
                answer.status == 200 and not answer.body and issued is not None
            )
            if issued is not None and not own_ttwid:
                await self._ttwids.adopt(profile, cookies, issued)
            if refused and not own_ttwid and attempt == 0:
                if issued is None:  # no replacement offered: visit again for one
                    await self._ttwids.refused(profile, cookies.ttwid)
                continue
            return self._result(answer, room_id, signed, cookies, theirs)
        raise AssertionError("unreachable: the second attempt returns")

    async def _signed(
        self, room_id: str, user_agent: str | None, cursor: str, internal_ext: str
    ) -> SignResult:
        profile = self._last_profile
        result: SignResult | None = None
        for _ in range(2):
            navigator = self._navigators.get(profile, GUESS_NAVIGATOR)
            if user_agent:
                navigator = navigator.for_user_agent(user_agent)
            ms_token = self._ms_tokens.get(profile)
            url = im_fetch_url(
                room_id=room_id,
                navigator=navigator,
                device_id=self._device_id(profile),
                cursor=cursor,
                internal_ext=internal_ext,
            )
            result = await self._sign(
                SignRequest(url, user_agent=user_agent, ms_token=ms_token, rewrite_params=True)
            )
            self._navigators[result.profile] = result.navigator
            self._last_profile = result.profile
            if result.profile == profile and self._agrees(result, ms_token):
                return result
            profile = result.profile  # another profile signed: build for it, sign again
        assert result is not None
        return result

    def _agrees(self, result: SignResult, ms_token: str | None) -> bool:
        query = dict(
            (unquote(key), unquote(value))
            for key, _, value in (
                part.partition("=") for part in urlsplit(result.signed_url).query.split("&")
            )
        )
        wanted = navigator_values(result.navigator)
        if any(query.get(key) != value for key, value in wanted.items()):
            return False
        return (ms_token or "") == result.ms_token or not ms_token

    def _device_id(self, profile: str) -> str:
        # One device per profile, as one browser keeps one device id.
        device = self._device_ids.get(profile)
        if device is None:
            device = self._device_ids[profile] = new_device_id()
        return device

    def _headers(
        self,
        signed: SignResult,
        cookies: ProfileCookies,
        theirs: list[tuple[str, str]],
    ) -> dict[str, str]:
        ours = cookies.pairs()
        if signed.ms_token:
            ours.append(("msToken", signed.ms_token))
        languages = signed.navigator.languages or (signed.navigator.language,)
        return {
            "User-Agent": signed.user_agent,
            "Accept": "text/html,application/json,application/protobuf",
            "Accept-Language": ",".join(
                lang if index == 0 else f"{lang};q=0.{9 - min(index, 8)}"
                for index, lang in enumerate(languages)
            ),
            "Referer": TIKTOK_REFERER,
            "Origin": TIKTOK_ORIGIN,
            "Sec-Fetch-Site": "same-site",
            "Sec-Fetch-Mode": "cors",
            "Sec-Fetch-Dest": "empty",
            "Cookie": cookie_header(ours, theirs),
        }

    def _result(
        self,
        answer: UpstreamResponse,
        room_id: str,
        signed: SignResult,
        cookies: ProfileCookies,
        theirs: list[tuple[str, str]],
    ) -> ImFetchResult:
        if answer.status != 200:
            raise TikTokRefused(
                f"TikTok refused im/fetch for room {room_id} with status {answer.status}",
                status=answer.status,
                endpoint=ENDPOINT,
            )
        if not answer.body:
            raise EmptyAnswer(
                f"TikTok answered im/fetch for room {room_id} with an empty body "
                "(what it does for a signature it does not accept)",
                status=answer.status,
                latency=answer.latency,
                endpoint=ENDPOINT,
            )
        return ImFetchResult(
            body=answer.body,
            status=answer.status,
            latency=answer.latency,
            cookies=client_cookies(answer, cookies, theirs),
            room_id=room_id,
            user_agent=signed.user_agent,
            profile=signed.profile,
        )


def client_cookies(
    answer: UpstreamResponse, cookies: ProfileCookies, theirs: list[tuple[str, str]]
) -> tuple[tuple[str, str], ...]:
    """What the client needs for the WebSocket: ttwid first (the caller's own, a new one
    TikTok just set, or ours), then the cookies TikTok set with this answer."""
    ttwid = dict(theirs).get("ttwid") or cookies.ttwid
    rest: dict[str, str] = {}
    for cookie in answer.cookies:
        if cookie.name == "ttwid":
            ttwid = cookie.value or ttwid
        elif cookie.value:
            rest[cookie.name] = cookie.value
    return (("ttwid", ttwid), *rest.items())
