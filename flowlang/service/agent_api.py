"""The agent's routes: presence, their interactions, accept / decline, reply, transfer,
complete and wrap-up, and the customer's history (`/api/agent/...`).

Every action is checked and taken in one call on the engine's worker: the conversation must be
offered or assigned to the agent (403 otherwise, the same answer for one that does not exist),
and the engine then judges it as for any host (`runtime/agent_rules.py`), its refusal mapped to
403 or 422 with the reason. A reply the channel's rules block is 409 with the policy's reason:
nothing was sent.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, Field, model_validator

from flowlang.events import AgentAction, AgentEvent
from flowlang.runtime.delivery import UNSENT
from flowlang.runtime.engine import Engine, Outcome
from flowlang.runtime.initiate import InitiateError, template_content
from flowlang.runtime.ports import AcdError, ConversationView, Delivery
from flowlang.service.access import (
    AFTER_CALL_WORK,
    AgentUser,
    Work,
    not_theirs,
    refusal_error,
    refused,
    theirs,
    work_of,
)
from flowlang.service.state import Service, service_of
from flowlang.service.work_ends import history_through

router = APIRouter(prefix="/api/agent", tags=["agent"])
ServiceDep = Annotated[Service, Depends(service_of)]
AgentState = Literal["available", "away", "offline"]
MAX_PAGE = 200
MAX_CONTENT_DEPTH = 8
"""How deep a reply's `content` may nest (a carousel's items' fields are 3 levels down): deeper,
its history could no longer be shown (the answer's serializer gives up at a few hundred)."""
SHAPED = "the channel's policy shapes it from the content's items and checks it"
SERVICE_KEYS = {
    "elements": SHAPED,  # Meta's generic template (cards, carousels)
    "columns": SHAPED,  # LINE's carousel template
    "actions": SHAPED,  # LINE's buttons template
    "alt_text": SHAPED,  # LINE's template messages
    "privately_by": "the service records by which channel a private reply went",
    "message_id": "the service gives each message its id",
    "reply_token": "the channel's policy adds LINE's reply token while it is valid",
    "tag": "the channel's policy gives Meta's message tag",
}
"""What the service puts in a message's content itself, never taken from an agent: given, it
would be sent or recorded as if the service had decided it (a carousel no policy checked, a
public reply recorded as private)."""
# The policy's word for an allowed reply -> the API's: "sent" is only in the outbox yet.
QUEUED: dict[str, Literal["queued", "degraded"]] = {"sent": "queued", "degraded": "degraded"}


def now_of(engine: Engine) -> datetime:
    """The time of an API action: the service's clock, UTC wall time (as its engine's)."""
    return datetime.now(UTC)


# ---------------------------------------------------------------------- models
class PresenceRequest(BaseModel):
    state: AgentState


class PresenceView(BaseModel):
    agent: str
    state: str


class WorkItem(BaseModel):
    """One interaction of the agent's."""

    conversation_id: str
    state: Literal["offered", "assigned", "after_call_work"]
    channel: str
    account: str
    customer_id: str
    customer_name: str | None = None
    queue: str | None = None
    offer_ends_at: datetime | None = Field(None, description="when an open offer times out")
    window_closes_at: datetime | None = Field(
        None,
        description="when the channel's reply window closes (None: it does not, or the agent "
        "is in after-call work)",
    )
    wrap_up: str | None = Field(
        None, description="the wrap-up code already given (in after-call work: None = still owed)"
    )


class ReplyRequest(BaseModel):
    """A reply: `text`, or `content` of a rich kind (image, quick replies, ...) that the
    channel's policy checks and may degrade or block."""

    text: str = Field("", max_length=20_000)
    content: dict[str, Any] | None = Field(
        None, description='e.g. {"kind": "image", "url": "https://...", "caption": "..."}'
    )
    visibility: Literal["default", "privately", "publicly"] = "default"
    template: str | None = Field(
        None,
        description="a deployment template to send instead (where only approved WhatsApp "
        "templates may go), filled with `parameters`",
    )
    parameters: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _something_to_send(self) -> ReplyRequest:
        if not self.text.strip() and not self.content and not self.template:
            raise ValueError("a reply needs text, content or a template")
        if self.content is not None and not isinstance(self.content.get("kind"), str):
            raise ValueError('content needs a "kind" (text, image, quick_replies, ...)')
        if self.content is not None and self.content["kind"] == "template":
            raise ValueError(
                'a template is sent with "template": its name in the deployment and '
                '"parameters"; content of kind "template" is not taken from an agent'
            )
        forged = sorted(set(self.content or {}) & set(SERVICE_KEYS))
        if forged:
            raise ValueError(f'content may not carry "{forged[0]}": {SERVICE_KEYS[forged[0]]}')
        for value, where in (
            (self.text, "the reply.text"),
            (self.content, "the reply.content"),
            (self.parameters, "the reply.parameters"),
        ):
            problem = _unfit(value, where)
            if problem:
                raise ValueError(problem)
        return self


def _unfit(value: object, where: str) -> str | None:
    """What in `value` cannot be kept and sent, and where: a text holding a lone UTF-16
    surrogate (no channel can carry it), or nesting deeper than MAX_CONTENT_DEPTH."""
    stack: list[tuple[object, str, int]] = [(value, where, 0)]
    while stack:
        item, at, depth = stack.pop()
        if depth > MAX_CONTENT_DEPTH:
            return f"{at} is nested deeper than {MAX_CONTENT_DEPTH} levels"
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return f"{at} has a broken character (an unpaired surrogate)"
        elif isinstance(item, dict):
            for key, inner in item.items():
                stack.extend(((key, at, depth + 1), (inner, f"{at}.{key}", depth + 1)))
        elif isinstance(item, list):
            stack.extend((inner, f"{at}[{i}]", depth + 1) for i, inner in enumerate(item))
    return None


class DeliveryView(BaseModel):
    """What the channel's policy made of a reply: allowed and in the outbox (`queued`), or
    allowed changed (`degraded`). Whether the vendor took it comes later: the history's
    `delivery`, and a `delivery_failed` stream event when it never will."""

    status: Literal["queued", "degraded"]
    content: dict[str, Any]
    message_id: str = Field("", description="the outbox's id of the message (the history's)")
    reason_code: str = ""
    reason: str = ""


class TransferRequest(BaseModel):
    """Transfer to a queue, or to an agent (and a queue if they cannot take it)."""

    queue: str | None = None
    agent: str | None = None

    @model_validator(mode="after")
    def _somewhere(self) -> TransferRequest:
        if not self.queue and not self.agent:
            raise ValueError("a transfer needs a queue or an agent")
        return self


class CompleteRequest(BaseModel):
    wrap_up: str | None = Field(None, description="the wrap-up code (some queues require one)")


class WrapUpRequest(BaseModel):
    wrap_up: str


class ActionResult(BaseModel):
    """What an action did: the conversation's state after it, and the ACD's notices."""

    conversation_id: str
    status: str
    notices: list[str] = Field(default_factory=list)
    deliveries: list[DeliveryView] = Field(default_factory=list)


class SentStatusView(BaseModel):
    """What became of a sent message: the vendor's id for it and the latest status its
    webhooks reported (accepted, sent, delivered, read, failed), or `failed` with no vendor id
    when the vendor never took it (refused for good, or given up on after the retries)."""

    vendor_id: str | None
    status: str
    at: datetime
    error: str = Field(default="", description="a failure's vendor code and reason")


class HistoryMessage(BaseModel):
    seq: int
    conversation_id: str
    direction: Literal["in", "out"]
    sender: str
    at: datetime
    content: dict[str, Any]
    message_id: str | None = Field(default=None, description="a sent message's outbox id")
    delivery: SentStatusView | None = Field(
        default=None,
        description="the vendor's id and status of a message it accepted, or its failure "
        "(None: still in the outbox, or sent where the vendor gives no id)",
    )


class HistoryPageView(BaseModel):
    """A page of the customer's messages across all their conversations, oldest first;
    `before` is the cursor for the page before it (None: this page starts at the first)."""

    customer_id: str
    messages: list[HistoryMessage]
    before: int | None


# ---------------------------------------------------------------------- routes
@router.get("/presence", response_model=PresenceView)
async def get_presence(user: AgentUser, service: ServiceDep) -> PresenceView:
    """The agent's own presence."""
    return await service.worker.call(lambda engine: presence_of(engine, user.name))


@router.put("/presence", response_model=PresenceView)
async def set_presence(body: PresenceRequest, user: AgentUser, service: ServiceDep) -> PresenceView:
    """Become available, away or offline (only for oneself: supervisors change others')."""
    return await service.worker.call(lambda engine: change_presence(engine, user.name, body.state))


@router.get("/interactions", response_model=list[WorkItem])
async def interactions(user: AgentUser, service: ServiceDep) -> list[WorkItem]:
    """What is offered to the agent, assigned to them, or in their after-call work."""

    def read(engine: Engine) -> list[WorkItem]:
        return items_of(engine, service, work_of(engine, user.name, now_of(engine)))

    return await service.worker.call(read)


@router.post("/interactions/{conversation_id}/accept", response_model=ActionResult)
async def accept(conversation_id: str, user: AgentUser, service: ServiceDep) -> ActionResult:
    """Accept an offer."""
    return await act(service, user.name, conversation_id, AgentAction.ACCEPT, {})


@router.post("/interactions/{conversation_id}/decline", response_model=ActionResult)
async def decline(conversation_id: str, user: AgentUser, service: ServiceDep) -> ActionResult:
    """Decline an offer: it goes to another agent, never back to this one."""
    return await act(service, user.name, conversation_id, AgentAction.DECLINE, {})


@router.post(
    "/interactions/{conversation_id}/reply",
    response_model=ActionResult,
    responses={409: {"description": "the channel's rules blocked the reply; nothing was sent"}},
)
async def reply(
    conversation_id: str, body: ReplyRequest, user: AgentUser, service: ServiceDep
) -> ActionResult:
    """Reply to the customer. The channel's policy decides: sent, degraded (e.g. buttons as
    numbered text) or blocked (409 with its reason)."""
    fields: dict[str, Any] = {"text": body.text, "visibility": body.visibility}
    if body.content:
        fields["content"] = body.content
    if body.template:
        name, params = body.template, body.parameters
        content = await service.worker.call(
            lambda engine: template_reply(engine, service, user.name, conversation_id, name, params)
        )
        if content is not None:
            fields["content"] = content
    return await act(service, user.name, conversation_id, AgentAction.REPLY, fields)


@router.post("/interactions/{conversation_id}/transfer", response_model=ActionResult)
async def transfer(
    conversation_id: str, body: TransferRequest, user: AgentUser, service: ServiceDep
) -> ActionResult:
    """Transfer to a queue or to an agent of the deployment (422 for an unknown one)."""
    deployment = service.project.deployment
    if deployment is not None:
        if body.queue and body.queue not in deployment.queues:
            raise refused(
                "unknown_queue",
                f"there is no queue {body.queue!r}; queues: {', '.join(sorted(deployment.queues))}",
                status.HTTP_422_UNPROCESSABLE_CONTENT,
            )
        if body.agent and body.agent not in deployment.agents:
            raise refused(
                "unknown_agent",
                f"there is no agent {body.agent!r}",
                status.HTTP_422_UNPROCESSABLE_CONTENT,
            )
        if body.agent == user.name:
            raise refused(
                "transfer_to_self",
                "a transfer goes to another agent",
                status.HTTP_422_UNPROCESSABLE_CONTENT,
            )
    fields = {"transfer_queue": body.queue, "transfer_agent": body.agent}
    return await act(service, user.name, conversation_id, AgentAction.TRANSFER, fields)


@router.post("/interactions/{conversation_id}/complete", response_model=ActionResult)
async def complete(
    conversation_id: str, body: CompleteRequest, user: AgentUser, service: ServiceDep
) -> ActionResult:
    """End the conversation with the customer, with a wrap-up code (422 when the queue requires
    one and none or an undeclared one is given)."""
    action = AgentAction.COMPLETE
    return await act(service, user.name, conversation_id, action, {"wrap_up": body.wrap_up})


@router.post("/interactions/{conversation_id}/wrap-up", response_model=ActionResult)
async def wrap_up(
    conversation_id: str, body: WrapUpRequest, user: AgentUser, service: ServiceDep
) -> ActionResult:
    """Give the wrap-up code during after-call work."""
    action = AgentAction.WRAP_UP
    return await act(service, user.name, conversation_id, action, {"wrap_up": body.wrap_up})


@router.get("/interactions/{conversation_id}/history", response_model=HistoryPageView)
async def history(
    conversation_id: str,
    user: AgentUser,
    service: ServiceDep,
    before: Annotated[
        int | None, Query(ge=0, le=2**62, description="the `before` of the page after")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> HistoryPageView:
    """The customer's messages across all their conversations and channels, newest page first,
    each page oldest first; follow `before` back to the very first message. In after-call work,
    only those up to the end of the agent's interaction."""

    def read(engine: Engine) -> HistoryPageView:
        work = theirs(engine, user.name, conversation_id, now_of(engine))
        if work is None:
            raise not_theirs(user.name, conversation_id)
        conv = engine.store.get_conversation(conversation_id)
        assert conv is not None
        if work.state == AFTER_CALL_WORK:  # up to where it left them, nothing written after
            through = service.store.work_end(conv.id, user.name)
            page = history_through(service.store, conv.customer_id, before, limit, through)
        else:
            page = service.store.history(conv.customer_id, before=before, limit=limit)
        messages = [HistoryMessage.model_validate(m) for m in page.messages]
        _with_deliveries(service, messages)
        return HistoryPageView(customer_id=conv.customer_id, messages=messages, before=page.before)

    return await service.worker.call(read)


# ---------------------------------------------------------------------- on the worker
def template_reply(
    engine: Engine,
    service: Service,
    agent: str,
    conversation_id: str,
    name: str,
    params: dict[str, str],
) -> dict[str, Any] | None:
    """The content of deployment template `name` for the conversation's customer (None: no
    such conversation, or not the agent's, which the action then refuses); 422 for an unknown
    template or a missing parameter, only to the agent whose conversation it is."""
    conv = engine.store.get_conversation(conversation_id)
    if conv is None or theirs(engine, agent, conversation_id, now_of(engine)) is None:
        return None  # the action then answers not_yours, as for any conversation not theirs
    customer = service.store.get_customer(conv.customer_id)
    if customer is None:
        return None
    try:
        return template_content(engine.program, name, params, customer)
    except InitiateError as exc:
        raise refused("template_invalid", str(exc), status.HTTP_422_UNPROCESSABLE_CONTENT) from exc


def _with_deliveries(service: Service, messages: list[HistoryMessage]) -> None:
    """Each sent message's id, and the vendor's id and status once the vendor accepted it."""
    for message in messages:
        found = message.content.pop("message_id", None)
        if message.direction == "out" and isinstance(found, str):
            message.message_id = found
    sent = service.store.sent_messages([m.message_id for m in messages if m.message_id])
    for message in messages:
        record = sent.get(message.message_id or "")
        if record is not None:
            message.delivery = SentStatusView(
                vendor_id=None if record.vendor_id.startswith(UNSENT) else record.vendor_id,
                status=record.status,
                at=record.status_at or record.sent_at,
                error=record.error,
            )


def presence_of(engine: Engine, agent: str) -> PresenceView:
    """An agent's presence as the ACD has it (offline: an ACD that does not know them)."""
    record = engine.acd.agent_view(agent)
    return PresenceView(agent=agent, state=record.state if record else "offline")


def change_presence(engine: Engine, agent: str, state: str) -> PresenceView:
    try:
        engine.set_agent_state(agent, state, now_of(engine))
    except AcdError as exc:
        raise refused("presence_refused", str(exc), status.HTTP_422_UNPROCESSABLE_CONTENT) from exc
    return presence_of(engine, agent)


def items_of(engine: Engine, service: Service, works: list[Work]) -> list[WorkItem]:
    """The agent's interactions, as they are shown them: their conversations and customers
    read in one query (one round trip to a database server, however many the agent has)."""
    found = service.store.conversations_with_names([work.conversation_id for work in works])
    return [_item(engine, work, *found[work.conversation_id]) for work in works]


def item_of(engine: Engine, service: Service, work: Work) -> WorkItem:
    """An interaction of the agent's, as they are shown it."""
    return items_of(engine, service, [work])[0]


def _item(engine: Engine, work: Work, conv: ConversationView, name: str | None) -> WorkItem:
    return WorkItem(
        conversation_id=conv.id,
        state=work.state,
        channel=conv.channel,
        account=conv.account,
        customer_id=conv.customer_id,
        customer_name=name,
        queue=conv.queue,
        offer_ends_at=work.offer_ends_at,
        # in after-call work no reply goes, and the window moves only if the customer writes
        window_closes_at=None
        if work.state == AFTER_CALL_WORK
        else engine.policy.window_closes_at(conv),
        wrap_up=work.wrap_up,
    )


async def act(
    service: Service,
    agent: str,
    conversation_id: str,
    action: AgentAction,
    fields: dict[str, Any],
) -> ActionResult:
    """Check that the conversation is the agent's and hand the engine their action, in one
    call on the worker (nothing can change in between)."""

    def run(engine: Engine) -> ActionResult:
        now = now_of(engine)
        # Whose it is is checked first, so that another agent's conversation (or one that does
        # not exist) gets one answer that tells nothing of it; the engine then judges the action.
        if theirs(engine, agent, conversation_id, now) is None:
            raise not_theirs(agent, conversation_id)
        event = AgentEvent(
            event_id=f"api:{uuid.uuid4().hex}",
            conversation_id=conversation_id,
            agent_id=agent,
            action=action,
            timestamp=now,
            **fields,
        )
        return result_of(engine, engine.handle(event))

    return await service.worker.call(run)


def result_of(engine: Engine, outcome: Outcome) -> ActionResult:
    """The response for an action's outcome: its refusal or block as an error."""
    if outcome.refusal is not None:
        raise refusal_error(outcome.refusal)
    if outcome.dead_lettered:
        raise HTTPException(
            status.HTTP_500_INTERNAL_SERVER_ERROR,
            detail={"code": "failed", "reason": outcome.note},
        )
    blocked = [d for d in outcome.deliveries if d.status not in QUEUED]
    if blocked:
        raise blocked_error(blocked[0])
    conv_id = outcome.conversation_id or ""
    conv = engine.store.get_conversation(conv_id)
    return ActionResult(
        conversation_id=conv_id,
        status=conv.status if conv else "unknown",
        notices=[n.kind for n in outcome.notices],
        deliveries=[
            DeliveryView(
                status=QUEUED[d.status],
                content=d.message.content,
                message_id=d.message.message_id,
                reason_code=d.reason_code,
                reason=d.reason,
            )
            for d in outcome.deliveries
        ],
    )


def blocked_error(delivery: Delivery) -> HTTPException:
    return HTTPException(
        status.HTTP_409_CONFLICT,
        detail={
            "code": delivery.reason_code or "blocked",
            "reason": delivery.reason,
            "suggestion": delivery.suggestion,
        },
    )
