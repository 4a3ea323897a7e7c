"""Settings of the signing core, read from `SIGNER_*` environment variables."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["MAX_BODY_BYTES", "EngineName", "SignerSettings"]

# The largest body a request may carry: the library's default, and the API's own limit
# on an HTTP request body (api/parsing.py reads it from here).
MAX_BODY_BYTES = 64 * 1024

EngineName = Literal["browser", "native"]


class SignerSettings(BaseSettings):
    """Every knob of `Signer`; each maps onto an environment variable `SIGNER_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="SIGNER_", extra="ignore")

    engine: EngineName = Field("browser", description="`browser` (Chromium) or `native`.")
    chromium_path: str | None = Field(
        None,
        description="Chromium executable. Unset: /usr/bin/chromium (else chromium-browser, "
        "google-chrome, or `chromium` on the PATH).",
    )
    contexts: int = Field(4, ge=1, le=64, description="Warm browser contexts per process.")
    chromium_args: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Extra Chromium switches, space-separated, after ours (a repeated switch: "
        "the later one wins; a `--disable-features` replaces our whole list).",
    )
    profiles: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Profile ids to use (comma-separated in the environment); empty: all.",
    )
    recycle_after_signatures: int = Field(
        10_000, ge=1, description="Replace a context after this many signatures."
    )
    recycle_after_seconds: float = Field(
        1800.0, gt=0, description="Replace a context after it has lived this long."
    )
    browser_call_timeout: float = Field(
        2.0, gt=0, description="Upper bound on one call into the page, in seconds."
    )
    launch_timeout: float = Field(
        15.0, gt=0, description="Upper bound on launching Chromium, in seconds."
    )
    max_batch: int = Field(128, ge=1, le=4096, description="Most requests per page call.")
    default_deadline: float = Field(
        5.0, gt=0, le=30, description="Seconds a request may take when it has no deadline."
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["tiktok.com", "*.tiktok.com", "*.tiktokv.com"],
        description="Host patterns a URL may target; `*.` matches any subdomain.",
    )
    max_url_length: int = Field(16_384, ge=256, description="Longest URL accepted, in bytes.")
    max_body_bytes: int = Field(MAX_BODY_BYTES, ge=0, description="Largest request body accepted.")
    rewrite_params: bool = Field(
        True,
        description="Rewrite browser_*, os and screen_* query parameters to match the "
        "signing profile, so the query agrees with the User-Agent.",
    )
    vendor_sdk_path: Path | None = Field(
        None, description="Local copy of TikTok's webmssdk.js; X-Bogus is then taken from it."
    )
    vendor_acrawler_path: Path | None = Field(
        None, description="Local copy of TikTok's acrawler.js, for the legacy `_signature`."
    )
    native_chrome_major: int = Field(
        156, ge=90, description="Chrome major version the native engine's profile claims."
    )
    native_profile: str = Field("win10-chrome-1080p", description="Profile of the native engine.")

    @field_validator("chromium_args", mode="before")
    @classmethod
    def _split_words(cls, value: object) -> object:
        # Switches may hold commas (`--disable-features=A,B`): split as a shell would.
        if isinstance(value, str):
            return shlex.split(value)
        return value

    @field_validator("profiles", "allowed_hosts", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        # Environment variables carry lists as `a,b,c`, which reads better than JSON.
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
