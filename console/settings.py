"""Settings of the console (`SIGNER_CONSOLE_*`) and of the mail it sends (`SIGNER_SMTP_*`).

Defined next to what they configure, built only in `service/` (the one place that reads
the environment) and passed down.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ConsoleSettings", "MailSettings", "SignupMode"]

SignupMode = Literal["open", "invite", "closed"]


class ConsoleSettings(BaseSettings):
    """Who may sign up, how sessions are kept and how sign-ins are throttled."""

    model_config = SettingsConfigDict(env_prefix="SIGNER_CONSOLE_", extra="ignore")

    signup: SignupMode = Field(
        "invite",
        description="Who may make an account in the console: `open` (anyone, after "
        "verifying their address), `invite` (only people an operator invited) or `closed` "
        "(nobody; operators add users with `signer users`).",
    )
    secure_cookies: bool = Field(
        False,
        description="Mark the console's cookies `Secure` even when a request arrives over "
        "plain HTTP (behind a proxy that ends TLS); requests over https always get it.",
    )
    base_url: str = Field(
        "",
        description="Public base URL of the service (e.g. https://sign.example.com), used in "
        "mailed links and the connect guide; empty: the URL each request came to.",
    )
    session_idle_days: float = Field(
        7.0, gt=0, description="Days a console session lasts without being used."
    )
    signin_failures_per_account: int = Field(
        10,
        ge=1,
        description="Failed console sign-ins per address typed and UTC hour; past it that "
        "account's sign-in is refused until the hour ends.",
    )
    mails_per_address: int = Field(
        5,
        ge=1,
        description="Links (verify, reset) the console mails to one address per UTC hour; "
        "past it the forms answer as usual and mail nothing, so nobody can flood an inbox.",
    )
    signin_failures_per_address: int = Field(
        30,
        ge=1,
        description="Failed console sign-ins per client address and UTC hour; past it every "
        "sign-in from that address is refused until the hour ends.",
    )


class MailSettings(BaseSettings):
    """Where the console's mail goes; without `SIGNER_SMTP_URL` links go to the log."""

    model_config = SettingsConfigDict(env_prefix="SIGNER_SMTP_", extra="ignore")

    url: SecretStr = Field(
        SecretStr(""),
        description="SMTP server for the console's mail: `smtp://user:password@host:587` "
        "(STARTTLS when the server offers it) or `smtps://...:465` (TLS from the start); "
        "empty: each mailed link is written to the service log instead.",
    )
    sender: str = Field("signer@localhost", description="The From address of the console's mail.")
    timeout: float = Field(10.0, gt=0, description="Seconds allowed to hand one mail over.")
