"""The producer side, used by the API: submit a request and await its signed answer.

Answers are pushed, not polled: each API process subscribes to its own results channel
and the worker publishes there the moment a job is done. arq's stored result is the
safety net when a message is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

from arq import ArqRedis, create_pool
from arq.connections import RedisSettings
from arq.jobs import Job

from signer import DeadlineExceeded, SignError, SignRequest, SignResult

from .config import QueueSettings
from .keys import JOB_FUNCTION, queue_name, results_channel, wake_key
from .payloads import decode_answer, encode_request

__all__ = ["QueueFull", "SignQueue"]


class QueueFull(SignError):
    """Too many jobs are waiting: answer 503 now rather than queue behind them."""

    code = "SERVICE_UNAVAILABLE"
    retryable = True


class SignQueue:
    """Submits signing jobs to the workers and awaits their answers."""

    def __init__(self, settings: QueueSettings | None = None) -> None:
        self.settings = settings or QueueSettings()
        self.instance = uuid.uuid4().hex
        self._queue = queue_name(self.settings.prefix)
        self._wake = wake_key(self.settings.prefix)
        self._channel = results_channel(self.settings.prefix, self.instance)
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._redis: ArqRedis | None = None
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._redis = await create_pool(
            RedisSettings.from_dsn(self.settings.redis_url), default_queue_name=self._queue
        )
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(self._channel)
        self._listener = asyncio.create_task(self._listen(pubsub), name="signer-results")

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._redis is not None:
            await self._redis.aclose()

    @property
    def redis(self) -> ArqRedis:
        assert self._redis is not None, "SignQueue.start() first"
        return self._redis

    async def depth(self) -> int:
        """Jobs waiting in the queue."""
        return int(await self.redis.zcard(self._queue))

    async def sign(self, request: SignRequest) -> SignResult:
        """Sign `request` on a worker; raises `QueueFull`, `DeadlineExceeded` or its error."""
        now = time.time()
        latest = now + self.settings.max_deadline
        deadline = min(request.deadline or now + self.settings.default_deadline, latest)
        if await self.depth() >= self.settings.max_depth:
            raise QueueFull(f"more than {self.settings.max_depth} requests are waiting")
        job_id = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[job_id] = future
        try:
            job = await self.redis.enqueue_job(
                JOB_FUNCTION,
                encode_request(replace(request, deadline=deadline)),
                self._channel,
                _job_id=job_id,
                _expires=timedelta(seconds=max(deadline - time.time(), 0.001)),
            )
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.lpush(self._wake, "1")
                pipe.ltrim(self._wake, 0, self.settings.max_depth)  # no workers: stay bounded
                await pipe.execute()
            answer = await self._answer(future, job, deadline)
        finally:
            self._waiting.pop(job_id, None)
        result = decode_answer(answer)
        if isinstance(result, SignError):
            raise result
        return result

    async def _answer(
        self, future: asyncio.Future[dict[str, Any]], job: Job | None, deadline: float
    ) -> dict[str, Any]:
        try:
            async with asyncio.timeout(max(deadline - time.time(), 0)):
                return await future
        except TimeoutError:
            pass
        # The message may have been lost (a reconnect): the stored result still counts.
        if job is not None:
            info = await job.result_info()
            if info is not None and info.success and isinstance(info.result, dict):
                return info.result
        raise DeadlineExceeded("no worker signed the request before its deadline")

    async def _listen(self, pubsub: Any) -> None:
        async for message in pubsub.listen():
            if message.get("type") != "message":
                continue
            data = json.loads(message["data"])
            future = self._waiting.get(data.pop("job_id", ""))
            if future is not None and not future.done():
                future.set_result(data)
