"""Signing in and out of the pages: the API token, given once in the sign-in form, is exchanged
for a session (`service/sessions.py`) whose id the cookie holds (HttpOnly, SameSite=Strict,
Secure over https); the session is checked on every request, so signing out, an idle or
expired session and a revoked token sign the browser out at its next request."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, status
from fastapi.responses import RedirectResponse, Response

from flowlang.runtime.engine import Engine
from flowlang.runtime.ports import User
from flowlang.runtime.users import MAX_TOKEN
from flowlang.service.access import (
    SESSION_COOKIE,
    check_same_origin,
    on_store,
    user_of_session,
    user_of_token,
)
from flowlang.service.agent_api import now_of, presence_of
from flowlang.service.sessions import open_session, session_hash
from flowlang.service.state import service_of
from flowlang.web.render import page

router = APIRouter(include_in_schema=False)
HOME = {"agent": "/agent", "supervisor": "/supervisor", "admin": "/supervisor"}


def gone_offline(engine: Engine, agent: str) -> None:
    """The agent offline in the ACD (unless they are already, or it does not know them)."""
    if presence_of(engine, agent).state != "offline":
        engine.set_agent_state(agent, "offline", now_of(engine))


def home_of(user: User) -> str:
    """The page a user's role opens on."""
    return HOME.get(user.role, "/signin")


async def page_user(request: Request) -> User | None:
    """The user the session cookie stands for (None: none, or the session has ended)."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    found = await user_of_session(service_of(request), session_id)
    return found[0] if found is not None else None


async def signed_in(request: Request, *roles: str) -> User | Response:
    """The page's user, or where to send the browser instead: the sign-in page when signed
    out, their own page when it is not for their role."""
    user = await page_user(request)
    if user is None:
        return RedirectResponse("/signin", status.HTTP_303_SEE_OTHER)
    if user.role not in roles:
        return RedirectResponse(home_of(user), status.HTTP_303_SEE_OTHER)
    return user


def secure(request: Request) -> bool:
    """Whether the browser reaches the service over https (directly or through --public-url)."""
    public_url = service_of(request).settings.public_url or ""
    return request.url.scheme == "https" or public_url.startswith("https://")


@router.get("/")
async def root(request: Request) -> Response:
    """The signed-in user's page, or the sign-in page."""
    user = await page_user(request)
    return RedirectResponse(home_of(user) if user else "/signin", status.HTTP_303_SEE_OTHER)


@router.get("/signin")
async def signin_form(request: Request) -> Response:
    user = await page_user(request)
    if user is not None:
        return RedirectResponse(home_of(user), status.HTTP_303_SEE_OTHER)
    return page(request, "signin.html.j2")


@router.post("/signin")
async def signin(request: Request) -> Response:
    """Check the token of the form and open a session for its user, whose id the cookie
    keeps; a wrong token shows the form again with the error (401)."""
    service = service_of(request)
    check_same_origin(request, service.settings.public_url, need_header=False)
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    token = (form.get("token") or [""])[0].strip()
    user = await user_of_token(service, token) if 0 < len(token) <= MAX_TOKEN else None
    if user is None:
        error = (
            "Enter your API token (from flowlang users add)."
            if not token
            else "That token is unknown, expired or has been revoked. Ask your administrator "
            "for a new one (flowlang users add)."
        )
        return page(request, "signin.html.j2", error=error, status_code=401)
    signed, rules, now = user, service.session_rules, datetime.now(UTC)
    session_id = await on_store(service, lambda store: open_session(store, signed, rules, now))
    response = RedirectResponse(home_of(user), status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        httponly=True,
        samesite="strict",
        secure=secure(request),
        path="/",
    )
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    """End the session and forget its cookie (the token itself stays valid until revoked); an
    agent goes offline first, so that no work is offered (nor auto-answered) for someone who
    has left. What they hold stays theirs, as when they choose offline (docs/workspace.md)."""
    service = service_of(request)
    check_same_origin(request, service.settings.public_url, need_header=False)
    user = await page_user(request)
    if user is not None and user.role == "agent":
        await service.worker.call(lambda engine: gone_offline(engine, user.name))
    digest = session_hash(request.cookies.get(SESSION_COOKIE, ""))
    if digest is not None:
        await on_store(service, lambda store: store.end_session(digest))
    response = RedirectResponse("/signin", status.HTTP_303_SEE_OTHER)
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=secure(request)
    )
    return response
