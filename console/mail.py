"""The console's mail: the texts of each link it sends, and the sending itself, through
SMTP (aiosmtplib) or, with no server configured, into the service log so a local run
still works.

Mail is sent after the answer, in a task: whether an address has an account must not
show in how long a form takes to answer.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import aiosmtplib

from .settings import MailSettings

__all__ = ["Mail", "Mailer", "change_email_mail", "invite_mail", "reset_mail", "verify_mail"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Mail:
    """One message: to whom, about what, and the link it carries."""

    to: str
    subject: str
    text: str
    link: str


def verify_mail(to: str, link: str) -> Mail:
    return Mail(
        to,
        "Confirm your email address",
        f"Open this link within an hour to confirm your address and finish signing up:\n\n"
        f"{link}\n\nIf you did not sign up, ignore this message.\n",
        link,
    )


def change_email_mail(to: str, link: str) -> Mail:
    return Mail(
        to,
        "Confirm your new email address",
        f"Open this link within an hour to make this your account's address:\n\n{link}\n\n"
        "If you did not ask for this, ignore this message.\n",
        link,
    )


def reset_mail(to: str, link: str) -> Mail:
    return Mail(
        to,
        "Reset your password",
        f"Open this link within an hour to choose a new password:\n\n{link}\n\n"
        "If you did not ask for this, ignore this message: your password is unchanged.\n",
        link,
    )


def invite_mail(to: str, link: str) -> Mail:
    return Mail(
        to,
        "You are invited to the signing service",
        f"Open this link within an hour to choose a password and sign in:\n\n{link}\n",
        link,
    )


class Mailer:
    """Sends `Mail` through SMTP, or logs its link when no server is configured."""

    def __init__(self, settings: MailSettings) -> None:
        self.settings = settings
        self._tasks: set[asyncio.Task[bool]] = set()

    @property
    def configured(self) -> bool:
        return bool(self.settings.url.get_secret_value())

    async def send(self, mail: Mail) -> bool:
        """Hand `mail` over now; False (and one log line) when that failed."""
        url = self.settings.url.get_secret_value()
        if not url:
            log.warning(
                "no SIGNER_SMTP_URL: mail not sent; its link is: %s (to %s, %s)",
                mail.link,
                mail.to,
                mail.subject,
            )
            return True
        message = EmailMessage()
        message["From"] = self.settings.sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message.set_content(mail.text)
        parts = urlsplit(url)
        implicit_tls = parts.scheme == "smtps"
        try:
            await aiosmtplib.send(
                message,
                hostname=parts.hostname or "localhost",
                port=parts.port or (465 if implicit_tls else 25),
                username=unquote(parts.username) if parts.username else None,
                password=unquote(parts.password) if parts.password else None,
                use_tls=implicit_tls,
                timeout=self.settings.timeout,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            log.error("mail to %s not sent: %s", mail.to, error)
            return False
        return True

    def send_later(self, mail: Mail) -> None:
        """Send `mail` in a task, after the answer has gone."""
        task = asyncio.create_task(self.send(mail), name="console-mail")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Wait for the mail still being sent (within its timeout)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self.settings.timeout)
