"""The native engine: every token in pure Python, with one fixed profile.

For hosts without Chromium, and as the reference the browser engine is held to: given
the same inputs (time, canvas, randomness) both produce the same tokens.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import NamedTuple

from .config import SignerSettings
from .engine import EngineOutput, EngineStats
from .errors import SignError
from .models import Navigator
from .profiles import Profile, browser_params, get_profile
from .urls import PreparedRequest, append_tokens
from .verifyfp import make_verify_fp
from .xbogus import encode_xbogus
from .xgnarly import GnarlyRandomness, encode_xgnarly
from .xttparams import encode_xtt_params

__all__ = ["NativeEngine", "TokenSet", "profile_navigator", "sign_query"]


def profile_navigator(profile: Profile, chrome_major: int) -> Navigator:
    """The navigator a real browser with this profile would report."""
    user_agent = profile.user_agent(chrome_major)
    name, version = browser_params(user_agent)
    return Navigator(
        user_agent=user_agent,
        platform=profile.platform,
        language=profile.language,
        languages=profile.languages,
        device_scale_factor=profile.device_scale_factor,
        screen_width=profile.screen_width,
        screen_height=profile.screen_height,
        timezone=profile.timezone,
        browser_name=name,
        browser_version=version,
    )


class TokenSet(NamedTuple):
    """Every token for one request, and the final query they cover."""

    query: str
    x_bogus: str
    x_gnarly: str
    x_tt_params: str


def sign_query(
    query: str,
    user_agent: str,
    *,
    body: bytes = b"",
    verify_fp: str,
    ms_token: str,
    timestamp: int,
    canvas: int,
    header: tuple[int, int],
    randomness: GnarlyRandomness,
    requests_seen: int = 1,
) -> TokenSet:
    """Every token for one query: the same computation the in-page bundle performs."""
    final = append_tokens(query, verify_fp, ms_token)
    return TokenSet(
        query=final,
        x_bogus=encode_xbogus(final, user_agent, timestamp, canvas, header, body),
        x_gnarly=encode_xgnarly(
            final,
            user_agent,
            timestamp,
            canvas,
            body,
            randomness=randomness,
            requests_seen=requests_seen,
        ),
        x_tt_params=encode_xtt_params(final),
    )


class NativeEngine:
    """Signs in this process with the configured profile's fixed canvas."""

    name = "native"

    def __init__(self, settings: SignerSettings) -> None:
        self._profile = get_profile(settings.native_profile)
        self._navigator = profile_navigator(self._profile, settings.native_chrome_major)
        self._seen = 0
        self._signed = 0

    @property
    def navigator(self) -> Navigator:
        return self._navigator

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def sign_batch(
        self, requests: Sequence[PreparedRequest]
    ) -> list[EngineOutput | SignError]:
        return [self.sign_one(request) for request in requests]

    def sign_one(self, request: PreparedRequest) -> EngineOutput:
        user_agent = request.user_agent or self._navigator.user_agent
        navigator = self._navigator.for_user_agent(user_agent)
        verify_fp = make_verify_fp() if request.include_verify_fp else ""
        timestamp = int(time.time())
        self._seen = (self._seen + 1) & 0xFFFF
        tokens = sign_query(
            request.query_for(navigator),
            user_agent,
            body=request.body,
            verify_fp=verify_fp,
            ms_token=request.ms_token,
            timestamp=timestamp,
            canvas=self._profile.native_canvas,
            header=self._profile.header,
            randomness=GnarlyRandomness.draw(),
            requests_seen=self._seen,
        )
        self._signed += 1
        return EngineOutput(
            query=tokens.query,
            x_bogus=tokens.x_bogus,
            x_gnarly=tokens.x_gnarly,
            x_tt_params=tokens.x_tt_params,
            verify_fp=verify_fp,
            timestamp=timestamp,
            canvas=self._profile.native_canvas,
            user_agent=user_agent,
            signature="",
            navigator=navigator,
            profile=self._profile.id,
            engine=self.name,
        )

    def stats(self) -> EngineStats:
        return EngineStats(engine=self.name, signatures=self._signed)
