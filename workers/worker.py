"""The worker process: takes signing jobs the moment they arrive and signs them in batches.

arq's own loop sleeps `poll_delay` between looks at the queue (502 ms p50 for a trivial
job measured here) and spends about 30 Redis commands per job. This worker blocks on a
wake-up list that producers push to when they enqueue, so a job starts as soon as it
exists, and takes, renews and finishes jobs with the scripts in `workers.scripts`: three
round trips per job. The block times out after `safety_poll` seconds, so a lost wake-up
costs at most that and an idle worker sends Redis about two commands a second.

A worker that dies holding jobs stops renewing their leases; the next worker to look at
the queue puts them back, and one of them signs them within the deadline if there is
time left (a job is tried at most `max_tries` times).

Each job's answers are counted in `WorkerMetrics` (see `workers.metrics`); the worker logs
its start, drain and stop, and jobs that fail as a whole.

A worker says it is alive only while its signer can sign (a browser signer with no
context loop left cannot): otherwise it leaves the registry and takes no jobs, so
`/health` counts it gone. Each beat also says how many workers its supervisor runs
(`keys.supervisors_key`), so `/health` can tell a dead worker from a smaller deployment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, cast

import orjson
import structlog
from arq.jobs import deserialize_job_raw
from redis.asyncio import Redis
from redis.exceptions import RedisError
from structlog.typing import FilteringBoundLogger

from signer import DeadlineExceeded, Signer, SignError, SignerSettings, SignRequest

from .config import HEARTBEAT_SECONDS, QueueSettings
from .keys import JOB_FUNCTION, supervisor_member, supervisors_key, workers_key
from .metrics import WorkerMetrics
from .payloads import decode_request, encode_error, encode_result
from .scripts import QueueScripts, TakenJob

__all__ = ["QueueWorker", "build_worker", "sign_payloads"]

MAX_TRIES = 2  # a job that killed two workers is not handed to a third
# Longest wait between two looks at a Redis that is away, seconds: signing resumes at most
# this long after Redis is back.
MAX_BACKOFF = 1.0
REDIS_CONNECT_TIMEOUT = 1.0  # seconds to connect to Redis before the loop backs off
REDIS_READ_MARGIN = 5.0  # seconds a Redis reply may take beyond a blocking call's own wait

log: FilteringBoundLogger = structlog.get_logger("workers.worker")


async def sign_payloads(
    signer: Signer, payloads: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Sign a batch of requests (id -> request): every id gets an answer.

    A request whose deadline has passed is answered unsigned: its signature would be
    useless by the time it arrived.
    """
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
    return answers


def _encoded(message: dict[str, Any]) -> bytes:
    """An answer message as JSON: orjson, else the standard encoder for what orjson
    refuses (an integer beyond 64 bits, a lone surrogate), so it is always sent."""
    try:
        return orjson.dumps(message)
    except TypeError:
        return json.dumps(message).encode()


class QueueWorker:
    """One worker process's loop: wait for a wake-up, take jobs, sign, answer."""

    def __init__(
        self,
        queue: QueueSettings,
        signer: Signer,
        *,
        supervisor_id: str | None = None,
        expected: int = 1,
        restarts: int = 0,
    ) -> None:
        """`supervisor_id` names the `signer worker` running `expected` workers, this one
        among them (this worker alone by default); `restarts` is how many times its
        supervisor has started this worker's slot again (for the metric)."""
        self.settings = queue
        self.signer = signer
        self.worker_id = uuid.uuid4().hex
        self.jobs_done = 0
        self._registry = workers_key(queue.prefix)
        self._supervisors = supervisors_key(queue.prefix)
        self._supervisor = supervisor_member(supervisor_id or self.worker_id, expected)
        self._registered = False
        self._redis: Redis | None = None
        self._scripts: QueueScripts | None = None
        self._taking = True
        self._in_hand: dict[str, asyncio.Task[None]] = {}
        self._slot_free = asyncio.Event()
        self._loop_done = asyncio.Event()
        self._upkeep: asyncio.Task[None] | None = None
        self._lease_ms = int(queue.lease * 1000)
        self.metrics = WorkerMetrics(
            signer,
            worker_id=self.worker_id,
            max_jobs=queue.max_jobs,
            jobs_in_hand=lambda: len(self._in_hand),
            restarts=restarts,
        )

    @property
    def scripts(self) -> QueueScripts:
        assert self._scripts is not None, "QueueWorker.run() first"
        return self._scripts

    @property
    def ready(self) -> bool:
        """Whether the signer can sign: a browser signer needs a context loop alive (an
        engine without loops does not report them, and is ready once started)."""
        loops = self.signer.stats().loops_alive
        return loops is None or loops > 0

    async def run(self) -> None:
        """Start the browser, then take jobs until `drain()` is called.

        Redis going away does not end the loop: it waits (backing off up to a few
        seconds) and carries on when Redis is back; leases held meanwhile may run out,
        and those jobs are then signed again by whoever takes them first.
        """
        # A bound on every socket read: a half-open connection fails instead of hanging
        # the loop in BLPOP forever (which blocks for at most `safety_poll`).
        self._redis = Redis.from_url(
            self.settings.redis_url,
            socket_keepalive=True,
            socket_timeout=self.settings.safety_poll + REDIS_READ_MARGIN,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
        )
        self._scripts = QueueScripts(self._redis, self.settings.prefix)
        try:
            await self.signer.start()
            await self._beat()
            log.info(
                "worker started",
                worker_id=self.worker_id,
                engine=self.signer.engine.name,
                max_jobs=self.settings.max_jobs,
            )
            self._upkeep = asyncio.create_task(self._keep_alive(), name="worker-upkeep")
            backoff = 0.0
            while self._taking:
                try:
                    await self._take_once()
                    backoff = 0.0
                except (RedisError, OSError) as error:
                    backoff = min(max(backoff * 2, 0.1), MAX_BACKOFF)
                    log.warning("redis unavailable", error=str(error), retry_in=backoff)
                    await asyncio.sleep(backoff)
        finally:
            self._loop_done.set()

    async def _take_once(self) -> None:
        """Wait for a wake-up (or the safety poll) and start the jobs there are room for."""
        assert self._redis is not None
        if not self.ready:  # jobs taken now would only wait for their deadlines here
            await asyncio.sleep(self.settings.safety_poll)
            return
        free = self.settings.max_jobs - len(self._in_hand)
        if free <= 0:
            self._slot_free.clear()
            await self._slot_free.wait()
            return
        # redis-py types the timeout as int; Redis 6 and later take fractional seconds.
        blpop = cast(Callable[..., Awaitable[Any]], self._redis.blpop)
        woken = await blpop([self.scripts.wake], timeout=self.settings.safety_poll)
        if not self._taking:
            if woken:  # not ours to take any more: hand the wake-up to another worker
                lpush = cast(Callable[..., Awaitable[Any]], self._redis.lpush)
                await lpush(self.scripts.wake, woken[1])
            return
        jobs = await self.scripts.take(
            limit=free, lease_ms=self._lease_ms, tokens_consumed=int(bool(woken))
        )
        taken_ms = int(time.time() * 1000)
        for job in jobs:
            if job.job_id in self._in_hand:
                # Our own lease ran out (Redis was away) and we took the job back: the
                # task in hand still answers it.
                continue
            task = asyncio.create_task(self._work(job, taken_ms), name=job.job_id)
            self._in_hand[job.job_id] = task
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        if self._in_hand.get(task.get_name()) is task:
            del self._in_hand[task.get_name()]
        self.jobs_done += 1
        self._slot_free.set()

    async def _work(self, job: TakenJob, taken_ms: int) -> None:
        reply_to = ""
        payloads: dict[str, dict[str, Any]] = {}
        answers: dict[str, dict[str, Any]] = {}
        queue_wait_ms = 0.0
        seconds: float | None = None
        try:
            function, args, _kwargs, _tries, enqueued_ms = deserialize_job_raw(job.data)
            payloads, reply_to = args
            queue_wait_ms = max(taken_ms - enqueued_ms, 0)
            if function != JOB_FUNCTION:
                raise SignError(f"unknown job function {function!r}")
            if job.tries > MAX_TRIES:
                raise SignError(f"the job was taken {MAX_TRIES} times and never finished")
            started = time.perf_counter()
            async with asyncio.timeout(self.settings.max_deadline):
                answers = await sign_payloads(self.signer, payloads)
            seconds = time.perf_counter() - started
        except Exception as error:  # every caller gets an answer, whatever went wrong
            failure = error if isinstance(error, SignError) else SignError(repr(error))
            log.warning(
                "job failed",
                job_id=job.job_id,
                tries=job.tries,
                requests=len(payloads),
                error=failure.message,
                error_type=type(error).__name__,
            )
            if not reply_to:
                await self._forget(job.job_id)
                return
            answers = {request_id: encode_error(failure) for request_id in payloads}
        message = {
            "job": job.job_id,
            "worker": self.worker_id,
            "queue_wait_ms": queue_wait_ms,
            "answers": answers,
        }
        try:
            await self.scripts.finish(job.job_id, reply_to, _encoded(message))
        except (RedisError, OSError) as error:
            # The lease runs out and another take signs the job again.
            log.warning("answer not delivered", job_id=job.job_id, error=str(error))
            return
        self.metrics.observe_job(answers, seconds)  # after the answer: it waits for nothing

    async def _forget(self, job_id: str) -> None:
        # An unreadable job has nobody to answer: end its lease so it is not retried.
        with contextlib.suppress(RedisError, OSError):
            await self.scripts.finish(job_id, None, "")

    async def _beat(self) -> None:
        """Say this worker is alive (and how many its supervisor runs); one that cannot
        sign says nothing and leaves the registry instead."""
        assert self._redis is not None
        if not self.ready:
            if self._registered:
                log.error("signer has no live context loop; leaving", worker_id=self.worker_id)
                await self._redis.zrem(self._registry, self.worker_id)
                self._registered = False
            return
        now = time.time()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self._registry, {self.worker_id: now})
            pipe.zadd(self._supervisors, {self._supervisor: now})
            await pipe.execute()
        self._registered = True

    async def _keep_alive(self) -> None:
        """Say this worker is alive; while it holds jobs, renew their leases in time."""
        renew_every = self.settings.lease / 4
        last_beat = time.monotonic()
        while True:
            # Idle, the heartbeat's pace; a job may arrive meanwhile, so never longer
            # than its lease allows.
            idle = min(renew_every, HEARTBEAT_SECONDS / 3)
            await asyncio.sleep(renew_every if self._in_hand else idle)
            if self._in_hand:
                with contextlib.suppress(Exception):  # the next round tries again
                    await self.scripts.renew(list(self._in_hand), self._lease_ms)
            # A signer that stopped being able to sign leaves the registry at once.
            due = time.monotonic() - last_beat >= HEARTBEAT_SECONDS or (
                self._registered and not self.ready
            )
            if self._taking and due:
                last_beat = time.monotonic()
                with contextlib.suppress(Exception):
                    await self._beat()

    async def drain(self, timeout: float) -> None:
        """Stop taking jobs and wait (up to `timeout`) for those in hand to finish."""
        self._taking = False
        self._slot_free.set()
        if self._redis is not None:  # it may be stopped before it ever connected
            with contextlib.suppress(Exception):
                # The supervisor's count goes too: should only this worker be stopping,
                # its siblings say it again at their next beat.
                async with self._redis.pipeline(transaction=False) as pipe:
                    pipe.zrem(self._registry, self.worker_id)
                    pipe.zrem(self._supervisors, self._supervisor)
                    await pipe.execute()
            # A take in flight may still hand us jobs: let the loop end first (it wakes
            # within `safety_poll`), so that those are waited for too.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.safety_poll + REDIS_READ_MARGIN):
                    await self._loop_done.wait()
        pending = list(self._in_hand.values())
        log.info("worker draining", worker_id=self.worker_id, jobs_in_hand=len(pending))
        if pending:
            _, unfinished = await asyncio.wait(pending, timeout=timeout)
            if unfinished:
                log.warning(
                    "worker drained with jobs unfinished",
                    worker_id=self.worker_id,
                    jobs_unfinished=len(unfinished),
                )

    async def close(self) -> None:
        """Stop the upkeep, close the browser and the Redis connections."""
        if self._upkeep is not None:
            self._upkeep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._upkeep
        await self.signer.close()
        if self._redis is not None:
            await self._redis.aclose()
        log.info("worker stopped", worker_id=self.worker_id, jobs_done=self.jobs_done)


def build_worker(
    queue: QueueSettings,
    signer_settings: SignerSettings,
    *,
    supervisor_id: str | None = None,
    expected: int = 1,
    restarts: int = 0,
) -> QueueWorker:
    """A worker for `queue` that signs with its own `Signer` (see `QueueWorker`)."""
    return QueueWorker(
        queue,
        Signer(signer_settings),
        supervisor_id=supervisor_id,
        expected=expected,
        restarts=restarts,
    )
