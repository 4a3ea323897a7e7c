"""The console as an aiohttp sub-app, and how the service mounts it beside the API.

`console_app` builds the sub-app from plain settings; `mount_console` adds it under
`/console/` to the API's application (whose middlewares run first: request id, metrics,
the log line) together with `GET /`, which sends a browser to the console and answers an
API client with a short JSON index.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from importlib import resources
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web
from redis.asyncio import Redis

from accounts.ratelimit import RateLimiter
from api.app import VERSION
from api.context import ROUTES, Handler, RouteInfo

from . import views_auth, views_operator, views_user
from .context import CONSOLE, PREFIX, ConsoleState, NotFound
from .mail import Mailer
from .safety import console_middleware
from .sessions import SessionStore
from .settings import ConsoleSettings, MailSettings

__all__ = ["console_app", "index", "listen_origin", "mount_console", "own_hosts"]

CONSOLE_ROUTE = RouteInfo("console", "structured")
INDEX_ROUTE = RouteInfo("index", "structured")
# Forms are small; anything bigger is refused before it is read.
MAX_FORM_BYTES = 64 * 1024


def _moment(value: datetime | None) -> str:
    if value is None:
        return "never"
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def listen_origin(host: str, port: int) -> str:
    """`http://host:port` of a listening address (any-address as the loopback one)."""
    shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port}"


def own_hosts(host: str, port: int) -> frozenset[str]:
    """The `Host` values a browser sends for the API's own listening address."""
    names = {host, "127.0.0.1", "localhost"} if host in ("", "0.0.0.0", "::") else {host}
    if host in ("127.0.0.1", "localhost"):
        names |= {"127.0.0.1", "localhost"}
    return frozenset(f"{name}:{port}".lower() for name in names if name)


async def _not_found(request: web.Request) -> web.StreamResponse:
    raise NotFound


def _static_folder() -> Path:
    return Path(str(resources.files("console") / "static"))


def console_app(
    settings: ConsoleSettings,
    mail: MailSettings,
    redis: Redis,
    *,
    prefix: str,
    key_secret: str,
    listen: tuple[str, int] = ("127.0.0.1", 8080),
) -> tuple[web.Application, dict[Handler, RouteInfo]]:
    """The console sub-app and its routes' names (for the parent's metrics and logs).

    `redis` holds the sessions and counts failed sign-ins (with the API's limiter keys,
    under `prefix`); `key_secret` is `SIGNER_KEY_SECRET`, so the keys it issues work;
    `listen` is where the API listens, for links when no base URL is configured."""
    app = web.Application(middlewares=[console_middleware], client_max_size=MAX_FORM_BYTES)
    mailer = Mailer(mail)
    app[CONSOLE] = ConsoleState(
        settings=settings,
        sessions=SessionStore(redis, prefix, settings.session_idle_days * 86400),
        mailer=mailer,
        limiter=RateLimiter(redis, prefix=prefix),
        key_secret=key_secret,
        listen_origin=listen_origin(*listen),
        own_hosts=own_hosts(*listen),
    )
    environment = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["moment"] = _moment
    for table in (views_auth.routes, views_user.routes, views_operator.routes):
        app.router.add_routes(table)
    app.router.add_static("/static/", _static_folder(), name="static")
    # Last: any other path under /console/ is the console's own 404 page, not JSON.
    app.router.add_route("*", "/{tail:.*}", _not_found)
    named: dict[Handler, RouteInfo] = {}
    for resource in app.router.resources():
        for route in resource:
            named[route.handler] = CONSOLE_ROUTE

    async def close_mailer(_: web.Application) -> AsyncIterator[None]:
        yield
        await mailer.close()

    app.cleanup_ctx.append(close_mailer)
    return app, named


async def index(request: web.Request) -> web.StreamResponse:
    """`GET /`: a browser goes to the console, an API client reads where things are."""
    if "text/html" in request.headers.get("Accept", ""):
        return web.Response(status=302, headers={"Location": f"{PREFIX}/"})
    origin = f"{request.scheme}://{request.host}"
    return web.json_response(
        {
            "name": "tiktok-signer",
            "version": VERSION,
            "docs": f"{origin}/docs",
            "openapi": f"{origin}/openapi.json",
            "health": f"{origin}/health",
            "console": f"{origin}{PREFIX}/",
        }
    )


async def _to_console(request: web.Request) -> web.StreamResponse:
    return web.Response(status=302, headers={"Location": f"{PREFIX}/"})


def mount_console(
    app: web.Application, console: web.Application, routes: dict[Handler, RouteInfo]
) -> None:
    """Add the console under `/console/` and `GET /` to the API's application."""
    # `/console` itself first: the sub-app's prefix would take it and find nothing.
    app.router.add_get(PREFIX, _to_console)
    app.add_subapp(f"{PREFIX}/", console)
    app.router.add_get("/", index)
    app[ROUTES].update(routes)
    app[ROUTES][index] = INDEX_ROUTE
    app[ROUTES][_to_console] = CONSOLE_ROUTE
