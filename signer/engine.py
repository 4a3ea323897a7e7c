"""What every signing engine provides, and what it hands back for one request."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .errors import SignError
from .models import Navigator
from .urls import PreparedRequest

__all__ = ["EngineOutput", "SigningEngine"]


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


class SigningEngine(Protocol):
    """Computes tokens for prepared requests; `Signer` validates before and checks after."""

    name: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def sign_batch(
        self, requests: Sequence[PreparedRequest]
    ) -> list[EngineOutput | SignError]: ...

    def stats(self) -> dict[str, Any]: ...
