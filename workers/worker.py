"""The worker process: arq's worker, woken by events instead of polling every 0.5 s.

arq's own loop sleeps `poll_delay` between looks at the queue: 502 ms p50 for a trivial
job measured here. This worker blocks on a wake-up list that producers push to right
after enqueueing, so a job starts as soon as it exists; the block times out after
`safety_poll` seconds, so a lost wake-up costs at most that, and an idle worker sends
Redis about one command a second.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, cast

from arq import Worker
from arq.connections import RedisSettings
from arq.worker import func

from signer import DeadlineExceeded, Signer, SignError, SignerSettings, SignRequest

from .config import HEARTBEAT_SECONDS, QueueSettings
from .keys import JOB_FUNCTION, queue_name, wake_key, workers_key
from .payloads import decode_request, encode_error, encode_result

__all__ = ["EventWorker", "build_worker", "sign_job"]


async def sign_job(
    ctx: dict[str, Any], payloads: dict[str, dict[str, Any]], reply_to: str
) -> dict[str, dict[str, Any]]:
    """Sign a batch of requests (id -> request) and push every answer to the caller at once.

    A request whose deadline has passed is answered unsigned: its signature would be
    useless by the time it arrived.
    """
    signer: Signer = ctx["signer"]
    answers: dict[str, dict[str, Any]] = {}
    live: dict[str, SignRequest] = {}
    now = time.time()
    for request_id, payload in payloads.items():
        request = decode_request(payload)
        if request.deadline is not None and request.deadline <= now:
            answers[request_id] = encode_error(
                DeadlineExceeded("the deadline passed before a worker took it")
            )
        else:
            live[request_id] = request
    if live:
        results = await signer.sign_many(list(live.values()))
        for request_id, result in zip(live, results, strict=True):
            answers[request_id] = (
                encode_error(result) if isinstance(result, SignError) else encode_result(result)
            )
    await ctx["redis"].publish(reply_to, json.dumps({"job": ctx["job_id"], "answers": answers}))
    return answers


class EventWorker(Worker):
    """An arq worker whose wait between looks at the queue ends when a job arrives."""

    def __init__(self, *, wake: str, registry: str, safety_poll: float, **kwargs: Any) -> None:
        # arq's loop then never sleeps on its own; our `_poll_iteration` does the waiting.
        super().__init__(poll_delay=0, **kwargs)
        self._wake = wake
        self._registry = registry
        self._safety_poll = safety_poll
        self.worker_id = uuid.uuid4().hex
        self._last_beat = 0.0

    async def drain(self, timeout: float) -> None:
        """Stop taking jobs and wait (up to `timeout`) for those in hand to finish."""
        self.allow_pick_jobs = False
        if self._pool is not None:  # it may be stopped before it ever connected
            await self.pool.zrem(self._registry, self.worker_id)
        pending = [task for task in self.tasks.values() if not task.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    async def _poll_iteration(self) -> None:
        # At capacity, arq's `start_jobs` itself waits for a free slot before taking more.
        await super()._poll_iteration()
        now = time.time()
        if now - self._last_beat >= HEARTBEAT_SECONDS and self.allow_pick_jobs:
            self._last_beat = now
            await self.pool.zadd(self._registry, {self.worker_id: now})
        # One token per enqueued job: a burst wakes as many workers as it needs.
        # redis-py types the timeout as int; Redis itself takes fractional seconds.
        blpop = cast(Callable[..., Awaitable[Any]], self.pool.blpop)
        if await blpop([self._wake], timeout=self._safety_poll):
            # Take the tokens of the jobs this worker can start now as well: each look at
            # the queue scans every job still in it, so one look per job would be
            # quadratic in a burst.
            free = self.max_jobs - self.job_counter - 1
            if free > 0:
                lpop = cast(Callable[..., Awaitable[Any]], self.pool.lpop)
                await lpop(self._wake, free)


def build_worker(queue: QueueSettings, signer_settings: SignerSettings) -> EventWorker:
    """A worker for `queue` that signs with its own `Signer`."""

    async def startup(ctx: dict[str, Any]) -> None:
        signer = Signer(signer_settings)
        await signer.start()
        ctx["signer"] = signer

    async def shutdown(ctx: dict[str, Any]) -> None:
        signer: Signer | None = ctx.get("signer")
        if signer is not None:
            await signer.close()

    return EventWorker(
        wake=wake_key(queue.prefix),
        registry=workers_key(queue.prefix),
        safety_poll=queue.safety_poll,
        functions=[func(sign_job, name=JOB_FUNCTION, max_tries=2, timeout=queue.max_deadline)],
        redis_settings=RedisSettings.from_dsn(queue.redis_url),
        queue_name=queue_name(queue.prefix),
        on_startup=startup,
        on_shutdown=shutdown,
        max_jobs=queue.max_jobs,
        keep_result=60,
        handle_signals=False,
    )
