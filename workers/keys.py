"""Every Redis key and channel the queue uses, in one place.

Jobs are stored the way arq stores them (a pickled job under `arq:job:<id>`, its try
count under `arq:retry:<id>`, the queue a sorted set of job ids by due time), so arq's
own tools can read them; what differs is how workers take and finish them (see
`workers.scripts`).
"""

from __future__ import annotations

from arq.constants import job_key_prefix, retry_key_prefix

__all__ = [
    "JOB_FUNCTION",
    "expected_of",
    "job_key",
    "leases_key",
    "queue_name",
    "results_channel",
    "retry_key",
    "supervisor_member",
    "supervisors_key",
    "wake_key",
    "workers_key",
]

JOB_FUNCTION = "sign"


def queue_name(prefix: str) -> str:
    """Jobs waiting for a worker: a sorted set of job ids by due time (ms), as in arq.

    Only waiting jobs are in it, so its size is the backlog KEDA's Redis scaler counts.
    """
    return f"{prefix}:queue"


def leases_key(prefix: str) -> str:
    """Jobs a worker holds: a sorted set of job ids scored by when the lease runs out (ms).

    A worker renews its leases while it works; a lease that runs out means the worker
    died, and the next look at the queue puts the job back in it.
    """
    return f"{prefix}:leases"


def job_key(job_id: str) -> str:
    """The pickled job, in arq's format; it expires at the job's deadline."""
    return f"{job_key_prefix}{job_id}"


def retry_key(job_id: str) -> str:
    """How many times a worker has taken the job (arq's try counter)."""
    return f"{retry_key_prefix}{job_id}"


def wake_key(prefix: str) -> str:
    """A list producers push to after enqueueing; idle workers block on it."""
    return f"{prefix}:wake"


def results_channel(prefix: str, instance: str) -> str:
    """The pub/sub channel an API process hears its results on."""
    return f"{prefix}:results:{instance}"


def workers_key(prefix: str) -> str:
    """A sorted set of worker ids scored by when each last said it was alive."""
    return f"{prefix}:workers"


def supervisors_key(prefix: str) -> str:
    """Worker processes each host means to run: a sorted set of `<supervisor id>:<count>`
    members scored by when one of its workers last said so (`/health` compares their sum
    with the workers alive)."""
    return f"{prefix}:supervisors"


def supervisor_member(supervisor_id: str, expected: int) -> str:
    """The member of `supervisors_key` saying `supervisor_id` runs `expected` workers."""
    return f"{supervisor_id}:{expected}"


def expected_of(member: str | bytes) -> int:
    """The count a `supervisor_member` carries (0 for one not of that shape)."""
    text = member.decode() if isinstance(member, bytes) else member
    count = text.rpartition(":")[2]
    return int(count) if count.isdigit() else 0
