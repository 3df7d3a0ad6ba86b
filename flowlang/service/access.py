"""Who may call the API: a bearer token on every request, the role it belongs to, and for an
agent, only the interactions offered or assigned to them.

A token is read from the `Authorization: Bearer ...` header; the browser pages (`flowlang/web/`)
are signed in by the session cookie the sign-in page sets instead, which holds a session id,
never the token (`sessions.py`). A request that carries a token or a session id in its URL is
refused (URLs end up in proxy logs, browser history and `Referer` headers); the live stream's
short-lived ticket (`stream.py`) is the one exception.

A cookie is sent by the browser on its own, so a state-changing request authenticated by it
must prove it comes from one of the service's own pages (`check_same_origin`): its `Origin` is
the service's, and it carries the `X-Flowlang-Request` header, which a page of another origin
cannot add without a CORS preflight that the service never grants.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, TypeVar
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from flowlang.runtime.agent_rules import Refusal
from flowlang.runtime.engine import Engine
from flowlang.runtime.ports import User
from flowlang.runtime.users import MAX_TOKEN, TOKEN_PREFIX, authenticate, in_force
from flowlang.service.sessions import SESSION_PREFIX, session_hash, session_user
from flowlang.service.state import Service, service_of
from flowlang.store import unreachable_errors
from flowlang.store.sql import SqlStore

BEARER = HTTPBearer(auto_error=False, description="an API token from `flowlang users add`")
TOKEN_QUERY_NAMES = frozenset({"token", "access_token", "api_key", "apikey", "key", "auth"})
SESSION_COOKIE = "flowlang_session"
"""The browser's session cookie: a session id (`sessions.py`), HttpOnly, SameSite=Strict."""
REQUEST_HEADER = "X-Flowlang-Request"
"""The header the pages' scripts add to every request (see `check_same_origin`)."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OFFERED, ASSIGNED, AFTER_CALL_WORK = "offered", "assigned", "after_call_work"
T = TypeVar("T")

# Refusals the engine gives an agent's own action: the state of their work does not allow it
# (403), or the wrap-up code they gave is wrong (422).
REFUSAL_STATUS = {
    "unknown_conversation": status.HTTP_403_FORBIDDEN,
    "not_holder": status.HTTP_403_FORBIDDEN,
    "offer_not_open": status.HTTP_403_FORBIDDEN,
    "not_in_after_call_work": status.HTTP_403_FORBIDDEN,
    "wrap_up_required": status.HTTP_422_UNPROCESSABLE_CONTENT,
    "wrap_up_invalid": status.HTTP_422_UNPROCESSABLE_CONTENT,
}


def refused(code: str, reason: str, status_code: int = status.HTTP_403_FORBIDDEN) -> HTTPException:
    """An error response whose body is `{"detail": {"code": ..., "reason": ...}}`."""
    return HTTPException(status_code, detail={"code": code, "reason": reason})


def unauthorized(reason: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail={"code": "unauthorized", "reason": reason},
        headers={"WWW-Authenticate": "Bearer"},
    )


def token_in_url(request: Request) -> bool:
    """Whether the URL carries what looks like an API token or a session id."""
    return any(
        name.lower() in TOKEN_QUERY_NAMES or value.startswith((TOKEN_PREFIX, SESSION_PREFIX))
        for name, value in request.query_params.multi_items()
    )


@dataclass(frozen=True)
class Credential:
    """What a request was signed in with: `user`'s API token (its hash), or a browser session
    (its id's hash, `session`) opened with that token."""

    user: str
    token_hash: str
    session: str | None = None


async def on_store(service: Service, read: Callable[[SqlStore], T]) -> T:
    """`read` on the store: on a PostgreSQL store on the sign-in reader's connection
    (`tokens.py`; 503 while the store cannot be reached), else on the engine's worker."""
    if service.tokens is not None:
        try:
            return await asyncio.to_thread(service.tokens.run, read)
        except unreachable_errors() as exc:  # (a loss: logged by the reader)
            raise HTTPException(
                503,
                "the store cannot be reached right now; try again",
                headers={"Retry-After": "1"},
            ) from exc
    return await service.worker.call(lambda _engine: read(service.store))


async def user_of_token(service: Service, token: str) -> User | None:
    """The user a token belongs to (None: unknown, revoked or expired). What cannot be a token
    costs no read of the store."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN:
        return None
    now = datetime.now(UTC)
    return await on_store(service, lambda store: authenticate(store, token, now))


async def user_of_session(service: Service, session_id: str) -> tuple[User, str] | None:
    """The user of a browser session and its id's hash (None: no such session, or it ended:
    signed out, idle too long, past its lifetime, its token revoked or expired)."""
    digest = session_hash(session_id)
    if digest is None:
        return None
    now, rules = datetime.now(UTC), service.session_rules
    user = await on_store(service, lambda store: session_user(store, digest, rules, now))
    return (user, digest) if user is not None else None


async def still_signed_in(service: Service, credential: Credential) -> User | None:
    """The user `credential` still signs in now (None: revoked, expired, signed out)."""
    now, rules, session = datetime.now(UTC), service.session_rules, credential.session
    if session is not None:
        return await on_store(service, lambda store: session_user(store, session, rules, now))

    def read(store: SqlStore) -> User | None:
        user = store.user(credential.user)
        if user is None or not in_force(user, now):
            return None
        return user if hmac.compare_digest(user.token_hash, credential.token_hash) else None

    return await on_store(service, read)


def own_origin(request: Request, public_url: str | None) -> set[str]:
    """The origins the service's pages are served from: the one the request was sent to, and
    --public-url's."""
    origins = {f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"}
    if public_url:
        parts = urlsplit(public_url)
        origins.add(f"{parts.scheme}://{parts.netloc}")
    return origins


def check_same_origin(request: Request, public_url: str | None, need_header: bool) -> None:
    """Refuse (403 `cross_site`) a state-changing request authenticated by the cookie that a
    page of another site could have made: its `Origin` must be the service's own and, for
    scripted requests (`need_header`), it must carry `X-Flowlang-Request`."""
    if request.method in SAFE_METHODS:
        return
    origin = request.headers.get("origin")
    if origin is None or origin not in own_origin(request, public_url):
        raise refused(
            "cross_site",
            f"this request came from {origin or 'an unknown origin'}, not from the service's own "
            "pages; it was refused (cookie sign-in only works from the service's pages)",
        )
    if need_header and request.headers.get(REQUEST_HEADER) is None:
        raise refused(
            "cross_site",
            f"a request signed in by cookie needs the {REQUEST_HEADER} header (the service's "
            "pages add it); it was refused",
        )


async def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
) -> User:
    """The user of the request's bearer token, or of the browser's session cookie: 401 when it
    is missing, unknown, revoked, expired or signed out; 403 for a cookie on a cross-site state
    change. What it was signed in with is kept as `request.state.credential`."""
    if token_in_url(request):
        raise unauthorized(
            "an API token goes in the Authorization header, never in the URL (URLs are "
            "logged); this request was refused"
        )
    service = service_of(request)
    if credentials is not None:
        user = await user_of_token(service, credentials.credentials)
        if user is None:
            raise unauthorized("the API token is unknown, expired or has been revoked")
        request.state.credential = Credential(user.name, user.token_hash)
        return user
    if SESSION_COOKIE not in request.cookies:
        raise unauthorized("this route needs an API token: Authorization: Bearer <token>")
    check_same_origin(request, service.settings.public_url, need_header=True)
    found = await user_of_session(service, request.cookies[SESSION_COOKIE])
    if found is None:
        raise unauthorized("the session has ended (signed out, or expired): sign in again")
    user, digest = found
    request.state.credential = Credential(user.name, user.token_hash, digest)
    return user


def credential_of(request: Request) -> Credential:
    """What `current_user` found the request signed in with."""
    credential: Credential = request.state.credential
    return credential


def role(*roles: str) -> Callable[[User], Awaitable[User]]:
    """A dependency: the request's user, who must have one of `roles` (403 otherwise)."""

    async def check(user: Annotated[User, Depends(current_user)]) -> User:
        if user.role not in roles:
            raise refused(
                "wrong_role",
                f"this route is for {' and '.join(r + 's' for r in roles)}; "
                f"{user.name} is {'an' if user.role[0] in 'aeiou' else 'a'} {user.role}",
            )
        return user

    return check


AgentUser = Annotated[User, Depends(role("agent"))]
SupervisorUser = Annotated[User, Depends(role("supervisor", "admin"))]
AdminUser = Annotated[User, Depends(role("admin"))]


@dataclass(frozen=True)
class Work:
    """An interaction of one agent's: offered to them, assigned to them, or in their after-call
    work."""

    conversation_id: str
    state: str  # offered | assigned | after_call_work
    offer_ends_at: datetime | None = None
    wrap_up: str | None = None  # the code given so far (after-call work may still change it)


def work_of(engine: Engine, agent: str, now: datetime) -> list[Work]:
    """What `agent` may act on now, by conversation id (runs on the engine's worker)."""
    found: dict[str, Work] = {}
    for interaction in engine.acd.work_views(agent, now):
        state = {"offered": OFFERED, "active": ASSIGNED}.get(interaction.phase)
        found[interaction.conversation_id] = Work(
            interaction.conversation_id,
            state or AFTER_CALL_WORK,
            interaction.offer_ends_at,
            interaction.wrap_up,
        )
    return sorted(found.values(), key=lambda w: w.conversation_id)


def theirs(engine: Engine, agent: str, conversation_id: str, now: datetime) -> Work | None:
    """The agent's work on this conversation, or None when it is not offered or assigned to
    them (or does not exist: the answer is the same, so that ids cannot be probed)."""
    conv = engine.store.get_conversation(conversation_id)
    if conv is None:
        return None
    if conv.status == "with_agent" and conv.agent == agent:
        return Work(conv.id, ASSIGNED)
    for work in work_of(engine, agent, now):
        if work.conversation_id == conversation_id:
            return work
    if conv.wrap_up_agent == agent and conv.status != "with_agent":
        return Work(conv.id, AFTER_CALL_WORK)
    return None


def not_theirs(agent: str, conversation_id: str) -> HTTPException:
    return refused(
        "not_yours",
        f"conversation {conversation_id} is not offered or assigned to {agent}",
    )


def refusal_error(refusal: Refusal) -> HTTPException:
    """The engine's refusal of an agent's action, as the response the agent gets."""
    return refused(
        refusal.code, refusal.reason, REFUSAL_STATUS.get(refusal.code, status.HTTP_403_FORBIDDEN)
    )
