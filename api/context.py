"""What the application and each request carry: the typed keys of `web.Application`
and `web.Request`, each route's name and dialect, and the request's trace.

Kept apart from `api.app` so the middlewares and the admin sub-app read them without
importing the application that assembles them.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from aiohttp import web

from accounts.admission import Access, Accounting
from accounts.settings import AccountSettings
from signer import SignResult
from tiktok import TikTokClient
from workers import SignOutcome, SignQueue

from .errors import ApiError
from .metrics import ApiMetrics

__all__ = [
    "ACCOUNTING",
    "DIALECTS",
    "METRICS",
    "QUEUE",
    "ROUTES",
    "SETTINGS",
    "TIKTOK",
    "TRACE",
    "UNKNOWN_ROUTE",
    "AppSettings",
    "ConnectTrace",
    "Dialect",
    "Handler",
    "RequestTrace",
    "RouteInfo",
    "client_ip",
]

Dialect = Literal["eulerstream", "structured"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class AppSettings:
    """What the application needs to know, as plain values (`service/` builds them)."""

    # The defaults as written, not the environment's: an admin token left empty keeps
    # the admin routes disabled.
    accounts: AccountSettings = field(default_factory=AccountSettings.model_construct)
    trust_forwarded_for: bool = False
    # Where signed webcast URLs are sent back pointing (`SIGNER_TIKTOK_WEBCAST_URL`) when
    # it is not TikTok's own: a deployment aimed at a local TikTok (the sandbox) hands
    # TikTok-Live-Connector 1.x, which fetches im/fetch itself, a URL that reaches it.
    webcast_url: str | None = None
    # Requests a connect counts as (`SIGNER_LIMIT_CONNECT_WEIGHT`).
    connect_weight: int = 1


@dataclass(frozen=True, slots=True)
class RouteInfo:
    """A route as metrics, logs and usage rows name it; `metered` routes sign, so they
    pass admission and leave a usage row."""

    name: str
    dialect: Dialect
    metered: bool = False
    connect: bool = False  # counts as `AppSettings.connect_weight` requests
    # Fields every error body of the route carries in the EulerStream dialect, so that a
    # client reading only the body (the room-id routes' `ok`) understands a refusal too.
    error_fields: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))


# A request no route takes (404, 405), and any handler not in the table.
UNKNOWN_ROUTE = RouteInfo("unknown", "structured")


@dataclass(slots=True)
class ConnectTrace:
    """What a connect went through, for its headers, log line, usage row and metrics."""

    room_id: str | None = None
    strategy: str | None = None  # fetch | socket, once one answered
    upstream_status: int | None = None
    upstream_ms: float | None = None
    outcome: str = "client_error"  # ok | tiktok_error | client_error | refused | signer_error


@dataclass(slots=True)
class RequestTrace:
    """What one request went through, for its headers, its log line and its usage row."""

    route: RouteInfo = UNKNOWN_ROUTE
    # 128 random bits as hex, like uuid4().hex without building a UUID on every request.
    request_id: str = field(default_factory=lambda: os.urandom(16).hex())
    client_ip: str = ""
    raw_key: str | None = None  # the API key as sent, read once by admission
    access: Access = field(default_factory=Access)
    target: str = ""
    outcome: SignOutcome | None = None
    error: ApiError | None = None  # what the answer says went wrong, if anything
    connect: ConnectTrace | None = None  # the connect routes only

    @property
    def worker_id(self) -> str | None:
        return self.outcome.worker_id if self.outcome is not None else None

    @property
    def queue_wait_ms(self) -> float | None:
        return self.outcome.queue_wait_ms if self.outcome is not None else None

    @property
    def profile(self) -> str | None:
        """The signing profile, when the request was signed."""
        result = self.outcome.result if self.outcome is not None else None
        return result.profile if isinstance(result, SignResult) else None


QUEUE = web.AppKey("queue", SignQueue)
METRICS = web.AppKey("metrics", ApiMetrics)
ACCOUNTING = web.AppKey("accounting", Accounting)
SETTINGS = web.AppKey("settings", AppSettings)
# Each handler's route; a handler serves one route name in one dialect (on any paths).
ROUTES = web.AppKey("routes", dict[Handler, RouteInfo])
# Each path's dialect, for answers given before routing (see service/api_process.py).
DIALECTS = web.AppKey("dialects", dict[str, Dialect])
TRACE = web.RequestKey("trace", RequestTrace)
# The TikTok client of the connect routes; absent, they answer 503.
TIKTOK = web.AppKey("tiktok", TikTokClient)


def client_ip(request: web.BaseRequest, trust_forwarded_for: bool) -> str:
    """The caller's address; behind a proxy we trust, the first `X-Forwarded-For` hop."""
    if trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "")
        first = forwarded.split(",")[0].strip()
        if first:
            return first
    return request.remote or ""
