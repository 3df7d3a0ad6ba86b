"""Each agent's live stream (Server-Sent Events): offers, customer messages, withdrawals,
presence, reply-window warnings and messages the outbox gave up on, pushed as they commit.

`AgentFeed` listens to the engine's event log (`Engine.listen`, on the worker thread) and hands
each agent's events to their open streams on the event loop. A stream starts with a `hello`
event listing the agent's work, re-checks what it was opened with (the token, or the browser's
session) every `recheck` seconds and ends with a `closed` event when that no longer signs the
agent in: the token revoked or expired, the session signed out or expired.

A browser's EventSource cannot send an Authorization header, so a stream may instead be opened
with a ticket: `POST /api/agent/stream-ticket` (with the token in the header) gives one, good
for one stream, within `TICKET_SECONDS`; a user holds at most `TICKETS_HELD` unused ones (a
new one beyond replaces their oldest). It is the only credential the API takes in a URL.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel

from flowlang.channels.registry import builtin_registry
from flowlang.runtime.engine import Engine
from flowlang.runtime.ports import Acd, ConversationView, User
from flowlang.service.access import (
    BEARER,
    SESSION_COOKIE,
    AgentUser,
    Credential,
    credential_of,
    current_user,
    refused,
    still_signed_in,
    unauthorized,
    work_of,
)
from flowlang.service.agent_api import item_of, now_of, presence_of
from flowlang.service.state import Service, service_of
from flowlang.service.worker import WorkerStopped
from flowlang.store import Store

TICKET_SECONDS = 60
TICKETS_HELD = 16
STREAMS_PER_AGENT = 8
"""How many streams one agent may have open at once (tabs, windows, a reconnect not yet
noticed): beyond, a stream is refused, so that no one user holds the connections the server
admits."""
"""How many unused tickets one user holds at once: a new one beyond replaces their oldest (so
that asking for tickets over and over costs the service neither memory nor time)."""
CLOSED = "signed out: the API token was revoked or expired, or the session ended"
WINDOW_WARNINGS = (timedelta(minutes=10),)
"""How long before a reply window closes the agent is warned (and again when it has closed)."""
WROTE_KEPT = 10_000

# Notices that take an offer or a conversation away from the agent it was with.
TAKEN_AWAY = frozenset(
    {
        "declined",
        "requeued",
        "not_responding",
        "withdrawn",
        "expired",
        "disconnected",
        "transferred",
    }
)
ENDED = frozenset({"completed", "wrap_up_ended"})
RECENT_MESSAGES = 20  # how far back a streamed message is looked for in the history


@dataclass
class _Stream:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)


class AgentFeed:
    """The engine's log events, as each agent's stream events (see the module doc)."""

    def __init__(
        self, engine: Engine, store: Store, recheck: float = 5.0, heartbeat: float = 15.0
    ) -> None:
        self.engine = engine
        self.store = store  # the engine's: the history gives a customer message's text
        self.recheck = recheck  # seconds between two checks that a stream's token still holds
        self.heartbeat = heartbeat  # seconds between two keep-alive comments
        self._streams: dict[str, list[_Stream]] = {}
        self._lock = threading.Lock()
        self._with: dict[str, str] = {}  # conversation -> the agent last offered or given it
        # conversation -> the agent who last replied in it, kept through after-call work (a
        # reply may fail after its conversation was completed); at most WROTE_KEPT, oldest out
        self._wrote: dict[str, str] = {}
        # ticket -> what it was given for and when it expires, oldest first
        self._tickets: dict[str, tuple[Credential, datetime]] = {}
        self._held: dict[str, deque[str]] = {}  # user -> their unused tickets, oldest first

    # ------------------------------------------------------------------ streams (event loop)
    def open(self, agent: str) -> _Stream | None:
        """A new stream of `agent`'s events; None when they have STREAMS_PER_AGENT open."""
        stream = _Stream(asyncio.get_running_loop())
        with self._lock:
            held = self._streams.setdefault(agent, [])
            if len(held) >= STREAMS_PER_AGENT:
                return None
            held.append(stream)
        return stream

    def close(self, agent: str, stream: _Stream) -> None:
        with self._lock:
            open_ = self._streams.get(agent, [])
            if stream in open_:
                open_.remove(stream)
            if not open_:
                self._streams.pop(agent, None)

    # ------------------------------------------------------------------ tickets
    def ticket(self, credential: Credential, now: datetime) -> tuple[str, datetime]:
        """A one-use ticket that opens the stream of `credential`'s user until it expires."""
        ticket = secrets.token_urlsafe(32)
        expires = now + timedelta(seconds=TICKET_SECONDS)
        with self._lock:
            for old, (_, ends) in list(islice(self._tickets.items(), TICKETS_HELD)):
                if ends > now:
                    break  # (they expire in the order they were given)
                self._forget(old)
            held = self._held.get(credential.user)
            if held is not None and len(held) >= TICKETS_HELD:
                self._forget(held[0])
            self._tickets[ticket] = (credential, expires)
            self._held.setdefault(credential.user, deque()).append(ticket)
        return ticket, expires

    def redeem(self, ticket: str, now: datetime) -> Credential | None:
        """What the ticket was given for; None when unknown, used or expired."""
        with self._lock:
            found = self._forget(ticket)
        if found is None or found[1] <= now:
            return None
        return found[0]

    def _forget(self, ticket: str) -> tuple[Credential, datetime] | None:
        """Drop a ticket (under the lock): what it was given for, None when unknown."""
        found = self._tickets.pop(ticket, None)
        if found is not None:
            held = self._held[found[0].user]
            held.remove(ticket)
            if not held:
                del self._held[found[0].user]
        return found

    # ------------------------------------------------------------------ the listener (worker)
    def __call__(self, event: Mapping[str, Any]) -> None:
        self._writer(event)
        with self._lock:
            if not self._streams:  # nobody listens: no store reads on the event's path
                self._follow(event)
                return
        for agent, item in self.translate(event):
            self.push(agent, item)

    def _writer(self, event: Mapping[str, Any]) -> None:
        """Keep who last replied in each conversation, until their after-call work ends."""
        kind, conv_id = event["kind"], event.get("conversation_id")
        if not conv_id:
            return
        if kind == "message_out" and event.get("agent"):
            self._wrote.pop(conv_id, None)
            self._wrote[conv_id] = str(event["agent"])
            if len(self._wrote) > WROTE_KEPT:
                del self._wrote[next(iter(self._wrote))]
        elif kind == "wrap_up_ended" or kind in TAKEN_AWAY:
            self._wrote.pop(conv_id, None)

    def _follow(self, event: Mapping[str, Any]) -> None:
        """Keep who has each conversation, for a stream opened later."""
        kind, conv_id = event["kind"], event.get("conversation_id")
        if conv_id and kind in ("offered", "accepted") and event.get("agent"):
            self._with[conv_id] = event["agent"]
        elif conv_id and (kind in TAKEN_AWAY or kind in ENDED):
            self._with.pop(conv_id, None)

    def push(self, agent: str, item: dict[str, Any]) -> None:
        with self._lock:
            streams = list(self._streams.get(agent, []))
        for stream in streams:
            stream.loop.call_soon_threadsafe(stream.queue.put_nowait, item)

    def translate(self, event: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """The stream events one log event makes, and the agent each is for."""
        kind = str(event["kind"])
        conv_id = event.get("conversation_id")
        agent = event.get("agent")
        if kind == "agent_state" and agent:
            return [(agent, {"type": "presence", "state": event.get("state")})]
        if not conv_id:
            return []
        if kind in ("offered", "accepted") and agent:
            self._with[conv_id] = agent
            conv = self.engine.store.get_conversation(conv_id)  # read once, for both events
            item = self.describe(conv_id, conv)
            item["type"] = "offer" if kind == "offered" else "assigned"
            return [(agent, item), *self._window(agent, conv_id, conv)]
        if kind in TAKEN_AWAY:
            owner = agent or self._with.get(conv_id)
            if kind == "transferred":
                owner = agent  # the agent who transferred it
            self._with.pop(conv_id, None)
            if not owner:
                return []
            taken = [(owner, {"type": "withdrawn", "conversation_id": conv_id, "reason": kind})]
            if kind == "not_responding":  # the ACD set them so: no offers until they are back
                taken.append((owner, {"type": "presence", "state": kind}))
            return taken
        if kind == "after_call_work" and agent:
            return [(agent, {"type": "after_call_work", "conversation_id": conv_id})]
        if kind in ENDED:
            self._with.pop(conv_id, None)
            return []
        if kind == "message_in":
            return self._message(conv_id, event)
        if kind == "window_closed":
            return self._closed_by_vendor(conv_id, event)
        return []

    def delivery_failed(self, event: Mapping[str, Any]) -> None:
        """(A dispatcher listener, on its thread) A message the outbox gave up on: the agent
        who has its conversation (or, in after-call work, last replied in it) is told, with the
        reason."""
        conv_id = event.get("conversation_id")
        if event.get("kind") != "delivery_failed" or not event.get("given_up") or not conv_id:
            return
        agent = self._with.get(conv_id) or self._wrote.get(conv_id)
        if agent:
            self.push(agent, undelivered_event(conv_id, event))

    def describe(self, conv_id: str, conv: ConversationView | None) -> dict[str, Any]:
        """What an agent is shown of a conversation (`conv`, as the store has it) in an offer
        or an assignment."""
        if conv is None:
            return {"conversation_id": conv_id}
        interaction = self.engine.acd.interaction_view(conv_id)
        offer_ends_at = interaction.offer_ends_at if interaction else None
        return {
            "conversation_id": conv_id,
            "channel": conv.channel,
            "account": conv.account,
            "customer_id": conv.customer_id,
            "queue": conv.queue,
            "offer_ends_at": _iso(offer_ends_at),
            "window_closes_at": _iso(self.engine.policy.window_closes_at(conv)),
        }

    def _message(self, conv_id: str, event: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        # Who has it, from memory: most messages are nobody's, and read nothing
        agent = self._with.get(conv_id) or _given_to(self.engine.acd, conv_id)
        if not agent:
            return []
        conv = self.engine.store.get_conversation(conv_id)
        if conv is None:
            return []
        item: dict[str, Any] = {"type": "message", "conversation_id": conv_id}
        found = self._received(conv.customer_id, conv_id, event.get("event_id"))
        if found is not None:
            item.update(
                seq=found["seq"],
                text=found["content"].get("text", ""),
                kind=found["content"].get("kind", "message"),
                at=_iso(found["at"]),
            )
        return [(agent, item), *self._window(agent, conv_id, conv)]

    def _received(
        self, customer_id: str, conv_id: str, event_id: str | None
    ) -> Mapping[str, Any] | None:
        """The customer's message the event is of: by its event id among their latest
        messages (the flow's replies, and other messages of the same turn, may have come
        after it), else their latest message in the conversation (a log written before
        events carried the id)."""
        page = self.store.history(customer_id, limit=RECENT_MESSAGES)
        received = [
            m
            for m in reversed(page.messages)
            if m.get("direction", "in") == "in" and m.get("conversation_id", conv_id) == conv_id
        ]
        if event_id is not None:
            return next((m for m in received if m["content"].get("event_id") == event_id), None)
        return received[0] if received else None

    def _closed_by_vendor(
        self, conv_id: str, event: Mapping[str, Any]
    ) -> list[tuple[str, dict[str, Any]]]:
        """The vendor refused a message because it counts the window as closed (WhatsApp
        131047): the agent who has the conversation is told at once."""
        conv = self.engine.store.get_conversation(conv_id)
        agent = conv.agent if conv is not None and conv.status == "with_agent" else None
        agent = agent or self._with.get(conv_id)
        if conv is None or not agent:
            return []
        item = window_event(conv.channel, conv_id, event["at"], event["at"])
        code = event.get("error_code", "")
        item["text"] = (
            f"{channel_name(conv.channel)} refused a message (error {code}): the reply window "
            "is closed; only a template can be sent until the customer writes"
        )
        item["error_code"] = code
        return [(agent, item)]

    def _window(
        self, agent: str, conv_id: str, conv: ConversationView | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        conv = conv or self.engine.store.get_conversation(conv_id)
        closes = self.engine.policy.window_closes_at(conv) if conv is not None else None
        if conv is None or closes is None:
            return []
        return [(agent, window_event(conv.channel, conv_id, closes, now_of(self.engine)))]


def _given_to(acd: Acd, conv_id: str) -> str | None:
    """The agent the ACD has given the conversation to (accepted), which the feed may have seen
    no event of: one given back to them by a new leader's recovery."""
    interaction = acd.interaction_view(conv_id)
    if interaction is None or interaction.phase != "active":
        return None
    return interaction.agent


def window_event(
    channel: str, conv_id: str, closes_at: datetime, now: datetime | None
) -> dict[str, Any]:
    """A `window` event: when the channel's reply window closes, in words when `now` is given
    ("WhatsApp Business reply window closes in 10 min")."""
    item: dict[str, Any] = {
        "type": "window",
        "conversation_id": conv_id,
        "channel": channel,
        "closes_at": closes_at.isoformat(),
    }
    if now is not None:
        name = channel_name(channel)
        left = closes_at - now
        if left <= timedelta(0):
            item["text"] = f"{name} reply window has closed"
            item["minutes_left"] = 0
        else:
            minutes = max(1, int(left.total_seconds() // 60))
            item["text"] = f"{name} reply window closes in {minutes} min"
            item["minutes_left"] = minutes
    return item


def undelivered_event(conv_id: str, event: Mapping[str, Any]) -> dict[str, Any]:
    """A `delivery_failed` stream event: the message the vendor never got, and why."""
    channel = str(event.get("channel", ""))
    error = str(event.get("error") or event.get("reason") or "")
    return {
        "type": "delivery_failed",
        "conversation_id": conv_id,
        "message_id": event.get("message_id"),
        "channel": channel,
        "error": error,
        "permanent": bool(event.get("permanent")),
        "text": not_delivered(channel, error),
    }


def not_delivered(channel: str, error: str) -> str:
    """What the agent is told of a message given up on ("Not delivered on WhatsApp Business:
    HTTP 400, error 131047 (re-engagement message; ...): ...")."""
    return f"Not delivered on {channel_name(channel)}: {error.removeprefix(f'{channel}: ')}"


def channel_name(channel: str) -> str:
    registry = builtin_registry()
    if channel not in registry:
        return channel
    return registry[channel].name.split(" (")[0]


def sse(item: Mapping[str, Any]) -> str:
    """One Server-Sent Event: its type as `event:`, the rest as JSON `data:`."""
    data = {k: v for k, v in item.items() if k != "type"}
    return f"event: {item['type']}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def checker(service: Service, credential: Credential) -> Callable[[], Awaitable[bool]]:
    """A stream's check that `credential` still signs its user in. While the store cannot be
    read (503), it says yes: an outage is no sign-out, and the next check asks again."""

    async def valid() -> bool:
        try:
            return await still_signed_in(service, credential) is not None
        except HTTPException:
            return True

    return valid


class Warnings:
    """The reply-window warnings one stream owes its agent, by conversation."""

    def __init__(self, before: tuple[timedelta, ...] = WINDOW_WARNINGS) -> None:
        self.before = sorted(before, reverse=True)
        self._closes: dict[str, tuple[str, datetime, int]] = {}  # conv -> channel, at, given

    def track(self, item: Mapping[str, Any]) -> None:
        if item.get("type") == "window":
            closes = datetime.fromisoformat(str(item["closes_at"]))
            self._closes[str(item["conversation_id"])] = (str(item["channel"]), closes, 0)
        elif item.get("type") == "withdrawn":
            self._closes.pop(str(item["conversation_id"]), None)

    def due(self, now: datetime) -> list[dict[str, Any]]:
        """Warnings that are due by `now` and not given yet (each threshold once, then the
        closing itself)."""
        out = []
        for conv_id, (channel, closes, given) in list(self._closes.items()):
            marks = [closes - b for b in self.before] + [closes]
            reached = sum(1 for mark in marks if mark <= now)
            if reached > given:
                out.append(window_event(channel, conv_id, closes, now))
                if reached == len(marks):
                    del self._closes[conv_id]
                else:
                    self._closes[conv_id] = (channel, closes, reached)
        return out

    def next_at(self) -> datetime | None:
        marks = [
            mark
            for _channel, closes, given in self._closes.values()
            for mark in ([closes - b for b in self.before] + [closes])[given:]
        ]
        return min(marks, default=None)


async def events(
    feed: AgentFeed,
    agent: str,
    stream: _Stream,
    hello: dict[str, Any],
    valid: Callable[[], Awaitable[bool]],
    now: Callable[[], datetime],
) -> AsyncIterator[str]:
    """The stream's text: `hello`, then the agent's events as they come, window warnings when
    due, a comment line as a heartbeat; a `closed` event and the end once `valid()` (awaited
    every `feed.recheck` seconds) says the token is revoked; just the end when the service stops
    (no `closed`: that would sign a browser out). `stream` (opened before `hello`
    was read, so that nothing falls between) is closed at the end."""
    recheck, heartbeat = feed.recheck, feed.heartbeat
    warnings = Warnings()
    try:
        for item in hello.get("work", []):
            if item.get("window_closes_at"):
                warnings.track(
                    window_event(
                        item["channel"],
                        item["conversation_id"],
                        datetime.fromisoformat(item["window_closes_at"]),
                        None,
                    )
                )
        yield sse(hello)
        loop = asyncio.get_running_loop()
        next_check = loop.time() + recheck
        next_beat = loop.time() + heartbeat
        while True:
            for item in warnings.due(now()):
                yield sse(item)
            wait = min(next_check, next_beat) - loop.time()
            upcoming = warnings.next_at()
            if upcoming is not None:
                wait = min(wait, (upcoming - now()).total_seconds())
            try:
                item = await asyncio.wait_for(stream.queue.get(), timeout=max(wait, 0.0))
            except TimeoutError:
                item = None
            if item is not None:
                warnings.track(item)
                yield sse(item)
            if loop.time() >= next_check:
                next_check = loop.time() + recheck
                try:
                    still = await valid()
                except WorkerStopped:
                    return  # the service is stopping: the browser's EventSource reconnects
                if not still:
                    yield sse({"type": "closed", "reason": CLOSED})
                    return
            if loop.time() >= next_beat:
                next_beat = loop.time() + heartbeat
                yield ": keep-alive\n\n"
    finally:
        feed.close(agent, stream)


# ---------------------------------------------------------------------- routes
router = APIRouter(prefix="/api/agent", tags=["agent"])


class Ticket(BaseModel):
    """Opens one stream (`GET /api/agent/stream?ticket=...`) until `expires_at`."""

    ticket: str
    expires_at: datetime


def feed_of(request: Request) -> AgentFeed:
    feed: AgentFeed = request.app.state.agent_feed
    return feed


@router.post("/stream-ticket", response_model=Ticket)
async def stream_ticket(user: AgentUser, request: Request) -> Ticket:
    """A one-use ticket for a browser's EventSource, which cannot send the token header."""
    engine = service_of(request).worker.engine
    ticket, expires = feed_of(request).ticket(credential_of(request), now_of(engine))
    return Ticket(ticket=ticket, expires_at=expires)


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
)
async def stream(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ticket: Annotated[str | None, Query(description="from POST /api/agent/stream-ticket")] = None,
) -> StreamingResponse:
    """The agent's live events (see docs/api.md): the token in the Authorization header, the
    browser's session cookie, or a ticket in the URL."""
    service, feed = service_of(request), feed_of(request)
    engine = service.worker.engine
    user: User | None
    if credentials is not None or (ticket is None and SESSION_COOKIE in request.cookies):
        user = await current_user(request, credentials)
        credential = credential_of(request)
    elif ticket is not None:
        redeemed = feed.redeem(ticket, now_of(engine))
        if redeemed is None:
            raise unauthorized("the stream ticket is unknown, used or expired; ask for another")
        credential = redeemed
        user = await still_signed_in(service, credential)
        if user is None:
            raise unauthorized(
                "the API token the ticket was given for was revoked or expired, or its session "
                "ended"
            )
    else:
        raise unauthorized("the stream needs an API token (Authorization header) or a ticket")
    if user.role != "agent":
        raise refused("wrong_role", f"the live stream is for agents; {user.name} is a {user.role}")
    agent = user.name
    opened = feed.open(agent)
    if opened is None:
        raise refused(
            "too_many_streams",
            f"{agent} has {STREAMS_PER_AGENT} live streams open already (other tabs or windows); "
            "close one first",
            status.HTTP_429_TOO_MANY_REQUESTS,
        )

    def hello(engine: Engine) -> dict[str, Any]:
        work = work_of(engine, agent, now_of(engine))
        return {
            "type": "hello",
            "agent": agent,
            "presence": presence_of(engine, agent).state,
            "work": [item_of(engine, service, w).model_dump(mode="json") for w in work],
        }

    try:
        first = await service.worker.call(hello)
    except BaseException:
        feed.close(agent, opened)
        raise

    return StreamingResponse(
        events(feed, agent, opened, first, checker(service, credential), lambda: now_of(engine)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
