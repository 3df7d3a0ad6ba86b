"""Inbound events: what the engine receives, from channels (normalised webhooks) and from hosts.

Channel normalisers turn each platform's webhook payload into `InboundEvent`s; agents, bots and
timers reach the engine as the other event models below. All are plain pydantic values, so they
serialise to JSON for the store, dead letters and replay.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def in_utc(moment: datetime) -> datetime:
    """The same instant in UTC; a time without a zone is taken as UTC, as the CLI does."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


Timestamp = Annotated[datetime, AfterValidator(in_utc)]
"""Every event's time is kept in UTC, so the log sorts and compares by instant."""


class EventKind(StrEnum):
    MESSAGE = "message"  # a private message (DM, chat, WhatsApp, SMS, LINE...)
    POST = "post"  # a public post / tweet mentioning or addressed to the business
    COMMENT = "comment"  # a public comment or reply under a post
    EDIT = "edit"  # a post, comment or message was edited (`refers_to`: the one edited)
    DELETE = "delete"  # a public post or comment was deleted (the customer withdrew it)
    UNSEND = "unsend"  # the customer unsent one private message (`refers_to`): they are still here
    CLOSE = "close"  # the customer closed the chat (web messaging): they left
    POSTBACK = "postback"  # a quick-reply / button answer
    RECEIPT = "receipt"  # delivery / read receipt: recorded, never routed
    SYSTEM = "system"  # the channel's own notice (a WhatsApp number change): recorded, never routed


SOCIAL_PUBLIC_CHANNELS = frozenset({"x_public", "facebook_page"})
SOCIAL_DM_CHANNELS = frozenset({"x_dm", "messenger", "instagram"})


def media_type(channel: str) -> str:
    """The media type reports and the ACD group a channel under: `social_public` (public posts
    and comments), `social_dm` (social networks' direct messages) or `message`."""
    if channel in SOCIAL_PUBLIC_CHANNELS:
        return "social_public"
    if channel in SOCIAL_DM_CHANNELS:
        return "social_dm"
    return "message"


class Attachment(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: Literal["image", "video", "audio", "file", "sticker", "location", "link", "other"]
    url: str | None = None
    mime: str | None = None
    caption: str | None = None
    sticker_id: str | None = None
    latitude: float | None = None
    longitude: float | None = None


class InboundEvent(BaseModel):
    """One customer-side event from a channel, in one shape for every channel."""

    model_config = ConfigDict(frozen=True)

    type: Literal["inbound"] = "inbound"
    event_id: str = Field(description="the channel's own message id; deduplicates webhook retries")
    channel: str = Field(description="channel key from the registry, e.g. 'whatsapp', 'x_dm'")
    kind: EventKind = EventKind.MESSAGE
    account: str = Field(default="", description="the business side: page, handle, number, bot")
    sender_id: str = Field(description="platform-scoped id of the customer (PSID, wa_id, ...)")
    sender_phone: str | None = Field(default=None, description="E.164 when the channel gives it")
    sender_name: str | None = None
    text: str = ""
    attachments: tuple[Attachment, ...] = ()
    postback: str | None = None
    post_id: str | None = Field(default=None, description="public post this event is or belongs to")
    parent_id: str | None = None
    refers_to: str | None = Field(
        default=None, description="the channel's id of the message an edit or deletion is about"
    )
    data: dict[str, Any] | None = Field(
        default=None,
        description="a form's answers (WhatsApp Flows' response_json); a system notice's details",
    )
    comment_id: str | None = Field(default=None, description="a comment's own id (public channels)")
    reply_token: str | None = None
    timestamp: Timestamp
    raw: dict[str, Any] = Field(default_factory=dict, repr=False)


class AgentAction(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    REPLY = "reply"
    TRANSFER = "transfer"
    COMPLETE = "complete"
    WRAP_UP = "wrap_up"  # the wrap-up code, given during after-call work


class AgentEvent(BaseModel):
    """Something an agent did on a conversation."""

    model_config = ConfigDict(frozen=True)

    type: Literal["agent"] = "agent"
    event_id: str
    conversation_id: str
    agent_id: str
    action: AgentAction
    text: str = ""
    visibility: Literal["default", "privately", "publicly"] = Field(
        default="default",
        description="a reply marked `privately` takes the public channel's private route",
    )
    content: dict[str, Any] = Field(default_factory=dict)
    transfer_queue: str | None = None
    transfer_agent: str | None = None
    wrap_up: str | None = None
    timestamp: Timestamp


class BotEvent(BaseModel):
    """A bot finished its part of a conversation."""

    model_config = ConfigDict(frozen=True)

    type: Literal["bot"] = "bot"
    event_id: str
    conversation_id: str
    outcome: Literal["resolved", "escalate", "failure"]
    intent: str | None = None
    slots: dict[str, Any] = Field(default_factory=dict)
    timestamp: Timestamp


class TimerEvent(BaseModel):
    """A deadline a suspended flow asked for has passed."""

    model_config = ConfigDict(frozen=True)

    type: Literal["timer"] = "timer"
    event_id: str
    conversation_id: str
    timer: str
    timestamp: Timestamp


Event = Annotated[InboundEvent | AgentEvent | BotEvent | TimerEvent, Field(discriminator="type")]
