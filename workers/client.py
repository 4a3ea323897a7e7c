"""The producer side, used by the API: submit a request and await its signed answer.

Answers are pushed, not polled: each API process subscribes to its own results channel
and the worker publishes there the moment a job is done. A submission is one round trip
(`QueueScripts.enqueue`: the depth check, the job, its place in the queue and the wake-up
together). An answer lost on the way (the subscription reconnecting) ends in
`DeadlineExceeded` at the request's deadline, as a worker that never answers does.

Redis going away never hangs a request nor the process: every command on the request
path is bounded (`QueueSettings.redis_timeout`, and the request's deadline), a failure
answers `QueueUnavailable` with a plain message (the detail, Redis's address included,
goes to the log once per `OUTAGE_LOG_SECONDS`, not per request), and the listener backs
off between tries to subscribe again, awaiting a sleep on every turn that heard nothing,
so the event loop always runs other work (routes, SIGTERM). While it is not subscribed,
`listening` is false.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
import structlog
from arq.jobs import serialize_job
from redis.asyncio import Redis
from redis.exceptions import RedisError
from structlog.typing import FilteringBoundLogger

from signer import DeadlineExceeded, SignError, SignRequest, SignResult

from .config import HEARTBEAT_SECONDS, QueueSettings
from .keys import JOB_FUNCTION, expected_of, results_channel, supervisors_key, workers_key
from .payloads import decode_answer, encode_request
from .scripts import QueueScripts

log: FilteringBoundLogger = structlog.get_logger("workers.client")

# Longest wait between two tries to hear answers again, seconds: answers are heard at most
# this long after Redis is back.
MAX_RESUBSCRIBE_BACKOFF = 1.0
LISTEN_POLL = 1.0  # seconds one wait for a message lasts before the listener looks again
EARLY_RETURN_PAUSE = 0.05  # a wait that came back empty at once sleeps this (never spins)
OUTAGE_LOG_SECONDS = 10.0  # one log line per this long for each kind of Redis failure
UNAVAILABLE_MESSAGE = "the signing queue is unavailable; try again shortly"

__all__ = ["QueueFull", "QueueState", "QueueUnavailable", "SignOutcome", "SignQueue"]


class QueueFull(SignError):
    """Too many jobs are waiting: answer 503 now rather than queue behind them."""

    code = "SERVICE_UNAVAILABLE"
    retryable = True


class QueueUnavailable(SignError):
    """Redis could not take the job (the message never says why: that is logged)."""

    code = "SERVICE_UNAVAILABLE"
    retryable = True


class _OutageLog:
    """Logs a Redis failure of each kind once per `OUTAGE_LOG_SECONDS`, with how many
    were left out since, so an outage under load is a few lines rather than one per
    request."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._left_out: dict[str, int] = {}

    def report(self, what: str, error: BaseException) -> None:
        now = time.monotonic()
        if now - self._last.get(what, -OUTAGE_LOG_SECONDS) < OUTAGE_LOG_SECONDS:
            self._left_out[what] = self._left_out.get(what, 0) + 1
            return
        self._last[what] = now
        log.warning(
            what,
            error=str(error) or type(error).__name__,
            error_type=type(error).__name__,
            repeats_not_logged=self._left_out.pop(what, 0),
        )


@dataclass(frozen=True, slots=True)
class SignOutcome:
    """A request's result or error, with where and how long it waited (for usage rows)."""

    result: SignResult | SignError
    worker_id: str | None = None  # None: no worker answered
    queue_wait_ms: float | None = None


@dataclass(frozen=True, slots=True)
class QueueState:
    """The queue's depth and the workers alive, read together (for health and gauges)."""

    ready: int  # jobs waiting for a worker
    leased: int  # jobs a worker holds
    workers: int  # workers seen alive within three heartbeats
    expected: int = 0  # workers their supervisors, seen within three heartbeats, mean to run

    @property
    def jobs(self) -> int:
        """Every job not yet answered: waiting plus held."""
        return self.ready + self.leased


@dataclass(frozen=True, slots=True)
class _Delivery:
    answer: dict[str, Any]
    worker_id: str | None
    queue_wait_ms: float | None


@dataclass(eq=False)
class _Pending:
    request: SignRequest
    request_id: str
    future: asyncio.Future[_Delivery] = field(init=False)


class SignQueue:
    """Submits signing jobs to the workers and awaits their answers."""

    def __init__(self, settings: QueueSettings | None = None) -> None:
        self.settings = settings or QueueSettings.model_construct()
        self.instance = uuid.uuid4().hex
        self._channel = results_channel(self.settings.prefix, self.instance)
        self._workers = workers_key(self.settings.prefix)
        self._supervisors = supervisors_key(self.settings.prefix)
        self._subscribed = False
        self._outages = _OutageLog()
        self._waiting: dict[str, asyncio.Future[_Delivery]] = {}
        self._batch: list[_Pending] = []
        self._submissions: set[asyncio.Task[None]] = set()
        self._open_jobs: dict[str, asyncio.TimerHandle] = {}
        self._flush_scheduled = False
        self.jobs_submitted = 0
        self.requests_submitted = 0
        self._redis: Redis | None = None
        self._scripts: QueueScripts | None = None
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # Bounded reads and connects: the rate limiter shares this client, so no command
        # on the request path waits on a Redis that is away for longer than this.
        self._redis = Redis.from_url(
            self.settings.redis_url,
            socket_keepalive=True,
            socket_timeout=self.settings.redis_timeout,
            socket_connect_timeout=self.settings.redis_timeout,
        )
        self._scripts = QueueScripts(self._redis, self.settings.prefix)
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(self._channel)  # subscribed before the first job is sent
        self._subscribed = True
        self._listener = asyncio.create_task(self._listen(pubsub), name="signer-results")

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        if self._redis is not None:
            await self._redis.aclose()

    @property
    def listening(self) -> bool:
        """Whether answers can arrive: the results listener runs and is subscribed."""
        return self._subscribed and self._listener is not None and not self._listener.done()

    @property
    def redis(self) -> Redis:
        assert self._redis is not None, "SignQueue.start() first"
        return self._redis

    @property
    def scripts(self) -> QueueScripts:
        assert self._scripts is not None, "SignQueue.start() first"
        return self._scripts

    async def workers_alive(self) -> int:
        """Workers that said they were alive within the last three heartbeats."""
        since = time.time() - 3 * HEARTBEAT_SECONDS
        return int(await self.redis.zcount(self._workers, since, "+inf"))

    async def depth(self) -> int:
        """Jobs waiting for a worker (not those being signed)."""
        return int(await self.redis.zcard(self.scripts.queue))

    async def state(self) -> QueueState:
        """Jobs waiting, jobs held and workers alive: one round trip, off the hot path."""
        since = time.time() - 3 * HEARTBEAT_SECONDS
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(self.scripts.queue)
            pipe.zcard(self.scripts.leases)
            pipe.zcount(self._workers, since, "+inf")
            pipe.zrangebyscore(self._supervisors, since, "+inf")
            ready, leased, workers, supervisors = await pipe.execute()
        expected = sum(expected_of(member) for member in supervisors)
        return QueueState(int(ready), int(leased), int(workers), expected)

    async def sign(self, request: SignRequest) -> SignResult:
        """Sign `request` on a worker; raises `QueueFull`, `DeadlineExceeded` or its error."""
        outcome = await self.submit(request)
        if isinstance(outcome.result, SignError):
            raise outcome.result
        return outcome.result

    async def submit(self, request: SignRequest) -> SignOutcome:
        """Sign `request` on a worker: its result or error, never raised, and its trace.

        Requests submitted in the same turn of the event loop travel as one job, so a
        busy API process sends batches and an idle one sends each request at once.
        """
        if not self.listening:
            # Its answer could not be heard (the listener is subscribing again): a 503
            # now rather than one at the deadline.
            return SignOutcome(QueueUnavailable(UNAVAILABLE_MESSAGE))
        now = time.time()
        latest = now + self.settings.max_deadline
        deadline = min(request.deadline or now + self.settings.default_deadline, latest)
        pending = _Pending(replace(request, deadline=deadline), uuid.uuid4().hex)
        pending.future = asyncio.get_running_loop().create_future()
        self._waiting[pending.request_id] = pending.future
        self._batch.append(pending)
        self._schedule_flush()
        try:
            delivery = await self._answer(pending, deadline)
        except SignError as error:
            return SignOutcome(error)
        finally:
            self._waiting.pop(pending.request_id, None)
            # Still waiting for a slot: nobody wants it signed now (see `_flush`).
            pending.future.cancel()
        return SignOutcome(
            decode_answer(delivery.answer), delivery.worker_id, delivery.queue_wait_ms
        )

    def _has_slot(self) -> bool:
        """Whether fewer than `max_inflight` jobs are out (each holds a timer until done)."""
        return len(self._open_jobs) < self.settings.max_inflight

    def _schedule_flush(self) -> None:
        # A free slot sends at the end of this loop turn; with every slot busy, requests
        # gather until a job comes back, so under load each job carries a big batch and
        # the queue's per-job cost is shared. An idle process sends each request at once.
        if self._batch and not self._flush_scheduled and self._has_slot():
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        # Requests whose callers gave up (deadline passed while every slot was busy) go
        # no further: signing them would only delay the live ones behind them.
        self._batch = [p for p in self._batch if not p.future.done()]
        while self._batch and self._has_slot():
            batch = self._batch[: self.settings.max_batch]
            del self._batch[: self.settings.max_batch]
            job_id = uuid.uuid4().hex
            deadline = max(p.request.deadline or 0.0 for p in batch)
            # Should the answer never come (a worker died), the slot frees at the deadline.
            delay = max(deadline - time.time(), 0) + 0.1
            self._open_jobs[job_id] = asyncio.get_running_loop().call_later(
                delay, self._release, job_id
            )
            task = asyncio.create_task(self._submit(job_id, batch, deadline))
            self._submissions.add(task)
            task.add_done_callback(self._submissions.discard)

    def _release(self, job_id: str) -> None:
        timer = self._open_jobs.pop(job_id, None)
        if timer is None:
            return
        timer.cancel()
        self._schedule_flush()

    async def _submit(self, job_id: str, batch: list[_Pending], deadline: float) -> None:
        now = time.time()
        data = serialize_job(
            JOB_FUNCTION,
            ({p.request_id: encode_request(p.request) for p in batch}, self._channel),
            {},
            None,
            int(now * 1000),
        )
        try:
            # Bounded by the deadline too: an answer after it is useless anyway.
            async with asyncio.timeout(max(deadline - now, 0)):
                added = await self.scripts.enqueue(
                    job_id,
                    data,
                    due_ms=int(now * 1000),
                    ttl_ms=int((deadline - now) * 1000),
                    max_depth=self.settings.max_depth,
                )
            if not added:
                raise QueueFull(f"{self.settings.max_depth} jobs are waiting already")
        except Exception as error:
            if isinstance(error, SignError):
                failure: SignError = error
            else:
                self._outages.report("queue unavailable", error)
                failure = QueueUnavailable(UNAVAILABLE_MESSAGE)
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(failure)
            self._release(job_id)
            return
        self.jobs_submitted += 1
        self.requests_submitted += len(batch)

    async def _answer(self, pending: _Pending, deadline: float) -> _Delivery:
        try:
            async with asyncio.timeout(max(deadline - time.time(), 0)):
                return await pending.future
        except TimeoutError:
            raise DeadlineExceeded("no worker signed the request before its deadline") from None

    async def _listen(self, pubsub: Any) -> None:
        """Hear answers for as long as the process runs, subscribing again after Redis
        has gone away (answers published meanwhile are lost: their requests end at their
        deadlines, as when a worker dies). Every turn that heard nothing awaits a sleep
        or a bounded wait: the loop never keeps the event loop to itself."""
        backoff = 0.0
        while True:
            try:
                if pubsub is None:
                    pubsub = self.redis.pubsub()
                    await pubsub.subscribe(self._channel)
                    self._subscribed = True
                    log.info("results channel subscribed again")
                backoff = 0.0
                await self._hear(pubsub)
            except (RedisError, OSError, TimeoutError) as error:
                self._subscribed = False
                self._outages.report("results channel lost", error)
            self._subscribed = False
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            pubsub = None
            backoff = min(max(backoff * 2, 0.1), MAX_RESUBSCRIBE_BACKOFF)
            await asyncio.sleep(backoff)

    async def _hear(self, pubsub: Any) -> None:
        """Deliver what arrives on `pubsub` until it fails or stops being subscribed."""
        while pubsub.subscribed:
            started = time.monotonic()
            message = await pubsub.get_message(timeout=LISTEN_POLL)
            if message is not None:
                self._deliver(message)
            elif time.monotonic() - started < LISTEN_POLL / 2:
                await asyncio.sleep(EARLY_RETURN_PAUSE)  # came back at once: do not spin

    def _deliver(self, message: dict[str, Any]) -> None:
        if message.get("type") == "message":
            data = orjson.loads(message["data"])
            worker_id, queue_wait_ms = data.get("worker"), data.get("queue_wait_ms")
            for request_id, answer in data["answers"].items():
                future = self._waiting.get(request_id)
                if future is not None and not future.done():
                    future.set_result(_Delivery(answer, worker_id, queue_wait_ms))
            self._release(data["job"])
