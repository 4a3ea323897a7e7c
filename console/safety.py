"""The console's middleware: who the visitor is, the checks every state-changing form
passes, the headers every page carries, and errors as pages.

- The session cookie (`signer_console`) holds an opaque id looked up in Redis
  (`console.sessions`); `HttpOnly`, `SameSite=Lax`, `Secure` over https or with
  `SIGNER_CONSOLE_SECURE_COOKIES`.
- Every POST must come from our own origin (`Origin`, else `Referer`, when the browser
  sends one) and carry the CSRF token in its `csrf` field: the session's token once
  signed in, before that the one in the `signer_console_csrf` cookie (double submit).
- Every answer gets a CSP without inline script or style, `X-Frame-Options: DENY`,
  `Referrer-Policy`, `X-Content-Type-Options: nosniff` and `Cache-Control: no-store`.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
import asyncpg
from aiohttp import web
from redis.exceptions import RedisError

from accounts.people import get_person
from api.app import VERSION
from api.context import Handler

from .context import (
    CONSOLE,
    LIVE_PATH,
    PREFIX,
    VISITOR,
    Forbidden,
    NotFound,
    Unavailable,
    Visitor,
    database,
    is_https,
    own_origin,
)

__all__ = [
    "CSRF_COOKIE",
    "SECURITY_HEADERS",
    "SESSION_COOKIE",
    "console_middleware",
    "page_context",
    "set_session",
]

log = logging.getLogger(__name__)

SESSION_COOKIE = "signer_console"
CSRF_COOKIE = "signer_console_csrf"
CSRF_FIELD = "csrf"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
        "object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def _secure(request: web.Request) -> bool:
    return is_https(request) or request.app[CONSOLE].settings.secure_cookies


def set_session(request: web.Request, response: web.StreamResponse, session_id: str) -> None:
    """Give the browser its new session cookie."""
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=_secure(request),
        max_age=int(request.app[CONSOLE].sessions.idle),
    )


async def _visitor(request: web.Request) -> Visitor:
    state = request.app[CONSOLE]
    visitor = Visitor()
    session_id = request.cookies.get(SESSION_COOKIE, "")
    if session_id:
        session = await state.sessions.load(session_id)
        person = None
        if session is not None and request.path == f"{PREFIX}{LIVE_PATH}":
            # The live chart checks the user itself, in its one query.
            visitor.session, visitor.session_id, visitor.csrf = session, session_id, session.csrf
            return visitor
        if session is not None:
            person = state.people.get(session.user_id)
            if person is None:
                person = await get_person(database(request), session.user_id)
                if person is not None:
                    state.people.put(person)
            if person is None or not person.is_active:
                await state.sessions.end(session_id)
                person = None
        if person is None or session is None:
            visitor.cookies_to_clear.append(SESSION_COOKIE)
        else:
            visitor.person, visitor.session, visitor.session_id = person, session, session_id
            visitor.csrf = session.csrf
    if visitor.session is None:
        visitor.csrf = request.cookies.get(CSRF_COOKIE, "")
        if len(visitor.csrf) < 32:
            visitor.csrf = secrets.token_urlsafe(32)
            visitor.new_csrf_cookie = True
    return visitor


def _same_origin(request: web.Request) -> bool:
    """Whether the browser says the form came from us (no word from it passes: the token
    check still applies)."""
    allowed = {own_origin(request)}
    configured = request.app[CONSOLE].settings.base_url
    if configured:
        parts = urlsplit(configured)
        allowed.add(f"{parts.scheme}://{parts.netloc}")
    origin = request.headers.get("Origin")
    if origin is not None:
        return origin in allowed
    referer = request.headers.get("Referer")
    if referer:
        parts = urlsplit(referer)
        return f"{parts.scheme}://{parts.netloc}" in allowed
    return True


async def _check_form(request: web.Request, visitor: Visitor) -> None:
    if not _same_origin(request):
        raise Forbidden("this form was sent from another site")
    form = await request.post()
    sent = form.get(CSRF_FIELD)
    if visitor.new_csrf_cookie or not isinstance(sent, str) or not visitor.csrf:
        raise Forbidden("this form has expired; reload the page and send it again")
    if not hmac.compare_digest(sent.encode(), visitor.csrf.encode()):
        raise Forbidden("this form has expired; reload the page and send it again")


def _page(request: web.Request, status: int, title: str, message: str) -> web.Response:
    return aiohttp_jinja2.render_template(
        "message.html", request, {"title": title, "message": message}, status=status
    )


def page_context(request: web.Request, visitor: Visitor) -> dict[str, Any]:
    """What every template may use: the visitor, the CSRF token, paths and version."""
    return {
        "visitor": visitor,
        "me": visitor.person,
        "csrf": visitor.csrf,
        "prefix": PREFIX,
        "static": f"{PREFIX}/static",
        "version": VERSION,
        "signup_mode": request.app[CONSOLE].settings.signup,
    }


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    # Set before anything can fail, so that an error page renders too.
    request[aiohttp_jinja2.REQUEST_CONTEXT_KEY] = page_context(request, Visitor())
    try:
        visitor = await _visitor(request)
        request[VISITOR] = visitor
        request[aiohttp_jinja2.REQUEST_CONTEXT_KEY] = page_context(request, visitor)
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            await _check_form(request, visitor)
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status == 404:
            return _page(request, 404, "Not found", "There is nothing here.")
        if exc.status == 405:
            return _page(request, 405, "Not allowed", "This page does not take that method.")
        if exc.status == 413:
            return _page(request, 413, "Too large", "That form is too large.")
        return web.Response(status=exc.status, headers=exc.headers, text=exc.text)
    except NotFound:
        return _page(request, 404, "Not found", "There is nothing here.")
    except Forbidden as refused:
        return _page(request, 403, "Refused", str(refused))
    except (Unavailable, asyncpg.PostgresError, asyncpg.InterfaceError, OSError, RedisError):
        log.warning("console: accounts unavailable on %s", request.path, exc_info=True)
        return _page(
            request, 503, "Unavailable", "The service cannot reach its database; try again."
        )
    except Exception:
        log.exception("console: unhandled error on %s", request.path)
        return _page(request, 500, "Error", "Something went wrong on our side; it is logged.")


@web.middleware
async def console_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Visitor, form checks, errors as pages, security headers (see the module docstring)."""
    response = await _answer(request, handler)
    response.headers.update(SECURITY_HEADERS)
    visitor = request.get(VISITOR)
    if visitor is not None:
        for name in visitor.cookies_to_clear:
            if name not in response.cookies:  # not when a new session was just given
                response.del_cookie(name, path="/")
        if visitor.new_csrf_cookie and not request.path.startswith(f"{PREFIX}/static/"):
            response.set_cookie(
                CSRF_COOKIE,
                visitor.csrf,
                path="/",
                httponly=True,
                samesite="Strict",
                secure=_secure(request),
            )
    return response
