"""The console: the web app where people sign in, make keys and watch their usage and
errors, and where operators run the service. An aiohttp sub-app (`console.app`) that the
service mounts beside the API; its data is read and written through `accounts/`."""

from .app import console_app, mount_console
from .settings import ConsoleSettings, MailSettings

__all__ = ["ConsoleSettings", "MailSettings", "console_app", "mount_console"]
