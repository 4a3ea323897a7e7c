"""Settings of API keys and the admin routes, read from `SIGNER_*`."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["MIN_ADMIN_TOKEN_LENGTH", "AccountSettings"]

# A short token can be guessed online; 16 characters of anything random is out of reach.
MIN_ADMIN_TOKEN_LENGTH = 16


class AccountSettings(BaseSettings):
    """How keys are hashed and cached, and the token that opens `/admin/...`."""

    model_config = SettingsConfigDict(env_prefix="SIGNER_", extra="ignore")

    key_secret: SecretStr = Field(
        SecretStr(""),
        description="Server secret for HMAC-SHA-256 of API keys; empty: plain SHA-256. The "
        "API and the `signer keys` commands must share it, and changing it invalidates every "
        "key already issued.",
    )
    key_cache_ttl: float = Field(
        30.0,
        ge=0,
        description="Seconds a valid key stays cached in each API process; a key revoked "
        "elsewhere keeps working for at most this long (0: ask Postgres every time).",
    )
    key_negative_ttl: float = Field(
        5.0,
        ge=0,
        description="Seconds an unknown, revoked or inactive key stays cached as refused, so "
        "a flood of bad keys does not reach Postgres.",
    )
    key_stale_ttl: float = Field(
        3600.0,
        ge=0,
        description="Seconds past its cache TTL a valid key's last answer is still served "
        "while Postgres cannot be asked (down or too slow), so an outage does not stop "
        "signing for known keys; a key revoked meanwhile keeps working that long (0: none).",
    )
    key_lookup_timeout: float = Field(
        2.0,
        gt=0,
        description="Seconds a key look-up may wait for Postgres before the request gets 503.",
    )
    admin_token: SecretStr = Field(
        SecretStr(""),
        description="Token of the `/admin/...` routes (`Authorization: Bearer` or "
        f"`X-Admin-Token`), at least {MIN_ADMIN_TOKEN_LENGTH} characters; empty: admin "
        "routes disabled.",
    )

    admin_auth_failures_per_minute: int = Field(
        10,
        ge=1,
        description="Wrong admin tokens per client address and UTC minute; past it the "
        "address gets 429 on every admin route, the right token included, until the "
        "minute ends.",
    )

    @field_validator("admin_token")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value()
        if token and len(token) < MIN_ADMIN_TOKEN_LENGTH:
            raise ValueError(
                f"SIGNER_ADMIN_TOKEN must be at least {MIN_ADMIN_TOKEN_LENGTH} characters"
            )
        return value
