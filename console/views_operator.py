"""The operators' pages: users (search, tier, deactivate, invite), the service's health,
the busiest keys and the latest errors across users. To anybody who is not an operator
they do not exist (404)."""

from __future__ import annotations

import asyncio

import aiohttp_jinja2
from aiohttp import web

from accounts import people, usage_queries
from accounts.errors import AccountError
from accounts.tiers import TIERS
from api.context import ACCOUNTING, METRICS, QUEUE, TIKTOK

from .context import CONSOLE, PREFIX, BadForm, NotFound, database, operator, parse_uuid
from .forms import form_fields
from .views_auth import invite

__all__ = ["routes"]

routes = web.RouteTableDef()


def _render(request: web.Request, name: str, status: int = 200, **context: object) -> web.Response:
    return aiohttp_jinja2.render_template(name, request, context, status=status)


async def _users_page(request: web.Request, status: int = 200, **notes: object) -> web.Response:
    query = request.query.get("q", "")
    found = await people.search_people(database(request), query)
    return _render(
        request,
        "operator_users.html",
        status,
        page="operator",
        users=found,
        q=query,
        tiers=TIERS,
        **notes,
    )


@routes.get("/operator/users")
async def users(request: web.Request) -> web.Response:
    operator(request)
    return await _users_page(request)


@routes.post("/operator/users/{user_id}/tier")
async def set_tier(request: web.Request) -> web.Response:
    operator(request)
    user_id = parse_uuid(request.match_info["user_id"])
    fields = await form_fields(request)
    try:
        await people.set_person_tier(database(request), user_id, fields.get("tier", ""))
    except AccountError:
        raise NotFound from None
    request.app[CONSOLE].people.forget(user_id)
    raise web.HTTPSeeOther(location=f"{PREFIX}/operator/users")


@routes.post("/operator/users/{user_id}/active")
async def set_active(request: web.Request) -> web.Response:
    me = operator(request)
    user_id = parse_uuid(request.match_info["user_id"])
    fields = await form_fields(request)
    active = fields.get("active") == "true"
    if user_id == me.id and not active:
        return await _users_page(request, 400, error="You cannot deactivate yourself.")
    try:
        await people.set_active(database(request), user_id, active)
    except AccountError:
        raise NotFound from None
    request.app[CONSOLE].people.forget(user_id)
    raise web.HTTPSeeOther(location=f"{PREFIX}/operator/users")


@routes.post("/operator/invite")
async def invite_user(request: web.Request) -> web.Response:
    operator(request)
    fields = await form_fields(request)
    try:
        address = await invite(request, people.checked_email(fields.get("email", "")))
    except (AccountError, BadForm) as error:
        return await _users_page(request, 400, error=str(error))
    return await _users_page(request, note=f"Invitation sent to {address}.")


@routes.get("/operator/health")
async def health(request: web.Request) -> web.Response:
    operator(request)
    config = request.config_dict
    state, database_ok = await asyncio.gather(
        config[METRICS].refresh_queue(config[QUEUE]),
        config[ACCOUNTING].database_connected(),
    )
    usage = config[ACCOUNTING].usage
    tiktok = config.get(TIKTOK)
    upstream = tiktok.stats() if tiktok is not None else None
    return _render(
        request,
        "operator_health.html",
        page="operator",
        redis_ok=state is not None,
        workers=state.workers if state else 0,
        workers_expected=state.expected if state else 0,
        queue_ready=state.ready if state else 0,
        queue_jobs=state.jobs if state else 0,
        database_ok=database_ok,
        usage_buffered=usage.buffered if usage is not None else None,
        usage_dropped=usage.dropped if usage is not None else None,
        listening=config[QUEUE].listening,
        upstream=upstream,
        upstream_requests=sum(upstream.requests.values()) if upstream else 0,
        # Statuses are TikTok's HTTP codes, or `timeout` and `error`.
        upstream_failed=sum(
            n
            for (_, status), n in (upstream.requests.items() if upstream else ())
            if not status.startswith("2")
        ),
    )


@routes.get("/operator/keys")
async def top_keys(request: web.Request) -> web.Response:
    operator(request)
    totals = await usage_queries.top_keys(database(request))
    return _render(request, "operator_keys.html", page="operator", totals=totals)


@routes.get("/operator/errors")
async def errors(request: web.Request) -> web.Response:
    operator(request)
    rows = await usage_queries.recent_errors(database(request))
    return _render(request, "operator_errors.html", page="operator", rows=rows)
