"""The queue between the API and the signing workers: arq on Redis, woken by events."""

from .client import QueueFull, QueueUnavailable, SignOutcome, SignQueue
from .config import QueueSettings

__all__ = ["QueueFull", "QueueSettings", "QueueUnavailable", "SignOutcome", "SignQueue"]
