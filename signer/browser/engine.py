"""The browser engine: a `ContextPool` behind the engine interface."""

from __future__ import annotations

from collections.abc import Sequence

from ..config import SignerSettings
from ..engine import EngineOutput, EngineStats
from ..errors import SignError
from ..profiles import PROFILES, Profile, get_profile
from ..urls import PreparedRequest
from .pool import ContextPool

__all__ = ["BrowserEngine"]


class BrowserEngine:
    """Signs inside warm Chromium contexts, one profile each."""

    name = "browser"

    def __init__(self, settings: SignerSettings) -> None:
        profiles: Sequence[Profile] = (
            [get_profile(name) for name in settings.profiles] if settings.profiles else PROFILES
        )
        self.pool = ContextPool(settings, profiles)

    async def start(self) -> None:
        await self.pool.start()

    async def close(self) -> None:
        await self.pool.close()

    async def sign_batch(
        self, requests: Sequence[PreparedRequest]
    ) -> list[EngineOutput | SignError]:
        return await self.pool.sign(requests)

    def stats(self) -> EngineStats:
        # A shallow copy: `asdict` (a deep one) cost more than the rest of a job's take, and
        # the worker reads these on every wake-up.
        counts = dict(vars(self.pool.stats))
        counts["last_batch_sizes"] = tuple(counts["last_batch_sizes"])
        return EngineStats(
            engine=self.name,
            contexts_ready=self.pool.contexts_ready,
            loops_alive=self.pool.loops_alive,
            queue_depth=self.pool.queue_depth,
            browser_version=self.pool.browser_version,
            executable=self.pool.executable,
            **counts,
        )
