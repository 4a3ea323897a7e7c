"""`Signer`: the one entry point that turns unsigned TikTok URLs into signed ones."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from .config import EngineName, SignerSettings
from .engine import EngineOutput, EngineStats, SigningEngine
from .errors import DeadlineExceeded, InvalidSignRequest, SignError
from .models import SignRequest, SignResult
from .native import NativeEngine
from .selfcheck import check_outputs
from .urls import PreparedRequest, prepare_request

__all__ = ["Signer", "SignerCounters"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SignerCounters:
    """What a `Signer` has done and holds, read at any moment (for a metrics exporter).

    The counts only grow; the native engine has no contexts and no browser.
    """

    engine: str
    contexts_free: int  # warm contexts idle, waiting for work
    contexts_ready: int  # warm contexts open and healthy (not the configured slots)
    context_recycles: int
    browser_restarts: int
    browser_crashes: int
    selfcheck_failures: int
    browser_pid: int | None


def _make_engine(name: EngineName, settings: SignerSettings) -> SigningEngine:
    if name == "native":
        return NativeEngine(settings)
    # Imported here so the native engine works where Playwright is not installed.
    from .browser import BrowserEngine

    return BrowserEngine(settings)


class Signer:
    """Validates requests, has an engine sign them, and returns only what checks out.

    Use as `async with Signer() as signer: await signer.sign(SignRequest(url))`.
    """

    def __init__(
        self,
        settings: SignerSettings | None = None,
        *,
        engine: EngineName | None = None,
    ) -> None:
        self.settings = settings or SignerSettings()
        self.engine: SigningEngine = _make_engine(engine or self.settings.engine, self.settings)
        self.selfcheck_failures = 0

    async def start(self) -> None:
        await self.engine.start()

    async def close(self) -> None:
        await self.engine.close()

    async def __aenter__(self) -> Signer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def sign(self, request: SignRequest) -> SignResult:
        """Sign one request; raises a `SignError` subclass when it cannot be signed."""
        (result,) = await self.sign_many([request])
        if isinstance(result, SignError):
            raise result
        return result

    async def sign_many(self, requests: Sequence[SignRequest]) -> list[SignResult | SignError]:
        """Sign several requests in one go; each answer is a result or that request's error."""
        answers: list[SignResult | SignError | None] = [None] * len(requests)
        prepared: list[tuple[int, PreparedRequest]] = []
        for index, request in enumerate(requests):
            try:
                prepared.append((index, prepare_request(request, self.settings)))
            except SignError as error:
                answers[index] = error
            except Exception as error:  # one caller's input, one caller's error
                # prepare_request means to raise InvalidSignRequest only; should some input
                # still get past it, that request fails alone, never its batch-mates.
                log.warning("request %d could not be prepared", index, exc_info=True)
                answers[index] = InvalidSignRequest(
                    "request", f"cannot be prepared ({type(error).__name__}: {error})"
                )
        if prepared:
            outputs = await self.engine.sign_batch([item for _, item in prepared])
            signed: list[tuple[int, PreparedRequest, EngineOutput]] = []
            for (index, item), output in zip(prepared, outputs, strict=True):
                if isinstance(output, SignError):
                    answers[index] = output
                else:
                    signed.append((index, item, output))
            failures = check_outputs([(item, output) for _, item, output in signed])
            now = time.time()
            for (index, item, output), failure in zip(signed, failures, strict=True):
                if failure is not None:
                    self.selfcheck_failures += 1
                    answers[index] = failure
                elif now > item.deadline:
                    answers[index] = DeadlineExceeded(
                        "signed after the deadline; a late signature is not returned"
                    )
                else:
                    answers[index] = _result(item, output)
        return [answer for answer in answers if answer is not None]

    def stats(self) -> EngineStats:
        return self.engine.stats()

    def counters(self) -> SignerCounters:
        """A snapshot of the counts and gauges worth exporting."""
        stats = self.engine.stats()
        return SignerCounters(
            engine=self.engine.name,
            contexts_free=min(stats.contexts_free, stats.contexts_ready),
            contexts_ready=stats.contexts_ready,
            context_recycles=stats.recycles,
            browser_restarts=stats.browser_restarts,
            browser_crashes=stats.crashes,
            selfcheck_failures=self.selfcheck_failures,
            browser_pid=stats.browser_pid,
        )


def _result(request: PreparedRequest, output: EngineOutput) -> SignResult:
    return SignResult(
        signed_url=f"{request.base}?{output.query}&X-Bogus={output.x_bogus}"
        f"&X-Gnarly={output.x_gnarly}",
        x_bogus=output.x_bogus,
        x_gnarly=output.x_gnarly,
        x_tt_params=output.x_tt_params,
        verify_fp=output.verify_fp,
        ms_token=request.ms_token,
        ms_token_minted=request.ms_token_minted,
        signature=output.signature,
        user_agent=output.user_agent,
        navigator=output.navigator,
        timestamp=output.timestamp,
        canvas=output.canvas,
        engine=output.engine,
        profile=output.profile,
    )
