"""The signed-in user's pages: overview, keys, requests, the connect guide and the
account. Every query names the signed-in user's id; an id of anybody else's is a 404."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import UTC, datetime
from typing import Any, get_args

import aiohttp_jinja2
from aiohttp import web
from markupsafe import Markup

from accounts import passwords, people, usage_queries, usage_rollup, user_keys
from accounts.apikeys import SHOWN_ONCE
from accounts.errors import InvalidInput
from accounts.ratelimit import caller_for
from accounts.users import ApiKeyInfo
from api.context import ACCOUNTING, ROUTES
from api.errors import ErrorType

from .charts import bar_chart
from .context import (
    CONSOLE,
    LIVE_PATH,
    PREFIX,
    VISITOR,
    BadForm,
    NotFound,
    base_url,
    database,
    parse_uuid,
)
from .context import signed_in as require_person
from .forms import form_fields, optional_limit, parse_moment
from .views_auth import change_email

__all__ = ["routes"]

routes = web.RouteTableDef()

PAGE_ROWS = 50
MAX_EXPORT_ROWS = 100_000
LIVE_CACHE_SECONDS = 4
# Another process drawing the live chart: wait up to this long for its drawing.
LIVE_DRAW_LOCK_MS = 2000
LIVE_DRAW_WAITS = 20
LIVE_DRAW_WAIT_SECONDS = 0.05
ERROR_TYPES: tuple[str, ...] = get_args(ErrorType)
CSV_COLUMNS = (
    "created_at",
    "request_id",
    "key_prefix",
    "route",
    "dialect",
    "target",
    "success",
    "status_code",
    "error_type",
    "error_message",
    "response_time_ms",
    "queue_wait_ms",
)


def _render(request: web.Request, name: str, status: int = 200, **context: object) -> web.Response:
    return aiohttp_jinja2.render_template(name, request, context, status=status)


def _tier_limits(request: web.Request, person: people.Person) -> tuple[int | None, int | None]:
    """The most a key's own limits may be: the free tier's budgets, none for `api_key`."""
    limits = request.config_dict[ACCOUNTING].limits
    if person.tier == "free":
        return limits.free_per_minute, limits.free_per_day
    return None, None


async def _quota(request: web.Request, person: people.Person) -> list[dict[str, Any]]:
    """Each limited window of the user's budget: used, limit and when it resets."""
    accounting = request.config_dict[ACCOUNTING]
    limiter = request.app[CONSOLE].limiter
    rows: list[dict[str, Any]] = []
    if person.tier == "free":
        callers = [
            (
                "All keys together",
                caller_for(accounting.limits, client_ip="-", tier="free", user_id=str(person.id)),
            )
        ]
    else:
        keys = [
            k for k in await user_keys.list_user_keys(database(request), person.id) if k.is_active
        ]
        callers = [
            (
                f"Key {key.prefix}",
                caller_for(
                    accounting.limits,
                    client_ip="-",
                    tier="api_key",
                    key_id=str(key.id),
                    key_per_minute=key.per_minute,
                    key_per_day=key.per_day,
                ),
            )
            for key in keys[:20]
        ]
    for label, caller in callers:
        decision = await limiter.peek(caller)
        for window in decision.windows:
            rows.append(
                {
                    "label": label,
                    "window": window.window,
                    "used": window.used,
                    "limit": window.limit,
                    "share": min(100, round(100 * window.used / window.limit))
                    if window.limit
                    else 100,
                    "reset": datetime.fromtimestamp(window.reset_at, UTC),
                }
            )
    return rows


async def _draw_live(request: web.Request, user_id: uuid.UUID) -> str:
    buckets = await usage_queries.minute_buckets(database(request), user_id)
    total = sum(b.requests for b in buckets)
    failed = sum(b.failures for b in buckets)
    chart = bar_chart(buckets, unit="minute", title="Requests per minute, last hour")
    return (
        f'<p class="live-figures">{total} requests in the last hour, {failed} failed '
        f"(updated {datetime.now(UTC):%H:%M:%S} UTC)</p>{chart}"
    )


async def _live_fragment(request: web.Request, user_id: uuid.UUID) -> str:
    """The per-minute chart, drawn by one query at most every few seconds per user
    however many tabs ask: the drawing is kept in Redis that long, the tabs of one process
    wait for one drawing, and a process finding another drawing it waits for that one."""
    state = request.app[CONSOLE]
    redis = state.sessions.redis
    key = f"{state.sessions.prefix}:console:live:{user_id}"

    async def cached() -> str | None:
        found = await redis.get(key)
        return found.decode() if isinstance(found, bytes) else found

    found = await cached()
    if found is not None:
        return found
    flight = state.live_flights.get(user_id)
    if flight is not None:
        return await asyncio.shield(flight)
    flight = asyncio.get_running_loop().create_future()
    flight.add_done_callback(lambda done: done.cancelled() or done.exception())
    state.live_flights[user_id] = flight
    try:
        drawn = None
        if not await redis.set(f"{key}:drawing", "1", nx=True, px=LIVE_DRAW_LOCK_MS):
            for _ in range(LIVE_DRAW_WAITS):
                await asyncio.sleep(LIVE_DRAW_WAIT_SECONDS)
                drawn = await cached()
                if drawn is not None:
                    break
        if drawn is None:
            drawn = await _draw_live(request, user_id)
            await redis.set(key, drawn, ex=LIVE_CACHE_SECONDS)
        flight.set_result(drawn)
        return drawn
    except BaseException as error:
        flight.set_exception(error)
        raise
    finally:
        state.live_flights.pop(user_id, None)


@routes.get("/")
async def overview(request: web.Request) -> web.Response:
    person = require_person(request)
    figures = await usage_rollup.overview_figures(database(request), person.id)
    hourly = figures.hourly
    return _render(
        request,
        "overview.html",
        page="overview",
        figures=figures.overview,
        hourly=bar_chart(hourly, unit="hour", title="Requests per hour, last 24 hours"),
        live=Markup(await _live_fragment(request, person.id)),
        quota=await _quota(request, person),
        tier=person.tier,
    )


@routes.get(LIVE_PATH)
async def overview_live(request: web.Request) -> web.Response:
    """The live chart alone, for the overview's script. The session is enough here (the
    middleware does not load the person for this path): one query per refresh at most."""
    session = request[VISITOR].session
    if session is None:
        return web.Response(status=401, text="", content_type="text/html")
    fragment = await _live_fragment(request, session.user_id)
    return web.Response(text=fragment, content_type="text/html")


async def _keys_page(
    request: web.Request,
    person: people.Person,
    status: int = 200,
    *,
    new_key: str | None = None,
    new_info: ApiKeyInfo | None = None,
    error: str | None = None,
) -> web.Response:
    most_minute, most_day = _tier_limits(request, person)
    return _render(
        request,
        "keys.html",
        status,
        page="keys",
        keys=await user_keys.list_user_keys(database(request), person.id),
        new_key=new_key,
        new_info=new_info,
        shown_once=SHOWN_ONCE,
        most_minute=most_minute,
        most_day=most_day,
        error=error,
    )


@routes.get("/keys")
async def keys(request: web.Request) -> web.Response:
    return await _keys_page(request, require_person(request))


@routes.post("/keys")
async def create_key(request: web.Request) -> web.Response:
    person = require_person(request)
    fields = await form_fields(request)
    most_minute, most_day = _tier_limits(request, person)
    try:
        per_minute = optional_limit(fields, "per_minute", "The limit per minute")
        per_day = optional_limit(fields, "per_day", "The limit per day")
        info, key = await user_keys.create_user_key(
            database(request),
            person.id,
            fields.get("name", "").strip(),
            per_minute,
            per_day,
            most_per_minute=most_minute,
            most_per_day=most_day,
            key_secret=request.app[CONSOLE].key_secret,
        )
    except (BadForm, InvalidInput) as error:
        return await _keys_page(request, person, 400, error=str(error))
    return await _keys_page(request, person, 201, new_key=key, new_info=info)


@routes.post("/keys/{key_id}/revoke")
async def revoke_key(request: web.Request) -> web.Response:
    person = require_person(request)
    key_id = parse_uuid(request.match_info["key_id"])
    if not await user_keys.revoke_user_key(database(request), person.id, key_id):
        raise NotFound
    raise web.HTTPSeeOther(location=f"{PREFIX}/keys")


async def _filters(request: web.Request, person: people.Person) -> usage_queries.RequestFilters:
    query = request.query
    key_id: uuid.UUID | None = None
    if query.get("key"):
        key_id = parse_uuid(query["key"])
        if await user_keys.get_user_key(database(request), person.id, key_id) is None:
            raise NotFound
    status = query.get("status", "").strip()
    success: bool | None = None
    code: int | None = None
    if status == "ok":
        success = True
    elif status == "failed":
        success = False
    elif status:
        if not status.isdigit() or not 100 <= int(status) <= 599:
            raise BadForm("status must be ok, failed or an HTTP status code")
        code = int(status)
    return usage_queries.RequestFilters(
        key_id=key_id,
        success=success,
        status_code=code,
        route=query.get("route", "").strip()[:100] or None,
        error_type=query.get("error", "").strip()[:100] or None,
        since=parse_moment(query.get("since", ""), "From"),
        until=parse_moment(query.get("until", ""), "Until"),
        search=query.get("q", "").strip() or None,
    )


def _cursor(text: str) -> tuple[datetime, int] | None:
    if not text:
        return None
    moment, _, row_id = text.partition("~")
    try:
        parsed = datetime.fromisoformat(moment)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)), int(row_id)
    except ValueError:
        raise BadForm("that page link is malformed") from None


def _route_names(request: web.Request) -> list[str]:
    return sorted({info.name for info in request.config_dict[ROUTES].values() if info.metered})


@routes.get("/requests")
async def requests_page(request: web.Request) -> web.Response:
    person = require_person(request)
    pool = database(request)
    keys_of_user = await user_keys.list_user_keys(pool, person.id)
    try:
        filters = await _filters(request, person)
        before = _cursor(request.query.get("after", ""))
    except BadForm as error:
        return _render(
            request,
            "requests.html",
            400,
            page="requests",
            rows=[],
            keys=keys_of_user,
            error=str(error),
            query=request.query,
            routes=_route_names(request),
            error_types=ERROR_TYPES,
            next_query=None,
        )
    rows = await usage_queries.list_requests(
        pool, person.id, filters, before=before, limit=PAGE_ROWS + 1
    )
    more = len(rows) > PAGE_ROWS
    rows = rows[:PAGE_ROWS]
    next_query = None
    if more:
        params = {k: v for k, v in request.query.items() if k != "after"}
        params["after"] = rows[-1].cursor
        next_query = params
    return _render(
        request,
        "requests.html",
        page="requests",
        rows=rows,
        keys=keys_of_user,
        query=request.query,
        routes=_route_names(request),
        error_types=ERROR_TYPES,
        next_query=next_query,
        export_query={k: v for k, v in request.query.items() if k != "after"},
    )


def _csv_cell(value: object) -> str:
    text = "" if value is None else value.isoformat() if isinstance(value, datetime) else str(value)
    # A cell a spreadsheet would run as a formula is kept as text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@routes.get("/requests.csv")
async def requests_csv(request: web.Request) -> web.Response:
    person = require_person(request)
    try:
        filters = await _filters(request, person)
    except BadForm as error:
        return web.Response(status=400, text=f"{error}\n", content_type="text/plain")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    before: tuple[datetime, int] | None = None
    written = 0
    pool = database(request)
    while written < MAX_EXPORT_ROWS:
        rows = await usage_queries.list_requests(
            pool, person.id, filters, before=before, limit=usage_queries.MAX_PAGE_ROWS
        )
        for row in rows:
            writer.writerow([_csv_cell(getattr(row, name)) for name in CSV_COLUMNS])
        written += len(rows)
        if len(rows) < usage_queries.MAX_PAGE_ROWS:
            break
        before = (rows[-1].created_at, rows[-1].id)
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="requests.csv"'},
    )


@routes.get("/requests/{request_id}")
async def request_detail(request: web.Request) -> web.Response:
    person = require_person(request)
    row = await usage_queries.request_detail(
        database(request), person.id, request.match_info["request_id"]
    )
    if row is None:
        raise NotFound
    return _render(request, "request_detail.html", page="requests", row=row)


@routes.get("/connect")
async def connect(request: web.Request) -> web.Response:
    person = require_person(request)
    active = [
        k for k in await user_keys.list_user_keys(database(request), person.id) if k.is_active
    ]
    prefix = active[0].prefix if active else None
    return _render(
        request,
        "connect.html",
        page="connect",
        base=base_url(request),
        key=f"{prefix}_…" if prefix else "YOUR_API_KEY",
        has_key=bool(active),
    )


async def _account_page(
    request: web.Request, person: people.Person, status: int = 200, **notes: object
) -> web.Response:
    return _render(request, "account.html", status, page="account", person=person, **notes)


@routes.get("/account")
async def account(request: web.Request) -> web.Response:
    return await _account_page(request, require_person(request))


@routes.post("/account/email")
async def account_email(request: web.Request) -> web.Response:
    person = require_person(request)
    fields = await form_fields(request)
    pool = database(request)
    if await passwords.authenticate(pool, person.email, fields.get("password", "")) is None:
        return await _account_page(request, person, 400, email_error="Wrong password.")
    try:
        await change_email(request, person, fields.get("email", ""))
    except InvalidInput as error:
        return await _account_page(request, person, 400, email_error=str(error))
    return await _account_page(
        request,
        person,
        email_note="We sent a link to the new address; your address changes when it is opened.",
    )


@routes.post("/account/password")
async def account_password(request: web.Request) -> web.Response:
    person = require_person(request)
    fields = await form_fields(request)
    pool = database(request)
    if await passwords.authenticate(pool, person.email, fields.get("current", "")) is None:
        return await _account_page(request, person, 400, password_error="Wrong password.")
    new = fields.get("password", "")
    if new != fields.get("confirm", ""):
        return await _account_page(request, person, 400, password_error="The passwords differ.")
    try:
        await passwords.set_password(pool, person.id, new)
    except InvalidInput as error:
        return await _account_page(request, person, 400, password_error=str(error))
    # Every other session ends: whoever knew the old password is out.
    await request.app[CONSOLE].sessions.end_all(person.id, keep=request[VISITOR].session_id)
    return await _account_page(
        request, person, password_note="Password changed; your other sessions are signed out."
    )
