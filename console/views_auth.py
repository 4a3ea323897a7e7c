"""Signing in and out, signing up, and the pages the mailed links open: verify an
address, reset a password, accept an invitation.

No answer says whether an address has an account: sign-up and "forgot password" answer
the same either way (the mail, sent after the answer, differs), and a failed sign-in
says only that the address or password is wrong.
"""

from __future__ import annotations

import hashlib

import aiohttp_jinja2
from aiohttp import web

from accounts import passwords, people, tokens
from accounts.errors import DuplicateUser, InvalidInput
from accounts.ratelimit import Caller, ip_identity
from api.context import SETTINGS, client_ip

from .context import CONSOLE, PREFIX, VISITOR, BadForm, base_url, database, see_other
from .forms import form_fields, safe_next
from .mail import Mail, change_email_mail, invite_mail, reset_mail, verify_mail
from .safety import SESSION_COOKIE, set_session

__all__ = ["routes"]

routes = web.RouteTableDef()

SAME_ANSWER_SIGNUP = (
    "Check your inbox: we sent a link to that address. Open it within an hour to finish."
)
SAME_ANSWER_FORGOT = (
    "If an account uses that address, we sent it a link to choose a new password. "
    "The link works once, for an hour."
)
WRONG_CREDENTIALS = "Wrong email or password."
INVALID_LINK = "This link is not valid any more: it was used, it expired, or it is wrong."


def _render(request: web.Request, name: str, status: int = 200, **context: object) -> web.Response:
    return aiohttp_jinja2.render_template(name, request, context, status=status)


def _message(request: web.Request, title: str, message: str, status: int = 200) -> web.Response:
    return _render(request, "message.html", status, title=title, message=message)


def link(request: web.Request, page: str, token: str) -> str:
    return f"{base_url(request)}{PREFIX}/{page}?token={token}"


def _signin_callers(request: web.Request, email: str) -> tuple[Caller, Caller]:
    settings = request.app[CONSOLE].settings
    address = ip_identity(client_ip(request, request.config_dict[SETTINGS].trust_forwarded_for))
    # By the address typed, whether or not it has an account: the throttle says nothing.
    account = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    return (
        Caller("signin_account", account, per_hour=settings.signin_failures_per_account),
        Caller("signin_address", address, per_hour=settings.signin_failures_per_address),
    )


async def _mail(request: web.Request, mail: Mail) -> None:
    """Send `mail` after the answer, unless its address had its hour's share of links
    (then nothing is sent, and nothing in the answer says so)."""
    state = request.app[CONSOLE]
    to = hashlib.sha256(mail.to.strip().lower().encode()).hexdigest()[:32]
    caller = Caller("console_mail", to, per_hour=state.settings.mails_per_address)
    if (await state.limiter.hit(caller)).allowed:
        state.mailer.send_later(mail)


async def _start_session(request: web.Request, person: people.Person) -> web.Response:
    """A new session (a new id: whatever id the browser had is ended) and the cookie."""
    state = request.app[CONSOLE]
    old = request[VISITOR].session_id or request.cookies.get(SESSION_COOKIE)
    if old:
        await state.sessions.end(old)
    session_id, _ = await state.sessions.create(person.id)
    await people.note_login(database(request), person.id)
    target = safe_next(request.query.get("next"), f"{PREFIX}/")
    response = see_other(target)
    set_session(request, response, session_id)
    return response


@routes.get("/signin")
async def signin_page(request: web.Request) -> web.Response:
    if request[VISITOR].person is not None:
        raise web.HTTPSeeOther(location=f"{PREFIX}/")
    return _render(request, "signin.html", next=request.query.get("next", ""))


@routes.post("/signin")
async def signin(request: web.Request) -> web.Response:
    fields = await form_fields(request)
    email, password = fields.get("email", ""), fields.get("password", "")
    state = request.app[CONSOLE]
    callers = _signin_callers(request, email)
    for caller in callers:
        decision = await state.limiter.peek(caller)
        if not decision.allowed:
            minutes = max(1, round(decision.retry_after / 60)) if decision.retry_after else 60
            return _render(
                request,
                "signin.html",
                429,
                email=email,
                error=f"Too many failed sign-ins. Try again in about {minutes} minutes.",
            )
    person = await passwords.authenticate(database(request), email, password)
    if person is None:
        for caller in callers:
            await state.limiter.hit(caller)
        return _render(request, "signin.html", 400, email=email, error=WRONG_CREDENTIALS)
    if not person.verified:
        token = await tokens.issue_token(database(request), person.id, "verify", person.email)
        await _mail(request, verify_mail(person.email, link(request, "verify", token)))
        return _render(
            request,
            "signin.html",
            400,
            email=email,
            error="Confirm your address first: we sent you a new link.",
        )
    return await _start_session(request, person)


@routes.post("/signout")
async def signout(request: web.Request) -> web.Response:
    visitor = request[VISITOR]
    if visitor.session_id:
        await request.app[CONSOLE].sessions.end(visitor.session_id)
    response = see_other(f"{PREFIX}/signin")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@routes.post("/signout-everywhere")
async def signout_everywhere(request: web.Request) -> web.Response:
    visitor = request[VISITOR]
    if visitor.person is not None:
        await request.app[CONSOLE].sessions.end_all(visitor.person.id)
    response = see_other(f"{PREFIX}/signin")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@routes.get("/signup")
async def signup_page(request: web.Request) -> web.Response:
    return _render(request, "signup.html", mode=request.app[CONSOLE].settings.signup)


@routes.post("/signup")
async def signup(request: web.Request) -> web.Response:
    state = request.app[CONSOLE]
    mode = state.settings.signup
    if mode != "open":
        return _render(request, "signup.html", 403, mode=mode)
    fields = await form_fields(request)
    email, password = fields.get("email", "").strip(), fields.get("password", "")
    try:
        address = people.checked_email(email)
        passwords.check_password_rules(password)
    except InvalidInput as error:
        return _render(request, "signup.html", 400, mode=mode, email=email, error=str(error))
    pool = database(request)
    existing = await people.find_person(pool, address)
    if existing is not None:
        # The answer is the same; the owner of the address is told how to get back in.
        if existing.is_active:
            token = await tokens.issue_token(pool, existing.id, "reset", existing.email)
            await _mail(request, reset_mail(existing.email, link(request, "reset", token)))
        return _message(request, "Check your inbox", SAME_ANSWER_SIGNUP)
    try:
        person = await people.create_person(pool, address)
    except DuplicateUser:  # a sign-up racing this one
        return _message(request, "Check your inbox", SAME_ANSWER_SIGNUP)
    await passwords.set_password(pool, person.id, password)
    token = await tokens.issue_token(pool, person.id, "verify", person.email)
    await _mail(request, verify_mail(person.email, link(request, "verify", token)))
    return _message(request, "Check your inbox", SAME_ANSWER_SIGNUP)


@routes.get("/verify")
async def verify_page(request: web.Request) -> web.Response:
    token = request.query.get("token", "")
    use = await tokens.peek_token(database(request), token, "verify")
    if use is None:
        return _message(request, "Link not valid", INVALID_LINK, 400)
    return _render(request, "verify.html", token=token, email=use.email)


@routes.post("/verify")
async def verify(request: web.Request) -> web.Response:
    fields = await form_fields(request)
    pool = database(request)
    use = await tokens.redeem_token(pool, fields.get("token", ""), "verify")
    if use is None:
        return _message(request, "Link not valid", INVALID_LINK, 400)
    person = await people.get_person(pool, use.user_id)
    if person is None:
        return _message(request, "Link not valid", INVALID_LINK, 400)
    request.app[CONSOLE].people.forget(person.id)
    if person.email != use.email:  # a change of address, proven by this link
        try:
            await people.set_email(pool, person.id, use.email)
        except DuplicateUser:
            return _message(request, "Address taken", "Another account uses that address.", 409)
        return _message(
            request, "Address changed", f"Your account's address is now {use.email}.", 200
        )
    await people.mark_verified(pool, person.id)
    return _message(request, "Address confirmed", "Your address is confirmed: you can sign in.")


@routes.get("/forgot")
async def forgot_page(request: web.Request) -> web.Response:
    return _render(request, "forgot.html")


@routes.post("/forgot")
async def forgot(request: web.Request) -> web.Response:
    fields = await form_fields(request)
    pool = database(request)
    person = await people.find_person(pool, fields.get("email", ""))
    if person is not None and person.is_active:
        token = await tokens.issue_token(pool, person.id, "reset", person.email)
        await _mail(request, reset_mail(person.email, link(request, "reset", token)))
    return _message(request, "Check your inbox", SAME_ANSWER_FORGOT)


async def _password_page(request: web.Request, purpose: tokens.Purpose) -> web.Response:
    token = request.query.get("token", "")
    use = await tokens.peek_token(database(request), token, purpose)
    if use is None:
        return _message(request, "Link not valid", INVALID_LINK, 400)
    page = "reset.html" if purpose == "reset" else "accept.html"
    return _render(request, page, token=token, email=use.email)


async def _set_password_by_link(request: web.Request, purpose: tokens.Purpose) -> web.Response:
    fields = await form_fields(request)
    token, password = fields.get("token", ""), fields.get("password", "")
    page = "reset.html" if purpose == "reset" else "accept.html"
    pool = database(request)
    try:
        passwords.check_password_rules(password)
        if password != fields.get("confirm", password):
            raise BadForm("the two passwords differ")
    except (InvalidInput, BadForm) as error:
        use = await tokens.peek_token(pool, token, purpose)
        if use is None:
            return _message(request, "Link not valid", INVALID_LINK, 400)
        return _render(request, page, 400, token=token, email=use.email, error=str(error))
    redeemed = await tokens.redeem_token(pool, token, purpose)
    if redeemed is None:
        return _message(request, "Link not valid", INVALID_LINK, 400)
    person = await people.get_person(pool, redeemed.user_id)
    if person is None or not person.is_active:
        return _message(request, "Link not valid", INVALID_LINK, 400)
    await passwords.set_password(pool, person.id, password)
    # Following the link proved the address.
    person = await people.mark_verified(pool, person.id)
    await request.app[CONSOLE].sessions.end_all(person.id)
    return await _start_session(request, person)


@routes.get("/reset")
async def reset_page(request: web.Request) -> web.Response:
    return await _password_page(request, "reset")


@routes.post("/reset")
async def reset(request: web.Request) -> web.Response:
    return await _set_password_by_link(request, "reset")


@routes.get("/accept")
async def accept_page(request: web.Request) -> web.Response:
    return await _password_page(request, "invite")


@routes.post("/accept")
async def accept(request: web.Request) -> web.Response:
    return await _set_password_by_link(request, "invite")


async def invite(request: web.Request, email: str) -> str:
    """Invite `email` (a new user, or one who never set a password): mail the link;
    the address invited."""
    pool = database(request)
    person = await people.find_person(pool, email)
    if person is None:
        person = await people.create_person(pool, email)
    elif person.has_password:
        raise BadForm("that address has an account already")
    token = await tokens.issue_token(pool, person.id, "invite", person.email)
    request.app[CONSOLE].mailer.send_later(
        invite_mail(person.email, link(request, "accept", token))
    )
    return person.email


async def change_email(request: web.Request, person: people.Person, email: str) -> None:
    """Mail a link to the new address; the account moves there when it is followed."""
    pool = database(request)
    address = people.checked_email(email)
    token = await tokens.issue_token(pool, person.id, "verify", address)
    await _mail(request, change_email_mail(address, link(request, "verify", token)))
