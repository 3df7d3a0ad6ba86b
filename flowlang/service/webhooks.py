"""Channel webhooks: `POST /webhooks/{channel}` and each vendor's subscription handshake.

A request is checked (signature), split into its events, made durable and answered 200 before
any of its events is processed. Refusals: an unknown channel 404; a missing or wrong signature
401 (the request did not authenticate; nothing is kept, since it may not come from the
vendor); a handshake with the wrong token 403. An unreadable payload or event is answered 200
and kept as a dead letter (the vendor would otherwise retry it for days); so is an event of
another channel (an Instagram event posted to /webhooks/messenger), never processed.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections import Counter
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from flowlang.account_names import account_key
from flowlang.channels.inbound import Part, read
from flowlang.channels.inbound.x import subscribed_user
from flowlang.channels.ingest import part_letter, verify_request
from flowlang.channels.signatures import SignatureError, x_crc_response
from flowlang.events import InboundEvent
from flowlang.service.state import AccountNames, Gate, gate_of
from flowlang.service.worker import Ack, Letter, WorkerStopped
from flowlang.store import unreachable_errors

log = logging.getLogger("flowlang.service")

META_CHANNELS = frozenset({"whatsapp", "messenger", "instagram", "facebook_page"})
X_CHANNELS = frozenset({"x_dm", "x_public"})

router = APIRouter(tags=["webhooks"])

INLINE_READ = 64 * 1024  # bytes: a body up to this is read on the event loop (a few events)
STOPPING_RETRY_AFTER = "5"  # seconds: a request that came while the service stops, tried again
UNREACHABLE_RETRY_AFTER = "1"  # seconds: a request the store could not take, tried again
PREFIX = "/webhooks/"


class WebhookAck(BaseModel):
    """The request is durable: how many of its events are new, were seen before (not processed
    again), or could not be read (kept as dead letters)."""

    accepted: int = 0
    duplicates: int = 0
    dead_letters: int = 0


class Problem(BaseModel):
    """Why a request was refused."""

    error: str


class CrcResponse(BaseModel):
    """X's CRC answer: `sha256=` and the base64 HMAC-SHA256 of the crc_token."""

    response_token: str


REFUSALS: dict[int | str, dict[str, object]] = {
    401: {"model": Problem, "description": "Signature missing or wrong; nothing kept"},
    404: {"model": Problem, "description": "Not a channel of this service"},
    413: {"model": Problem, "description": "Body over the size limit"},
    503: {
        "model": Problem,
        "description": "The service is stopping, or its store cannot be reached for the moment; "
        "nothing kept (Retry-After)",
    },
}


@router.post(
    "/webhooks/{channel}",
    response_model=WebhookAck,
    responses={**REFUSALS, 400: {"model": Problem, "description": "Content-Length nonsense"}},
    summary="A channel's webhook request",
)
async def webhook(channel: str, request: Request) -> Response:
    """Verify, make durable and acknowledge; the events are processed after the answer."""
    service = gate_of(request)
    refused = _unknown(service, channel)
    if refused is not None:
        return refused
    raw = await request.body()
    secret = service.signing_secret(channel)
    if secret is None:
        log.warning("--insecure-dev: %s webhook accepted WITHOUT a signature check", channel)
    else:
        try:
            verify_request(channel, raw, request.headers, secret, service.public_url_of(request))
        except SignatureError as exc:
            client = request.client.host if request.client else "?"
            log.warning("%s webhook from %s refused (401): %s", channel, client, exc)
            service.metrics.rejected.labels(channel, "signature").inc()
            return _problem(401, str(exc))
    received = datetime.now(UTC)
    limit, accounts = service.settings.max_events, service.accounts_of(channel)
    if len(raw) <= INLINE_READ:
        events, letters = _read_request(channel, raw, received, limit, accounts)
    else:  # a large batch takes CPU: off the event loop, so that other requests are answered
        events, letters = await asyncio.to_thread(
            _read_request, channel, raw, received, limit, accounts
        )
    ack = Ack()
    if events or letters:
        try:
            ack = await service.taker.accept(channel, events, letters, received)
        except WorkerStopped as exc:  # nothing of it was kept: the channel sends it again
            refusal = _problem(503, f"the service is stopping ({exc}); try again")
            refusal.headers["Retry-After"] = STOPPING_RETRY_AFTER
            return refusal
        except unreachable_errors():  # nothing kept: sent again, then stored
            refusal = _problem(503, "the store cannot take it right now; nothing was kept")
            refusal.headers["Retry-After"] = UNREACHABLE_RETRY_AFTER
            return refusal
    # The answer's JSON is written here: FastAPI would validate a model it built itself.
    return Response(
        b'{"accepted":%d,"duplicates":%d,"dead_letters":%d}'
        % (ack.accepted, ack.duplicates, ack.dead_letters),
        media_type="application/json",
    )


@router.get(
    "/webhooks/{channel}",
    responses={
        200: {
            "description": "Meta: the hub.challenge as text; X: the CRC response",
            "content": {"text/plain": {}, "application/json": {}},
        },
        400: {"model": Problem, "description": "crc_token not shaped like X's (base64)"},
        403: {"model": Problem, "description": "Wrong verify token, or no secret to answer with"},
        404: {"model": Problem, "description": "Not a channel of this service"},
        405: {"model": Problem, "description": "The channel has no GET handshake"},
    },
    summary="A vendor's subscription handshake (Meta hub.challenge, X CRC)",
)
async def handshake(
    channel: str,
    request: Request,
    hub_mode: Annotated[str | None, Query(alias="hub.mode")] = None,
    hub_verify_token: Annotated[str | None, Query(alias="hub.verify_token")] = None,
    hub_challenge: Annotated[str | None, Query(alias="hub.challenge")] = None,
    crc_token: str | None = None,
) -> Response:
    """Meta: answer `hub.challenge` when `hub.verify_token` is the configured one. X: answer
    the CRC challenge with the consumer secret."""
    service = gate_of(request)
    refused = _unknown(service, channel)
    if refused is not None:
        return refused
    if channel in META_CHANNELS:
        expected = service.verify_token(channel)
        if (
            hub_mode == "subscribe"
            and expected is not None
            and hub_verify_token is not None
            and hmac.compare_digest(hub_verify_token.encode(), expected.encode())
            and hub_challenge is not None
        ):
            return PlainTextResponse(hub_challenge)
        why = "no verify token configured" if expected is None else "wrong hub.verify_token"
        log.warning("%s subscription handshake refused (403): %s", channel, why)
        service.metrics.rejected.labels(channel, "handshake").inc()
        return _problem(403, f"{channel} handshake refused: {why}")
    if channel in X_CHANNELS:
        secret = service.signing_secret(channel)
        if secret is None or not crc_token:
            why = "no crc_token" if secret else "no consumer secret configured"
            log.warning("%s CRC refused (403): %s", channel, why)
            return _problem(403, f"{channel} CRC refused: {why}")
        try:
            answer = x_crc_response(crc_token, secret)
        except SignatureError as exc:
            log.warning("%s CRC refused (400): %s", channel, exc)
            service.metrics.rejected.labels(channel, "handshake").inc()
            return _problem(400, f"{channel} CRC refused: {exc}")
        return JSONResponse(CrcResponse(**answer).model_dump())
    return _problem(405, f"{channel} has no GET handshake; it POSTs its webhooks")


class WebhookPosts:
    """ASGI middleware answering `POST /webhooks/{channel}` with `webhook` itself, without
    FastAPI's routing and dependency machinery, which cost the event loop as much as the rest
    of the request (docs/service.md, "Throughput"); every other request goes on to the app. It
    sits inside the body limits and the security headers, which apply as to any route, and the
    route stays declared for the OpenAPI description."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            channel = path[len(PREFIX) :] if path.startswith(PREFIX) else ""
            if channel and "/" not in channel:
                response = await webhook(channel, Request(scope, receive))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _read_request(
    channel: str,
    raw: bytes,
    received: datetime,
    max_events: int,
    accounts: AccountNames | None = None,
) -> tuple[list[InboundEvent], list[Letter]]:
    """A verified request's events and its dead letters; identical unreadable events of the
    request are one dead letter (its reason counts the others). With `accounts`, an event for
    another account is a dead letter too, and an X event naming its account by a handle the
    deployment does not list (renamed since) is named by the account's user id instead."""
    events: list[InboundEvent] = []
    letters: dict[str, Letter] = {}
    repeats: Counter[str] = Counter()
    for part in read(channel, raw, received_at=received, max_events=max_events):
        if part.error is not None:
            why = str(part.error)
        elif strangers := sorted({e.channel for e in part.events} - {channel}):
            # Signed with this route's secret, not the other channel's: not proof it is theirs.
            why = f"an event of {', '.join(strangers)} posted to /webhooks/{channel}"
        elif accounts is not None and (foreign := _foreign(channel, part, accounts)):
            # One vendor app often serves several numbers or pages, some of them not this
            # center's: their customers' messages are not for its flows and agents.
            listed = "accounts[].user_id" if channel in X_CHANNELS else "accounts"
            why = (
                f"an event for {channel} account {', '.join(map(repr, foreign))}, which is not "
                f"one of the deployment's (channels.{channel}.{listed})"
            )
        elif accounts is not None and channel in X_CHANNELS:
            events.extend(_by_listed_name(part, accounts))
            continue
        else:
            events.extend(part.events)
            continue
        letter = part_letter(channel, raw, part, why, received)
        same = json.dumps([letter[1].get("body"), letter[1].get("body_base64")])
        repeats[same] += 1
        if same not in letters:
            letters[same] = letter
            log.warning("%s webhook: kept as a dead letter: %s", channel, why)
    kept = []
    for same, (source, payload, reason) in letters.items():
        if repeats[same] > 1:
            reason += f" (and {repeats[same] - 1} more identical events of this request)"
        kept.append((source, payload, reason))
    return events, kept


def _by_listed_name(part: Part, accounts: AccountNames) -> list[InboundEvent]:
    """An X part's events, each naming its account by a name the deployment lists: X names it
    by its @handle when an event carries one, and a handle changes (the user id does not)."""
    owner = subscribed_user(part.body or {})
    names = accounts.get(account_key(owner), frozenset())
    return [
        e if account_key(e.account) in names else e.model_copy(update={"account": owner})
        for e in part.events
    ]


def _foreign(channel: str, part: Part, accounts: AccountNames) -> list[str]:
    """The accounts `part` is for that are not among `accounts`: an X request's by the numeric
    id that names it whatever its events (an X event names the business by its handle only
    when it carries the business's user object)."""
    if channel in X_CHANNELS and part.events:
        owner = subscribed_user(part.body or {})
        return [] if account_key(owner) in accounts else [owner]
    return sorted({e.account for e in part.events if account_key(e.account) not in accounts})


def _unknown(service: Gate, channel: str) -> JSONResponse | None:
    if service.serves(channel):
        return None
    service.metrics.rejected.labels("(unknown)", "channel").inc()
    # The channels configured are not told: a caller learns nothing about the deployment.
    return _problem(404, "no such channel here")


def _problem(status: int, error: str) -> JSONResponse:
    return JSONResponse(Problem(error=error).model_dump(), status_code=status)
