"""The query of TikTok's `webcast/im/fetch/`, as the web player sends it (spec section 7).

The browser-derived values (browser name and version, platform, language, screen, time zone,
OS) come from a `Navigator`, the one the signing context presents, so the query agrees with
the User-Agent sent beside it; TikTok refuses a mismatch. `navigator_values` names exactly
those keys, so the client can check a signed query against the context that signed it.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote

from signer.models import Navigator
from signer.urls import tiktok_query_values

from .hosts import TIKTOK_REFERER, WEBCAST_ORIGIN

__all__ = ["IM_FETCH_PATH", "im_fetch_url", "navigator_values", "new_device_id"]

IM_FETCH_PATH = "/webcast/im/fetch/"


def new_device_id() -> str:
    """19 random digits, not starting with 0, as the player's `device_id`."""
    return str(secrets.randbelow(9 * 10**18) + 10**18)


def navigator_values(navigator: Navigator) -> dict[str, str]:
    """Every im/fetch parameter that follows from the browser."""
    values = tiktok_query_values(navigator)
    values["tz_name"] = navigator.timezone
    values["app_language"] = navigator.language
    values["webcast_language"] = navigator.language.partition("-")[0] or "en"
    return values


def im_fetch_url(
    *,
    room_id: str,
    navigator: Navigator,
    device_id: str,
    cursor: str = "",
    internal_ext: str = "",
) -> str:
    """The canonical, unsigned `https://webcast.tiktok.com/webcast/im/fetch/?...` URL.

    `msToken`, `X-Bogus` and `X-Gnarly` are added by the signer. An empty `cursor` and
    `internal_ext` are what a fresh connect sends (TikTokLive 1.x, TikTokLiveJava).
    """
    browser = navigator_values(navigator)
    params: list[tuple[str, str]] = [
        ("aid", "1988"),
        ("app_language", browser["app_language"]),
        ("app_name", "tiktok_web"),
        ("browser_language", browser["browser_language"]),
        ("browser_name", browser["browser_name"]),
        ("browser_online", "true"),
        ("browser_platform", browser["browser_platform"]),
        ("browser_version", browser["browser_version"]),
        ("cookie_enabled", "true"),
        ("cursor", cursor),
        ("debug", "false"),
        ("device_id", device_id),
        ("device_platform", "web"),
        ("did_rule", "3"),
        ("fetch_rule", "1"),
        ("focus_state", "true"),
        ("from_page", "user"),
        ("history_comment_count", "6"),
        ("history_len", "4"),
        ("host", WEBCAST_ORIGIN),
        ("identity", "audience"),
        ("internal_ext", internal_ext),
        ("is_fullscreen", "false"),
        ("is_page_visible", "true"),
        ("last_rtt", "0"),
        ("live_id", "12"),
        ("os", browser["os"]),
        ("priority_region", ""),
        ("referer", TIKTOK_REFERER),
        ("region", "US"),
        ("resp_content_type", "protobuf"),
        ("room_id", room_id),
        ("root_referer", TIKTOK_REFERER),
        ("screen_height", browser["screen_height"]),
        ("screen_width", browser["screen_width"]),
        ("sup_ws_ds_opt", "1"),
        ("tz_name", browser["tz_name"]),
        ("update_version_code", "1.3.0"),
        ("version_code", "180800"),
        ("webcast_language", browser["webcast_language"]),
        ("webcast_sdk_version", "1.3.0"),
    ]
    query = "&".join(f"{key}={quote(value, safe='')}" for key, value in params)
    return f"{WEBCAST_ORIGIN}{IM_FETCH_PATH}?{query}"
