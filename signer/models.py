"""What goes into `Signer` and what comes out."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import cache

from .profiles import browser_params, platform_for_user_agent


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


__all__ = ["Navigator", "SignRequest", "SignResult"]


@dataclass(frozen=True, slots=True)
class SignRequest:
    """An unsigned TikTok request.

    `deadline` is a Unix time in seconds after which the signature is useless (signed URLs
    live about 30 s; clients give up after 5 s); unset, the signer's default applies.
    `ms_token` is the caller's own token, passed through; without one the URL's `msToken`
    is kept, and failing that the query carries an empty `msToken=` unless
    `mint_ms_token` asks for a random one.
    """

    url: str
    method: str = "GET"
    body: bytes | str = b""
    user_agent: str | None = None
    ms_token: str | None = None
    mint_ms_token: bool = False
    include_verify_fp: bool = True
    rewrite_params: bool | None = None
    deadline: float | None = None


@dataclass(frozen=True, slots=True)
class Navigator:
    """The browser facts a client must present alongside a signature."""

    user_agent: str
    platform: str
    language: str
    languages: tuple[str, ...]
    device_scale_factor: float
    screen_width: int
    screen_height: int
    timezone: str
    browser_name: str
    browser_version: str

    def for_user_agent(self, user_agent: str) -> Navigator:
        """This navigator as seen by a caller who sends its own User-Agent."""
        if user_agent == self.user_agent:
            return self
        name, version = browser_params(user_agent)
        return replace(
            self,
            user_agent=user_agent,
            platform=platform_for_user_agent(user_agent, self.platform),
            browser_name=name,
            browser_version=version,
        )

    def to_json(self) -> dict[str, object]:
        # Shallow on purpose: `asdict` deep-copies, and this runs once per signature.
        data = {name: getattr(self, name) for name in _field_names(Navigator)}
        data["languages"] = list(self.languages)
        return data


@dataclass(frozen=True, slots=True)
class SignResult:
    """A signed request: the URL to call, every token, and the browser to present."""

    signed_url: str
    x_bogus: str
    x_gnarly: str
    x_tt_params: str
    verify_fp: str
    ms_token: str
    ms_token_minted: bool
    signature: str  # legacy `_signature`; empty unless TikTok's own script was supplied
    user_agent: str
    navigator: Navigator
    timestamp: int
    canvas: int
    engine: str
    profile: str

    @property
    def browser_name(self) -> str:
        return self.navigator.browser_name

    @property
    def browser_version(self) -> str:
        return self.navigator.browser_version

    def to_json(self) -> dict[str, object]:
        data = {name: getattr(self, name) for name in _field_names(SignResult)}
        data["navigator"] = self.navigator.to_json()
        data["browser_name"] = self.browser_name
        data["browser_version"] = self.browser_version
        return data
