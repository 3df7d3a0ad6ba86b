"""The channel registry: each channel's rules as data (`data/channels.yaml`), with a deployment's
overrides merged in. Nothing here branches on a channel's name; the policy reads these fields.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from ruamel.yaml import YAML

from flowlang.errors import InputError

Outside = Literal["template_only", "human_agent_tag", "one_more", "push", "nothing", "anything"]


class Window(BaseModel):
    """How long after the customer's last message the business may send, and what after."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hours: float | None = None
    outside: Outside = "anything"
    tag_days: float | None = None
    # ours, not the vendor's: how long before the window closes a flow's `on window closing`
    # runs (None: never on this channel)
    warn_before_minutes: float | None = Field(default=None, gt=0)


class WeightRange(BaseModel):
    """Code points `start`..`end` (inclusive) weigh `weight` (over the weighting's `scale`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: int = Field(ge=0)
    end: int = Field(ge=0)
    weight: int = Field(ge=0)


class Weighting(BaseModel):
    """X's weighted length (twitter-text's configuration, version 3)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scale: int = Field(gt=0)
    default_weight: int = Field(ge=0)
    transformed_url_length: int = Field(ge=0)
    emoji_parsing_enabled: bool = True
    ranges: tuple[WeightRange, ...] = ()


class PrivateReply(BaseModel):
    """How a reply marked private leaves a public channel: by another channel's send API, to
    the comment or post (Meta's Private Replies) or to its author (a direct message)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    via: str
    to: Literal["comment", "author"]
    days: float | None = None  # at most this long after the comment or post
    once: bool = False  # at most one per comment or post
    automated: bool = True  # False: only a human agent may send it


class StickerForm(BaseModel):
    """How the channel names a sticker to send: a reference matching `pattern`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pattern: str
    description: str
    example: str


class SendApi(BaseModel):
    """How a sender speaks the channel vendor's send API: its base URL, authorisation, body
    encoding, where an error answer gives its code and message, and which codes mean retrying
    cannot help (permanent) or can (retry), whatever the HTTP status says."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_base: str
    auth: Literal["bearer", "basic"] = "bearer"
    encoding: Literal["json", "form"] = "json"
    error_code: tuple[str, ...] = ()  # dotted paths into an error answer, first found wins
    error_message: tuple[str, ...] = ()
    permanent_errors: dict[str, str] = Field(default_factory=dict)  # code -> what it means
    retry_errors: dict[str, str] = Field(default_factory=dict)
    idempotency_header: str | None = None  # the vendor's own, beside Idempotency-Key
    idempotency_uuid: bool = False  # the vendor wants its key as a UUID
    idempotency_paths: tuple[str, ...] = ()  # only these endpoints take it (none: all)
    already_sent_status: int | None = None  # the vendor's answer to a repeated idempotent send
    message_id: tuple[str, ...] = ()  # dotted paths into a success answer: the vendor's id
    window_errors: tuple[str, ...] = ()  # a failed status with one closes the reply window
    # content kinds the channel carries but this sender sends as text with their URL (the
    # vendor's API wants an upload, or fields flowlang does not have, first): the policy turns
    # them into that text, so what it measures is what goes out
    as_link: frozenset[str] = frozenset()

    @field_validator("permanent_errors", "retry_errors", mode="before")
    @classmethod
    def _codes_as_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(code): text for code, text in value.items()}
        return value

    @field_validator("window_errors", mode="before")
    @classmethod
    def _codes_listed_as_text(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return tuple(str(code) for code in value)
        return value


class LabelRules(BaseModel):
    """The longest label, in the channel's `count`, each way of offering options shows: a
    quick reply's and a button's (a template's actions too). None: no limit. A longer label is
    never cut (it could change what the option says): the policy blocks the message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quick_reply: int | None = Field(default=None, gt=0)
    button: int | None = Field(default=None, gt=0)


class OptionsText(BaseModel):
    """The longest text, in the channel's `count`, a message with quick replies or with buttons
    takes, where its form takes less than `max_text` (WhatsApp's interactive body, Messenger's
    button template). None: `max_text`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quick_replies: int | None = Field(default=None, gt=0)
    buttons: int | None = Field(default=None, gt=0)
    required: bool = False  # the vendor refuses options under an empty text: blocked before


class OptionList(BaseModel):
    """A list message (WhatsApp's interactive list): more options than the channel's quick
    replies or buttons, up to `max_rows`, as rows a button opens. Each limit in the channel's
    `count`; `button_text` labels the button unless the content gives its own (`list_button`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_rows: int = Field(gt=0)
    row_title: int = Field(gt=0)
    button: int = Field(gt=0)  # the button's label
    section_title: int = Field(gt=0)  # the content's `list_title`, above the rows
    text: int = Field(gt=0)  # the body above the button
    button_text: str = Field(min_length=1)


class TemplateRules(BaseModel):
    """A channel's template messages (LINE's buttons and carousel templates): the longest
    each part may be, in the channel's `count`, and how many columns a carousel takes. Action
    labels are `labels.button`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alt_text: int  # what a notification (or an app without templates) shows instead
    title: int
    buttons_text: int
    carousel_text: int  # a column's text
    text_with_image_or_title: int  # a buttons' or a column's text beside an image or a title
    max_columns: int
    max_column_actions: int


class GenericTemplateRules(BaseModel):
    """Meta's generic template (Messenger, Instagram): cards and carousels as elements, each
    a title, a subtitle, an image, a link opened on a tap and buttons (labels: `labels.button`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_elements: int = Field(gt=0)
    title: int = Field(gt=0)
    subtitle: int = Field(gt=0)
    max_element_buttons: int = Field(gt=0)


class ChannelRules(BaseModel):
    """One channel's description: identity, content, limits, window and anti-spam rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    name: str
    media: Literal["message", "social_dm", "social_public"]
    public: bool
    identity: str
    identity_namespace: str | None = None
    content: frozenset[str]
    max_text: int
    count: Literal["characters", "utf16", "weighted"] = "characters"
    segmented: bool = False  # sent in SMS segments (GSM-7 / UCS-2): agents are shown how many
    weighting: Weighting | None = None
    max_quick_replies: int = 0
    max_buttons: int = 0
    labels: LabelRules = LabelRules()
    options_text: OptionsText = OptionsText()
    option_list: OptionList | None = None  # more options than quick replies or buttons show
    distinct_options: bool = False  # the vendor refuses two options with the same label
    templates: TemplateRules | None = None  # buttons and carousels go as template messages
    generic_template: GenericTemplateRules | None = None  # cards and carousels go as one
    sticker: StickerForm | None = None
    window: Window = Window()
    replies_per_inbound: int | None = None
    automated_replies_per_inbound: int | None = None
    unsolicited: bool = False
    business_initiated: Literal["none", "approved_template", "any"] = "none"
    address: Literal["phone", "phone_digits", "id"] = "id"
    identical_messages: bool = True
    tiers: tuple[int, ...] = ()
    tier: int | None = None
    reply_token_seconds: int | None = None
    push_allowed: bool = True
    private_reply: PrivateReply | None = None
    send: SendApi | None = None  # None: no vendor API (the web widget)
    opt_out: frozenset[str] = frozenset()
    opt_in: frozenset[str] = frozenset()
    help: frozenset[str] = frozenset()
    help_text: str = ""
    bulk_limit: int = 20
    bulk_window_seconds: int = 60
    # the largest webhook request the vendor documents sending (None: undocumented): the
    # service takes webhook bodies up to this size even where its --body-limit is lower
    webhook_max_bytes: int | None = Field(default=None, gt=0)
    sources: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _weighted_needs_weights(self) -> ChannelRules:
        if self.count == "weighted" and self.weighting is None:
            raise ValueError("count: weighted needs `weighting` (the weights of each range)")
        return self

    @property
    def namespace(self) -> str:
        """Channels that share customer ids (X DMs and X posts) share a namespace."""
        return self.identity_namespace or self.key


class RegistryError(InputError, ValueError):
    """A channel description (built in or a deployment override) that is not valid."""


_MERGED_BLOCKS = (
    "private_reply",
    "labels",
    "options_text",
    "option_list",
    "templates",
    "generic_template",
)


@lru_cache(maxsize=1)
def _builtin_data() -> dict[str, Any]:
    text = resources.files("flowlang.channels").joinpath("data/channels.yaml").read_text("utf-8")
    data = YAML(typ="safe").load(text)
    assert isinstance(data, dict)
    return data


def builtin_keys() -> tuple[str, ...]:
    return tuple(k for k in _builtin_data() if k != "defaults")


def load_registry(overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, ChannelRules]:
    """Every channel's rules: the built-in data with `overrides[key]` merged over it."""
    data = _builtin_data()
    defaults = dict(data.get("defaults") or {})
    out: dict[str, ChannelRules] = {}
    for key in builtin_keys():
        merged = {**defaults, **data[key], **((overrides or {}).get(key) or {})}
        window = dict(data[key].get("window") or {})
        window.update(((overrides or {}).get(key) or {}).get("window") or {})
        merged["window"] = window
        changed = (overrides or {}).get(key) or {}
        for block in _MERGED_BLOCKS:  # an override of one limit keeps the block's others
            built_in = data[key].get(block)
            if isinstance(built_in, dict) and isinstance(changed.get(block), dict):
                merged[block] = {**built_in, **changed[block]}
        try:
            out[key] = ChannelRules.model_validate({"key": key, **merged})
        except ValidationError as exc:
            problems = "; ".join(
                ": ".join(part for part in (".".join(str(p) for p in e["loc"]), e["msg"]) if part)
                for e in exc.errors()
            )
            raise RegistryError(f"channel {key!r}: {problems}") from None
    for key, rules in out.items():
        route = rules.private_reply
        if route is not None and (route.via not in out or out[route.via].public):
            raise RegistryError(
                f"channel {key!r}: private_reply.via: {route.via!r} is not a private channel "
                f"of the registry (one of {', '.join(k for k, r in out.items() if not r.public)})"
            )
    return out


@lru_cache(maxsize=1)
def builtin_registry() -> dict[str, ChannelRules]:
    return load_registry()
