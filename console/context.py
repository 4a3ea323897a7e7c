"""What the console's handlers share: its state on the sub-app, the visitor of each
request, the errors that become pages, and the small helpers every view needs."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from urllib.parse import quote

import asyncpg
from aiohttp import web

from accounts.people import Person
from accounts.ratelimit import RateLimiter
from api.context import ACCOUNTING, SETTINGS

from .mail import Mailer
from .sessions import Session, SessionStore
from .settings import ConsoleSettings

__all__ = [
    "CONSOLE",
    "LIVE_PATH",
    "PREFIX",
    "VISITOR",
    "BadForm",
    "ConsoleState",
    "Forbidden",
    "NotFound",
    "PeopleCache",
    "Unavailable",
    "Visitor",
    "base_url",
    "database",
    "operator",
    "own_origin",
    "see_other",
    "signed_in",
]

# Where the service mounts the console; links and redirects are written with it.
PREFIX = "/console"
# The overview's live chart, asked for every few seconds by each open tab.
LIVE_PATH = "/overview/live"


# Seconds a signed-in person's row is reused between their requests in one process, so
# a page's live refresh, in however many tabs, costs Postgres no look-up of its own. A
# deactivation here takes effect at once; made in another process, within this long.
PERSON_CACHE_SECONDS = 5.0
MAX_CACHED_PEOPLE = 10_000


class PeopleCache:
    """Recently loaded people by id, each for `PERSON_CACHE_SECONDS`."""

    def __init__(self) -> None:
        self._held: OrderedDict[uuid.UUID, tuple[float, Person]] = OrderedDict()

    def get(self, user_id: uuid.UUID) -> Person | None:
        held = self._held.get(user_id)
        if held is None or held[0] < time.monotonic():
            return None
        return held[1]

    def put(self, person: Person) -> None:
        self._held[person.id] = (time.monotonic() + PERSON_CACHE_SECONDS, person)
        self._held.move_to_end(person.id)
        while len(self._held) > MAX_CACHED_PEOPLE:
            self._held.popitem(last=False)

    def forget(self, user_id: uuid.UUID) -> None:
        self._held.pop(user_id, None)


@dataclass(slots=True)
class ConsoleState:
    """The console's own parts, built once by `console_app`."""

    settings: ConsoleSettings
    sessions: SessionStore
    mailer: Mailer
    limiter: RateLimiter
    key_secret: str
    # The API's own address (`http://host:port`), and the `Host` values that name it.
    listen_origin: str = "http://127.0.0.1:8080"
    own_hosts: frozenset[str] = frozenset({"127.0.0.1:8080", "localhost:8080"})
    people: PeopleCache = field(default_factory=PeopleCache)
    # The live charts being drawn now, by user: other tabs wait for the same drawing.
    live_flights: dict[uuid.UUID, asyncio.Future[str]] = field(default_factory=dict)


@dataclass(slots=True)
class Visitor:
    """Who sent this request: a signed-in person with their session, or nobody."""

    person: Person | None = None
    session: Session | None = None
    session_id: str | None = None
    # The token forms carry: the session's, or before sign-in the CSRF cookie's.
    csrf: str = ""
    new_csrf_cookie: bool = False
    cookies_to_clear: list[str] = field(default_factory=list)


class NotFound(Exception):
    """Nothing here for this visitor: a 404 page that says no more."""


class Forbidden(Exception):
    """A state-changing request that failed the CSRF or origin check."""


class Unavailable(Exception):
    """Postgres or Redis cannot be asked now."""


class BadForm(Exception):
    """A form's field is malformed; the message is shown with the form."""


CONSOLE = web.AppKey("console", ConsoleState)
VISITOR = web.RequestKey("console_visitor", Visitor)


def see_other(location: str) -> web.Response:
    """A 303 to `location`: where a form's answer sends the browser next."""
    return web.Response(status=303, headers={"Location": location})


def database(request: web.Request) -> asyncpg.Pool:
    """The accounts' Postgres pool (the API's)."""
    pool = request.config_dict[ACCOUNTING].database
    if pool is None:
        raise Unavailable("this server has no accounts database")
    return pool


def signed_in(request: web.Request) -> Person:
    """The signed-in person; anybody else is sent to sign in first."""
    person = request[VISITOR].person
    if person is None:
        target = request.path_qs if request.method == "GET" else f"{PREFIX}/"
        raise web.HTTPSeeOther(location=f"{PREFIX}/signin?next={quote(target, safe='')}")
    return person


def operator(request: web.Request) -> Person:
    """The signed-in operator; to anybody else an operator's page does not exist."""
    person = request[VISITOR].person
    if person is None or not person.is_admin:
        raise NotFound
    return person


def _forwarded_https(request: web.Request) -> bool:
    trusted = request.config_dict[SETTINGS].trust_forwarded_for
    return trusted and request.headers.get("X-Forwarded-Proto", "").lower() == "https"


def is_https(request: web.Request) -> bool:
    return request.secure or _forwarded_https(request)


def own_origin(request: web.Request) -> str:
    """This service's origin as the browser sees it."""
    scheme = "https" if is_https(request) else "http"
    return f"{scheme}://{request.host}"


def base_url(request: web.Request) -> str:
    """The base URL for links and snippets: the configured one; else this request's when
    its `Host` is the address the API listens on, else that address. A `Host` header is
    the caller's to choose: a reset link built from it could be mailed pointing at the
    caller's own site, with the victim's token in it."""
    state = request.app[CONSOLE]
    configured = state.settings.base_url.rstrip("/")
    if configured:
        return configured
    if request.host.lower() in state.own_hosts:
        return own_origin(request)
    return state.listen_origin


def parse_uuid(text: str) -> uuid.UUID:
    """`text` as an id, or `NotFound`: a malformed id names nothing."""
    try:
        return uuid.UUID(text)
    except ValueError:
        raise NotFound from None
