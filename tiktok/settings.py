"""Settings of the TikTok web client, read from `SIGNER_*` environment variables.

Only the service builds this (once, at start-up) and hands it to `TikTokClient`; nothing
in `tiktok/` reads the environment itself.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .proxies import UpstreamProxy, parse_proxies

__all__ = ["TikTokSettings"]


class TikTokSettings(BaseSettings):
    """Every knob of `TikTokClient`; each maps onto an environment variable `SIGNER_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="SIGNER_", extra="ignore")

    tiktok_web_url: str = Field(
        "https://www.tiktok.com",
        description="Base of TikTok's web host (live pages, api-live, ttwid); a local "
        "TikTok such as `signer sandbox` in tests.",
    )
    tiktok_webcast_url: str = Field(
        "https://webcast.tiktok.com",
        description="Base of TikTok's webcast host (im/fetch); without the `/webcast` path.",
    )
    tiktok_push_url: str = Field(
        "wss://webcast-ws.tiktok.com/webcast/im/ws_proxy/ws_reuse_supplement/",
        description="Push server the `socket` connect strategy points clients at (no query).",
    )
    upstream_proxy: Annotated[list[UpstreamProxy], NoDecode] = Field(
        default_factory=list,
        description="Outbound proxy for TikTok requests: one URL or a comma-separated list "
        "used in turn (http://, https://, socks5://; credentials as user:pass@).",
    )
    tiktok_connect_timeout: float = Field(
        3.0, gt=0, le=60, description="Seconds to open a connection to TikTok (or the proxy)."
    )
    tiktok_read_timeout: float = Field(
        5.0, gt=0, le=120, description="Seconds to wait for each read from TikTok."
    )
    tiktok_retries: int = Field(
        2, ge=0, le=5, description="Retries of a TikTok request after a connection error or 5xx."
    )
    tiktok_retry_backoff: float = Field(
        0.1, ge=0, le=10, description="Base of the jittered exponential backoff, in seconds."
    )
    tiktok_max_per_host: int = Field(
        64, ge=1, le=4096, description="Most requests in flight to one TikTok host at once."
    )
    tiktok_breaker_failures: int = Field(
        5, ge=1, le=1000, description="Consecutive TikTok failures that open the breaker."
    )
    tiktok_breaker_cooldown: float = Field(
        10.0, gt=0, le=600, description="Seconds the breaker stays open before one probe."
    )
    tiktok_room_cache_size: int = Field(
        10_000, ge=1, description="Room look-ups kept in each process's memory."
    )
    connect_strategy: Literal["fetch", "socket", "auto"] = Field(
        "auto",
        description="How the connect routes answer: `fetch` relays TikTok's im/fetch, "
        "`socket` builds the answer pointing at the direct push URL, `auto` tries `fetch` "
        "and falls back to `socket` when TikTok answers empty or refuses.",
    )

    @field_validator("tiktok_web_url", "tiktok_webcast_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("tiktok_push_url")
    @classmethod
    def _push_url(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith(("ws://", "wss://")) or "?" in value:
            raise ValueError("must be a ws:// or wss:// URL without a query")
        return value

    @field_validator("upstream_proxy", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        # Environment variables carry lists as `a,b,c`, which reads better than JSON.
        if isinstance(value, str):
            return parse_proxies(value)
        if isinstance(value, list):
            return [parse_proxies(item)[0] if isinstance(item, str) else item for item in value]
        return value
