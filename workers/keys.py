"""Every Redis key and channel the queue uses, in one place."""

from __future__ import annotations

__all__ = ["JOB_FUNCTION", "queue_name", "results_channel", "wake_key", "workers_key"]

JOB_FUNCTION = "sign"


def queue_name(prefix: str) -> str:
    """arq's queue: a sorted set of job ids by due time (what KEDA's Redis scaler counts)."""
    return f"{prefix}:queue"


def wake_key(prefix: str) -> str:
    """A list producers push to after enqueueing; idle workers block on it."""
    return f"{prefix}:wake"


def results_channel(prefix: str, instance: str) -> str:
    """The pub/sub channel an API process hears its results on."""
    return f"{prefix}:results:{instance}"


def workers_key(prefix: str) -> str:
    """A sorted set of worker ids scored by when each last said it was alive."""
    return f"{prefix}:workers"
