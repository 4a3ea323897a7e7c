"""The pool of warm contexts in one Chromium, and the loop that feeds them batches.

Requests wait in one queue. Each context runs a loop that takes every request waiting
(up to `max_batch`) and signs them in one page call, so concurrent callers are batched
without anyone choosing a batch size. A context that fails is replaced and its requests
go back to the queue; a dead browser is relaunched. Callers see at most a delay.

No exception ends a context's loop: whatever goes wrong fails only the requests that
caused it (each request's page item is built on its own, so one bad request fails
alone), is logged, and the loop goes on. Should a loop task end anyway, the pool starts
another in its place and counts it (`PoolStats.loop_restarts`), so a pool never holds
contexts with nobody feeding them.

A Chromium crash is not its requests' fault: requests caught in one go back to the
queue without spending an attempt, and the crash is counted once, however many of its
pages reported it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import aiohttp

from ..config import SignerSettings
from ..engine import EngineOutput
from ..errors import DeadlineExceeded, EngineUnavailable, InvalidSignRequest, SignError
from ..models import Navigator
from ..profiles import Profile
from ..urls import PreparedRequest
from .chromium import Chromium
from .context import WarmContext, page_html
from .launch import resolve_executable
from .page_contract import PageFailed, PageItem

__all__ = ["ContextPool", "PoolStats"]

log = logging.getLogger(__name__)

_MAX_ATTEMPTS = 3  # a request survives two failed contexts before its caller hears of it
_REFILL_BACKOFF = 0.05  # first wait after a context failed to open; doubles up to the max
_REFILL_BACKOFF_MAX = 2.0
_IDLE_CHECK = 0.1  # seconds an idle loop waits before checking its context is still alive
_LOOP_ERROR_PAUSE = 0.05  # a loop that hit an unexpected error waits this before going on
# Seconds after a page failed before it is counted as a crash of its own: long enough for
# its browser's exit to be seen, when that was the cause (counted once there).
_CRASH_SETTLE = 1.0


@dataclass(eq=False)
class _Job:
    request: PreparedRequest
    future: asyncio.Future[EngineOutput]
    attempts: int = 0


@dataclass
class PoolStats:
    """Counters for dashboards and tests: plain numbers, read at any time (a metrics
    exporter turns them into gauges and counters; the pool knows nothing of it)."""

    contexts_configured: int = 0  # slots the settings ask for (not all may be open)
    contexts_free: int = 0  # context loops idle, waiting for work
    signatures: int = 0
    batches: int = 0
    recycles: int = 0
    browser_launches: int = 0
    browser_restarts: int = 0
    crashes: int = 0  # the browser, or a page while its browser lived, died or hung
    context_failures: int = 0
    loop_errors: int = 0  # unexpected errors a context loop caught and went on after
    loop_restarts: int = 0  # context loop tasks that ended and were started again
    retried_requests: int = 0
    expired_requests: int = 0
    last_batch_sizes: list[int] = field(default_factory=list)
    browser_pid: int | None = None  # the running Chromium's main process


class ContextPool:
    """One Chromium with `settings.contexts` warm contexts, each bound to a profile."""

    def __init__(self, settings: SignerSettings, profiles: Sequence[Profile]) -> None:
        if not profiles:
            raise ValueError("a pool needs at least one profile")
        self._settings = settings
        self._profiles = list(profiles)
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._slots: list[WarmContext | None] = [None] * settings.contexts
        self._tasks: list[asyncio.Task[None]] = []
        self._launch_lock = asyncio.Lock()
        self._browser: Chromium | None = None
        self._session: aiohttp.ClientSession | None = None
        self._html = page_html()
        self._executable = ""
        self._vendor_scripts = [
            Path(path).read_text(encoding="utf-8")
            for path in (settings.vendor_sdk_path, settings.vendor_acrawler_path)
            if path is not None
        ]
        self._opened = asyncio.Condition()
        self._marker = f"--signer-pool={secrets.token_hex(8)}"
        self._generation = 0
        self._idle = 0  # loops waiting for work
        self._closing = False
        # Browsers counted as lost: their exit and failed calls may each report it.
        self._counted_lost: weakref.WeakSet[Chromium] = weakref.WeakSet()
        self._backoff: dict[int, float] = {}  # slot -> next wait after a failed open
        self._presenting: dict[int, Profile] = {}  # slot -> its profile (opening or open)
        self.stats = PoolStats(contexts_configured=settings.contexts)

    # -- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Launch Chromium and open the first context; the others open in the background.

        The pool signs as soon as one context is warm; `wait_warm` waits for all of them.
        """
        try:
            self._executable = resolve_executable(self._settings.chromium_path)
            self._session = aiohttp.ClientSession()
            await self._open(0)
        except BaseException:
            await self.close()
            raise
        self._tasks = [self._start_loop(index) for index in range(len(self._slots))]

    async def wait_warm(self, count: int | None = None, timeout: float = 30.0) -> None:
        """Wait until `count` contexts (all by default) are open and healthy."""
        wanted = len(self._slots) if count is None else count
        async with asyncio.timeout(timeout), self._opened:
            await self._opened.wait_for(lambda: self.contexts_ready >= wanted)

    async def close(self) -> None:
        """Stop the loops, fail what still waits, and shut Chromium down."""
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if not job.future.done():
                job.future.set_exception(EngineUnavailable("the signer is shutting down"))
        # Together, and without disposing of contexts the browser's own close ends: a hung
        # browser makes each close wait for its timeouts.
        open_slots = [warm for warm in self._slots if warm is not None]
        self._slots = [None] * len(self._slots)
        await asyncio.gather(
            *(warm.close(dispose=False) for warm in open_slots), return_exceptions=True
        )
        if self._browser is not None:
            await self._browser.close()
            self._browser = None
        self.stats.browser_pid = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- requests -----------------------------------------------------------------------

    async def sign(self, requests: Sequence[PreparedRequest]) -> list[EngineOutput | SignError]:
        """Sign `requests`, each bounded by its own deadline."""
        if self._closing:
            raise EngineUnavailable("the signer is closed")
        loop = asyncio.get_running_loop()
        jobs = [_Job(request, loop.create_future()) for request in requests]
        for job in jobs:
            self._queue.put_nowait(job)
        if len(jobs) == 1:  # the common case: no gather, no extra task
            return [await self._await(jobs[0])]
        return list(await asyncio.gather(*(self._await(job) for job in jobs)))

    async def _await(self, job: _Job) -> EngineOutput | SignError:
        try:
            # `timeout_at` cancels the wait (and so the job's future, which the loops then
            # skip) without the extra task `wait_for` would create per request.
            async with asyncio.timeout_at(self._loop_deadline(job.request.deadline)):
                return await job.future
        except TimeoutError:
            self.stats.expired_requests += 1
            return DeadlineExceeded("the deadline passed before a browser context signed it")
        except SignError as error:
            return error

    @staticmethod
    def _loop_deadline(unix_deadline: float) -> float:
        return asyncio.get_running_loop().time() + (unix_deadline - time.time())

    @property
    def loops_alive(self) -> int:
        """Context loops running: 0 means nothing will sign what is queued."""
        return sum(1 for task in self._tasks if not task.done())

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    @property
    def contexts_ready(self) -> int:
        return sum(1 for warm in self._slots if warm is not None and not warm.broken)

    def contexts(self) -> list[WarmContext]:
        return [warm for warm in self._slots if warm is not None and not warm.broken]

    @property
    def executable(self) -> str:
        return self._executable

    @property
    def browser_pid(self) -> int | None:
        """The process id of this pool's Chromium (its main process), if running."""
        browser = self._browser
        return browser.pid if browser is not None and browser.connected else None

    @property
    def browser_version(self) -> str:
        return self._browser.version if self._browser is not None else ""

    # -- the loops ----------------------------------------------------------------------

    def _start_loop(self, index: int) -> asyncio.Task[None]:
        task = asyncio.create_task(self._run_slot(index), name=f"signer-context-{index}")
        task.add_done_callback(lambda done: self._loop_ended(index, done))
        return task

    def _loop_ended(self, index: int, task: asyncio.Task[None]) -> None:
        # `_run_slot` ends only when the pool closes; anything else is a bug of ours, and
        # the slot must not be left without a loop feeding it.
        if self._closing or index >= len(self._tasks) or self._tasks[index] is not task:
            return
        error = None if task.cancelled() else task.exception()
        log.error("context loop %d ended (%r); starting another", index, error)
        self.stats.loop_restarts += 1
        self._tasks[index] = self._start_loop(index)

    async def _run_slot(self, index: int) -> None:
        while not self._closing:
            taken: list[_Job] = []
            try:
                await self._serve_slot_once(index, taken)
            except asyncio.CancelledError:
                # Ended from outside: the loop that replaces it (or the close) has them.
                for job in taken:
                    if not job.future.done():
                        self._queue.put_nowait(job)
                raise
            except Exception:  # never let one failure end the loop
                self.stats.loop_errors += 1
                log.exception("context loop %d failed; going on", index)
                failure = SignError("the signer failed on this request; it has been logged")
                for job in taken:
                    if not job.future.done():
                        job.future.set_exception(failure)
                await asyncio.sleep(_LOOP_ERROR_PAUSE)

    async def _serve_slot_once(self, index: int, taken: list[_Job]) -> None:
        """One turn of a context's loop: (re)open its context, sign one batch; the jobs
        it takes are put in `taken` (for the caller to fail should this raise)."""
        settings = self._settings
        warm = self._slots[index]
        if warm is None or warm.broken:
            try:
                warm = await self._open(index)
            except Exception as error:
                log.warning("context %d could not be opened: %s", index, error)
                backoff = self._backoff.get(index, _REFILL_BACKOFF)
                self._backoff[index] = min(backoff * 2, _REFILL_BACKOFF_MAX)
                await asyncio.sleep(backoff)
                return
            self._backoff.pop(index, None)
        jobs = await self._take_batch(settings.max_batch)
        if jobs and warm.broken:
            # Lost while waiting (browser died): hand the work to a healthy context.
            for job in jobs:
                self._queue.put_nowait(job)
            return
        taken.extend(jobs)
        if jobs:
            await self._sign_on(warm, jobs)
        if warm.due_for_recycle(settings.recycle_after_signatures, settings.recycle_after_seconds):
            self.stats.recycles += 1
            warm.broken = True  # reopened at the top of the loop

    async def _take_batch(self, limit: int) -> list[_Job]:
        # The timeout only bounds how long a context that broke while idle stays broken.
        self._idle += 1
        self.stats.contexts_free = self._idle
        try:
            async with asyncio.timeout(_IDLE_CHECK):
                first = await self._queue.get()
        except TimeoutError:
            return []
        finally:
            self._idle -= 1
            self.stats.contexts_free = self._idle
        # Share a burst with the contexts still idle: their pages sign in parallel.
        share = -(-(self._queue.qsize() + 1) // (self._idle + 1))
        limit = max(1, min(limit, share))
        batch = [first]
        while len(batch) < limit and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        now = time.time()
        live = []
        for job in batch:
            if job.future.done():
                continue
            if job.request.deadline <= now:
                self.stats.expired_requests += 1
                job.future.set_exception(DeadlineExceeded("the deadline passed in the queue"))
                continue
            live.append(job)
        return live

    def _page_item(self, warm: WarmContext, request: PreparedRequest) -> tuple[Navigator, PageItem]:
        """What the page needs to sign `request`, and the navigator it signs as."""
        user_agent = request.user_agent or warm.navigator.user_agent
        navigator = warm.navigator.for_user_agent(user_agent)
        item: PageItem = {
            "query": request.query_for(navigator),
            "userAgent": user_agent,
            "msToken": request.ms_token,
            "includeVerifyFp": request.include_verify_fp,
        }
        if request.body:
            item["bodyBase64"] = base64.b64encode(request.body).decode()
        if self._vendor_scripts:
            item["url"] = request.url
        return navigator, item

    async def _sign_on(self, warm: WarmContext, jobs: list[_Job]) -> None:
        navigators = []
        items = []
        signable = []
        for job in jobs:
            try:
                navigator, item = self._page_item(warm, job.request)
            except Exception as error:  # this request alone cannot be signed
                log.warning("request not signable: %r", error)
                if not job.future.done():
                    job.future.set_exception(
                        InvalidSignRequest("request", f"cannot be signed ({type(error).__name__})")
                    )
                continue
            navigators.append(navigator)
            items.append(item)
            signable.append(job)
        jobs = signable
        if not jobs:
            return
        try:
            results = await warm.sign(items, self._settings.browser_call_timeout)
        except EngineUnavailable as error:
            warm.broken = True
            self.stats.context_failures += 1
            browser = warm.browser
            # A browser already replaced was counted when it was lost.
            crashed = browser is not self._browser
            if not crashed and not self._browser_alive(browser):
                crashed = True
                self._browser_lost(browser)  # counted once there, whoever reports it first
            elif not crashed:
                # A page that died or hung while its browser lived, unless the browser
                # turns out to be dying too (then `_browser_lost` counts it).
                asyncio.get_running_loop().call_later(
                    _CRASH_SETTLE, self._count_page_failure, browser
                )
            log.warning("context %s failed: %s", warm.slot, error)
            for job in jobs:
                self._retry_or_fail(job, error, spend_attempt=not crashed)
            return
        self.stats.batches += 1
        self.stats.signatures += len(jobs)
        sizes = self.stats.last_batch_sizes
        sizes.append(len(jobs))
        del sizes[:-64]
        for job, navigator, result in zip(jobs, navigators, results, strict=True):
            if job.future.done():
                continue
            if "error" in result:
                failed = cast(PageFailed, result)
                job.future.set_exception(SignError(f"the page could not sign: {failed['error']}"))
                continue
            job.future.set_result(
                EngineOutput(
                    query=result["query"],
                    x_bogus=result["xBogus"],
                    x_gnarly=result["xGnarly"],
                    x_tt_params=result["xttParams"],
                    verify_fp=result["verifyFp"],
                    timestamp=int(result["timestamp"]),
                    canvas=int(result["canvas"]),
                    user_agent=result["userAgent"],
                    signature=result.get("signature", ""),
                    navigator=navigator,
                    profile=warm.profile.id,
                    engine="browser-vendor"
                    if result.get("engineXBogus") == "vendor"
                    else "browser",
                )
            )

    def _retry_or_fail(self, job: _Job, error: SignError, *, spend_attempt: bool = True) -> None:
        if job.future.done():
            return
        # A crash of the whole browser is not the request's fault: it is tried again on
        # the relaunched one for as long as its deadline allows.
        job.attempts += int(spend_attempt)
        if job.attempts < _MAX_ATTEMPTS and job.request.deadline > time.time():
            self.stats.retried_requests += 1
            self._queue.put_nowait(job)
        else:
            job.future.set_exception(error)

    # -- browser and contexts -----------------------------------------------------------

    async def _open(self, index: int) -> WarmContext:
        """Open a fresh context for slot `index`, replacing (and closing) the old one."""
        old = self._slots[index]
        browser = await self._ensure_browser()
        assert self._session is not None
        self._generation += 1
        profile = self._profile_for(index)
        try:
            warm = await WarmContext.open(
                browser=browser,
                session=self._session,
                html=self._html,
                profile=profile,
                slot=f"{index}-{self._generation}",
                vendor_scripts=self._vendor_scripts,
                timeout=self._settings.launch_timeout,
            )
        except Exception:
            if not self._browser_alive(browser):
                self._browser_lost(browser)
            raise
        self._slots[index] = warm
        async with self._opened:
            self._opened.notify_all()
        if old is not None:
            asyncio.create_task(old.close())  # noqa: RUF006 - fire and forget
        return warm

    def _profile_for(self, index: int) -> Profile:
        """The profile slot `index` presents next: the index-th at first; on each reopen
        (a recycle, a failure) the next in the list that no other slot presents or is
        opening with, so a pool with fewer slots than profiles presents every profile in
        turn. Chosen before the open's first await: two slots reopening at once differ."""
        count = len(self._profiles)
        current = self._presenting.get(index)
        if current is None:
            chosen = self._profiles[index % count]
        else:
            held = {profile.id for i, profile in self._presenting.items() if i != index}
            start = self._profiles.index(current)
            following = (self._profiles[(start + step) % count] for step in range(1, count + 1))
            # Every other profile held (more slots than profiles): keep this slot's own.
            chosen = next((p for p in following if p.id not in held), current)
        self._presenting[index] = chosen
        return chosen

    async def _ensure_browser(self) -> Chromium:
        async with self._launch_lock:
            browser = self._browser
            if browser is not None and self._browser_alive(browser):
                return browser
            relaunch = browser is not None
            if browser is not None:
                # Dead before its exit or lost socket was heard (a zombie): lost all the same.
                self._browser_lost(browser)
                self.stats.browser_restarts += 1
                await browser.close()
            assert self._session is not None
            browser = await Chromium.launch(
                self._executable,
                self._session,
                self._settings.launch_timeout,
                self._marker,
                self._settings.chromium_args,
            )
            browser.on_lost(self._browser_lost)
            self.stats.browser_launches += 1
            self.stats.browser_pid = browser.pid
            self._browser = browser
            if relaunch:
                log.warning(
                    "Chromium relaunched as pid %d (restart %d)",
                    browser.pid,
                    self.stats.browser_restarts,
                )
            return browser

    @staticmethod
    def _browser_alive(browser: Chromium) -> bool:
        """Whether `browser` still runs: connected, and its main process not dead (a
        SIGKILLed Chromium fails its pages' calls before its exit is seen)."""
        return browser.connected and _process_alive(browser.pid)

    def _count_page_failure(self, browser: Chromium) -> None:
        if not self._closing and browser is self._browser and browser.connected:
            self.stats.crashes += 1

    def _browser_lost(self, browser: Chromium) -> None:
        # Every page of that browser is gone: fail their calls now rather than at timeout.
        if self._closing:
            return
        if browser not in self._counted_lost:
            self._counted_lost.add(browser)
            self.stats.crashes += 1
            log.warning("Chromium %d lost; relaunching", browser.pid)
        for warm in self._slots:
            if warm is not None and warm.browser is browser:
                warm.broken = True
                warm.channel.fail("Chromium disconnected")


def _process_alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    # The state follows the command name in parentheses, which may itself hold spaces.
    return stat.rsplit(")", 1)[-1].split()[:1] not in (["Z"], ["X"])
