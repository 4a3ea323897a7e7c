"""Fingerprint profiles: the desktop browsers our warm contexts present themselves as.

A profile fixes what a real desktop Chrome would show (OS, platform, language, screen,
device scale factor, timezone) and the X-Bogus header bytes. The Chrome version is not
part of it: the User-Agent always carries the running engine's own major version, so a
page's features never contradict its UA.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "PROFILES",
    "CanvasVariant",
    "Profile",
    "browser_params",
    "get_profile",
    "os_param_for_platform",
    "platform_for_user_agent",
]

OsName = Literal["windows", "mac"]

_WINDOWS_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{major}.0.0.0 Safari/537.36"
)
_MAC_UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{major}.0.0.0 Safari/537.36"
)


@dataclass(frozen=True, slots=True)
class CanvasVariant:
    """How a profile draws its canvas fingerprint: real OSes render fonts differently."""

    font: str
    fill_style: str

    def to_js(self) -> dict[str, str]:
        return {"font": self.font, "fillStyle": self.fill_style}


@dataclass(frozen=True, slots=True)
class Profile:
    """One realistic desktop Chrome fingerprint."""

    id: str
    os: OsName
    platform: str  # navigator.platform
    ua_platform: str  # Sec-CH-UA-Platform / userAgentData.platform
    ua_platform_version: str
    language: str
    languages: tuple[str, ...]
    timezone: str
    screen_width: int
    screen_height: int
    viewport_width: int
    viewport_height: int
    device_scale_factor: float
    header: tuple[int, int]
    canvas_variant: CanvasVariant
    native_canvas: int  # used by the native engine, which has no canvas to draw

    def user_agent(self, chrome_major: int) -> str:
        template = _WINDOWS_UA if self.os == "windows" else _MAC_UA
        return template.format(major=chrome_major)


@dataclass(frozen=True, slots=True)
class _OsTraits:
    platform: str
    ua_platform: str
    ua_platform_version: str
    chrome_height: int  # screen height lost to the OS and browser chrome
    canvas_variant: CanvasVariant


_TRAITS: dict[OsName, _OsTraits] = {
    # Taskbar, tab strip and toolbar.
    "windows": _OsTraits("Win32", "Windows", "15.0.0", 136, CanvasVariant("14px Arial", "#f60")),
    # Menu bar, tab strip and toolbar.
    "mac": _OsTraits("MacIntel", "macOS", "15.5.0", 115, CanvasVariant("14px Helvetica", "#069")),
}


def _profile(
    id: str,
    os: OsName,
    screen: tuple[int, int],
    dpr: float,
    language: str,
    timezone: str,
    canvas: int,
) -> Profile:
    traits = _TRAITS[os]
    width, height = screen
    return Profile(
        id=id,
        os=os,
        platform=traits.platform,
        ua_platform=traits.ua_platform,
        ua_platform_version=traits.ua_platform_version,
        language=language,
        languages=(language, language.split("-")[0]),
        timezone=timezone,
        screen_width=width,
        screen_height=height,
        viewport_width=width,
        viewport_height=height - traits.chrome_height,
        device_scale_factor=dpr,
        header=(65, 14),
        canvas_variant=traits.canvas_variant,
        native_canvas=canvas,
    )


# Screens and scale factors are the commonest desktop ones; canvases for the native engine
# are values seen in real captures (see the signing spec).
PROFILES: tuple[Profile, ...] = (
    _profile(
        "win10-chrome-1080p", "windows", (1920, 1080), 1.0, "en-US", "America/New_York", 1223183275
    ),
    _profile(
        "win11-chrome-1440p", "windows", (2560, 1440), 1.0, "en-US", "America/Chicago", 1657988856
    ),
    _profile(
        "win11-chrome-laptop", "windows", (1536, 864), 1.25, "en-GB", "Europe/London", 4231191202
    ),
    _profile(
        "mac-chrome-retina", "mac", (1512, 982), 2.0, "en-US", "America/Los_Angeles", 3045582288
    ),
    _profile("mac-chrome-1440p", "mac", (2560, 1440), 1.0, "en-US", "America/New_York", 1135188161),
)

_BY_ID = {profile.id: profile for profile in PROFILES}


def get_profile(profile_id: str) -> Profile:
    """The profile with this id; `KeyError` names the known ones."""
    try:
        return _BY_ID[profile_id]
    except KeyError:
        known = ", ".join(_BY_ID)
        raise KeyError(f"unknown profile {profile_id!r}; known: {known}") from None


def platform_for_user_agent(user_agent: str, default: str) -> str:
    """The navigator.platform a browser with this User-Agent reports."""
    if "Windows" in user_agent:
        return "Win32"
    if "Macintosh" in user_agent or "Mac OS X" in user_agent:
        return "MacIntel"
    if "Linux" in user_agent or "X11" in user_agent:
        return "Linux x86_64"
    return default


def os_param_for_platform(platform: str) -> str:
    """TikTok's `os` query parameter for a navigator.platform value."""
    if platform.startswith("Win"):
        return "windows"
    if platform.startswith("Mac"):
        return "mac"
    return "linux"


def browser_params(user_agent: str) -> tuple[str, str]:
    """`(browser_name, browser_version)` as TikTok's web queries spell them for a UA."""
    name, _, version = user_agent.partition("/")
    return name, version
