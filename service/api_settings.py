"""Settings of the API process (`SIGNER_API_*`): where it listens, whom it believes about
client addresses, and how long and how many connections it keeps."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ApiSettings"]


class ApiSettings(BaseSettings):
    """`SIGNER_API_*`: where the API listens, whom it believes about client addresses, and
    how long and how many connections it keeps."""

    model_config = SettingsConfigDict(env_prefix="SIGNER_API_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address the API listens on.")
    port: int = Field(8080, ge=0, le=65535, description="Port the API listens on (0: any).")
    trust_forwarded_for: bool = Field(
        False,
        description="Take the client address from the first X-Forwarded-For hop (only "
        "behind a proxy that sets it): anonymous rate limits are per client address.",
    )
    max_connections: int = Field(
        10_000,
        ge=1,
        description="Most client connections open at once per API process (never more "
        "than the file-descriptor limit allows, less a tenth kept for Redis, Postgres "
        "and logs); one more gets a 503 and is closed.",
    )
    head_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds a client has to send a complete request head (line and "
        "headers), from connecting or from a later request's first byte; then 408, closed.",
    )
    keepalive_timeout: float = Field(
        75.0,
        gt=0,
        description="Seconds an idle keep-alive connection stays open (longer than a "
        "proxy's idle timeout for its upstreams, so the proxy closes first).",
    )
