"""What the agent workspace shows of one interaction, computed by the service from the store,
the deployment and the channel registry (`/api/agent/interactions/{id}/details`), and how long
a draft reply is on its channel (`.../measure`): the page holds no channel numbers of its own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from jinja2 import TemplateError
from pydantic import BaseModel, Field

from flowlang.channels.engine_policy import rules_for
from flowlang.channels.registry import ChannelRules
from flowlang.channels.sms_segments import segments
from flowlang.channels.text_length import text_length
from flowlang.config import Deployment
from flowlang.runtime.engine import Engine
from flowlang.runtime.ports import ConversationView
from flowlang.runtime.scope import stored_data
from flowlang.service.access import AFTER_CALL_WORK, AgentUser, not_theirs, theirs
from flowlang.service.agent_api import now_of
from flowlang.service.state import Service, service_of
from flowlang.service.stream import channel_name
from flowlang.service.work_ends import went_on
from flowlang.templates import ReplyTemplate

router = APIRouter(prefix="/api/agent", tags=["agent"])
ServiceDep = Annotated[Service, Depends(service_of)]


class Identity(BaseModel):
    kind: str
    value: str


class TemplateChoice(BaseModel):
    """A deployment template the agent may send where only templates may go."""

    name: str
    text: str
    parameters: list[str]
    status: str


class Canned(BaseModel):
    """A canned response of the deployment, the customer's name filled in."""

    name: str
    text: str


class WindowState(BaseModel):
    """The channel's reply window for this conversation."""

    closes_at: datetime | None
    open: bool
    text: str  # "WhatsApp 24-hour window closes in 18 min", "closed: choose a template"
    templates_only: bool  # closed, and only approved templates may go


class ChannelFacts(BaseModel):
    """What the reply box needs of the channel, from the channel registry."""

    key: str
    name: str
    public: bool
    max_text: int
    count: str  # characters | utf16 | weighted
    segments: bool  # the length is shown in SMS segments
    max_quick_replies: int
    content: list[str]
    private_reply: bool  # a public post may be answered privately


class WrapUp(BaseModel):
    codes: list[str]
    required: bool
    after_call_work_seconds: float | None


class Details(BaseModel):
    """One interaction as the workspace shows it."""

    conversation_id: str
    state: str
    status: str
    channel: ChannelFacts
    account: str
    customer_id: str
    customer_name: str | None
    identities: list[Identity]
    participant_data: dict[str, Any] = Field(description="what the flow stored, as text")
    conversation_data: dict[str, Any] = Field(description="what the flow stored, as text")
    flow_path: list[str]
    queue: str | None
    skills: list[str]
    waiting_since: datetime | None
    offer_ends_at: datetime | None
    window: WindowState
    templates: list[TemplateChoice]
    canned: list[Canned]
    wrap_up: WrapUp
    queues: list[str] = Field(description="queues it may be transferred to")
    agents: list[str] = Field(description="agents it may be transferred to")


class MeasureRequest(BaseModel):
    text: str = Field("", max_length=20_000)


class Measure(BaseModel):
    """How long a draft is on the channel, in the channel's own unit."""

    length: int
    max: int
    left: int
    unit: str  # characters | weighted characters | UTF-16 units
    segments: int | None = None  # SMS
    encoding: str | None = None  # SMS: GSM-7 | UCS-2
    text: str  # "112 characters left", "2 segments (GSM-7) · 146 left"


# ---------------------------------------------------------------------- routes
@router.get("/interactions/{conversation_id}/details", response_model=Details)
async def details(conversation_id: str, user: AgentUser, service: ServiceDep) -> Details:
    """Everything the workspace shows of one of the agent's interactions: the customer's
    identities, the flow's participant and conversation data (as text) and its path, the
    channel's facts and window, the templates and canned responses, the wrap-up codes, where
    it may be transferred."""

    def read(engine: Engine) -> Details:
        now = now_of(engine)
        work = theirs(engine, user.name, conversation_id, now)
        if work is None:
            raise not_theirs(user.name, conversation_id)
        conv = engine.store.get_conversation(conversation_id)
        assert conv is not None
        return details_of(engine, service, conv, work.state, work.offer_ends_at, user.name, now)

    return await service.worker.call(read)


@router.post("/interactions/{conversation_id}/measure", response_model=Measure)
async def measure(
    conversation_id: str, body: MeasureRequest, user: AgentUser, service: ServiceDep
) -> Measure:
    """How long a draft reply is on the conversation's channel, as its policy counts it (X's
    weighted length, SMS segments), and how much is left."""

    def read(engine: Engine) -> Measure:
        if theirs(engine, user.name, conversation_id, now_of(engine)) is None:
            raise not_theirs(user.name, conversation_id)
        conv = engine.store.get_conversation(conversation_id)
        assert conv is not None
        deployment = service.project.deployment
        assert deployment is not None
        return measure_text(rules_for(deployment)[conv.channel], body.text)

    return await service.worker.call(read)


# ---------------------------------------------------------------------- on the worker
AFTER_CALL_WINDOW = WindowState(closes_at=None, open=False, text="", templates_only=False)
UNITS = {"characters": "characters", "utf16": "UTF-16 units", "weighted": "weighted characters"}


def measure_text(rules: ChannelRules, text: str) -> Measure:
    """`text`'s length on the channel of `rules`, what is left, and its SMS segments."""
    length = text_length(text, rules)
    left = rules.max_text - length
    unit = UNITS[rules.count]
    shown = f"{left} {unit} left" if left >= 0 else f"{-left} {unit} too long"
    if not rules.segmented:
        return Measure(length=length, max=rules.max_text, left=left, unit=unit, text=shown)
    parts = segments(text)
    plural = "s" if parts.count != 1 else ""
    return Measure(
        length=length,
        max=rules.max_text,
        left=left,
        unit=unit,
        segments=parts.count,
        encoding=parts.encoding,
        text=f"{parts.count} segment{plural} ({parts.encoding}) · {shown}",
    )


def details_of(
    engine: Engine,
    service: Service,
    conv: ConversationView,
    state: str,
    offer_ends_at: datetime | None,
    agent: str,
    now: datetime,
) -> Details:
    deployment = service.project.deployment
    assert deployment is not None
    rules = rules_for(deployment)[conv.channel]
    customer = service.store.get_customer(conv.customer_id)
    name = customer.name if customer else None
    interaction = engine.acd.interaction_view(conv.id)
    queue = deployment.queues.get(conv.queue or "")
    codes = list(queue.wrap_up_codes if queue and queue.wrap_up_codes else deployment.wrap_up_codes)
    acw = queue.after_call_work.total_seconds() if queue and queue.after_call_work else None
    flow_state = conv.flow_state.get("interaction") or {}
    # In after-call work on a conversation that went on (transferred, or the customer wrote
    # again), what the flow and the ACD hold now is another interaction's: none of it is shown.
    moved_on = state == AFTER_CALL_WORK and went_on(service.store, conv, agent)
    if moved_on:
        flow_state, interaction = {}, None
    return Details(
        conversation_id=conv.id,
        state=state,
        status=conv.status,
        channel=ChannelFacts(
            key=rules.key,
            name=channel_name(rules.key),
            public=rules.public,
            max_text=rules.max_text,
            count=rules.count,
            segments=rules.segmented,
            max_quick_replies=rules.max_quick_replies,
            content=sorted(rules.content),
            private_reply=rules.private_reply is not None,
        ),
        account=conv.account,
        customer_id=conv.customer_id,
        customer_name=name,
        identities=[
            Identity(kind=kind, value=value)
            for kind, value in service.store.identities_of(conv.customer_id)
        ],
        participant_data={}
        if moved_on
        else stored_data(conv.data, "participant", flow_state.get("participant_data")),
        conversation_data={}
        if moved_on
        else stored_data(conv.data, "conversation", flow_state.get("conversation_data")),
        flow_path=[] if moved_on else flow_path(service, conv),
        queue=conv.queue,
        skills=sorted(interaction.skills) if interaction else [],
        waiting_since=interaction.entered_at if interaction else None,
        offer_ends_at=offer_ends_at,
        window=AFTER_CALL_WINDOW
        if state == AFTER_CALL_WORK
        else window_state(engine, conv, rules, now),
        templates=template_choices(deployment),
        canned=canned_for(deployment, conv.queue, name),
        wrap_up=WrapUp(
            codes=codes,
            required=bool(queue and queue.wrap_up_required),
            after_call_work_seconds=acw,
        ),
        queues=sorted(q for q in deployment.queues if q != conv.queue),
        agents=sorted(a for a in deployment.agents if a != agent),
    )


def window_state(
    engine: Engine, conv: ConversationView, rules: ChannelRules, now: datetime
) -> WindowState:
    """The reply window in words: how long it stays open, or what may still be sent."""
    closes = engine.policy.window_closes_at(conv)
    name = channel_name(rules.key)
    hours = rules.window.hours
    if closes is None:
        return WindowState(closes_at=None, open=True, text="", templates_only=False)
    span = f"{name} {hours:g}-hour window" if hours is not None else f"{name} window"
    if closes > now:
        minutes = max(1, int((closes - now).total_seconds() // 60))
        left = f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"
        return WindowState(
            closes_at=closes, open=True, text=f"{span} closes in {left}", templates_only=False
        )
    if rules.window.outside == "template_only":
        return WindowState(
            closes_at=closes,
            open=False,
            text=f"{span} closed: choose a template",
            templates_only=True,
        )
    return WindowState(
        closes_at=closes,
        open=False,
        text=f"{span} closed: wait for the customer's next message",
        templates_only=False,
    )


def template_choices(deployment: Deployment) -> list[TemplateChoice]:
    """The deployment's WhatsApp templates, with the parameters each needs."""
    return [
        TemplateChoice(
            name=key,
            text=template.text or template.whatsapp.body or "",
            parameters=list(template.whatsapp.parameters),
            status=template.whatsapp.status,
        )
        for key, template in sorted(deployment.templates.items())
        if template.whatsapp is not None
    ]


def canned_for(
    deployment: Deployment, queue: str | None, customer_name: str | None
) -> list[Canned]:
    """The canned responses for a conversation of `queue`, `customer.name` filled in."""
    who = {"name": customer_name}
    out: list[Canned] = []
    for key, canned in deployment.canned_responses.items():
        if canned.queues and queue not in canned.queues:
            continue
        try:
            text = ReplyTemplate(canned.text).render(lambda k, d: {"customer": who}.get(k, d))
        except TemplateError:  # a name it reads that is not there: the agent fills it in
            text = canned.text
        out.append(Canned(name=key, text=text))
    return out


def flow_path(service: Service, conv: ConversationView) -> list[str]:
    """The states the flow went through in this conversation, in order (repeats collapsed),
    from its `flow_path` events."""
    states: list[str] = []
    for event in service.store.conversation_events(conv.id, "flow_path"):
        for node in event.get("nodes") or ():
            state = str(node).split("/")[0]
            if not states or states[-1] != state:
                states.append(state)
    return states
