"""What every signing engine provides, and what it hands back for one request."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .errors import SignError
from .models import Navigator
from .urls import PreparedRequest

__all__ = ["EngineOutput", "EngineStats", "SigningEngine"]


@dataclass(frozen=True, slots=True)
class EngineOutput:
    """The tokens an engine produced for one request, before the self-check."""

    query: str  # the final query the tokens cover (verifyFp and msToken included)
    x_bogus: str
    x_gnarly: str
    x_tt_params: str
    verify_fp: str
    timestamp: int
    canvas: int
    user_agent: str
    signature: str
    navigator: Navigator
    profile: str
    engine: str


@dataclass(frozen=True, slots=True)
class EngineStats:
    """What an engine has done and holds, read by attribute (metrics, `/health`, tests).

    Contexts are counted two ways, named apart: `contexts_configured` is the slots the
    settings ask for (`SIGNER_CONTEXTS`), `contexts_ready` those open and healthy now
    (what the `signer_worker_contexts_total` gauge exports). An engine without a browser
    has neither, and no context loops (`loops_alive` None: it is ready once started).
    """

    engine: str
    signatures: int = 0
    contexts_configured: int = 0
    contexts_ready: int = 0
    contexts_free: int = 0  # context loops idle, waiting for work
    loops_alive: int | None = None
    loop_restarts: int = 0
    loop_errors: int = 0
    batches: int = 0
    recycles: int = 0
    browser_launches: int = 0
    browser_restarts: int = 0
    crashes: int = 0
    context_failures: int = 0
    retried_requests: int = 0
    expired_requests: int = 0
    queue_depth: int = 0
    last_batch_sizes: tuple[int, ...] = field(default=())
    browser_pid: int | None = None
    browser_version: str | None = None
    executable: str | None = None


class SigningEngine(Protocol):
    """Computes tokens for prepared requests; `Signer` validates before and checks after."""

    name: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def sign_batch(
        self, requests: Sequence[PreparedRequest]
    ) -> list[EngineOutput | SignError]: ...

    def stats(self) -> EngineStats: ...
