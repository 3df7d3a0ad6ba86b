"""What a flow can see besides itself: the deployment's names and the channels' capabilities.

The checker and compiler read this small view instead of the deployment models directly, so the
language package stays independent of how the deployment file is loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from flowlang.diagnostics import Span

KNOWN_CHANNELS = (
    "web",
    "whatsapp",
    "messenger",
    "instagram",
    "x_dm",
    "x_public",
    "facebook_page",
    "line",
    "sms",
)
PUBLIC_CHANNELS = frozenset({"x_public", "facebook_page"})


@dataclass(frozen=True)
class TemplateInfo:
    """A deployment template: its Jinja source (if any), kind, and where it is declared."""

    name: str
    kind: str = "text"  # text | whatsapp | quick_replies | buttons | carousel | card
    source: str | None = None
    parameters: tuple[str, ...] = ()
    approved: bool = True
    span: Span | None = None
    options: tuple[str, ...] = ()  # its items' titles: each labels a quick reply or button


@dataclass(frozen=True)
class DataActionInfo:
    """A host-provided data action: the inputs it takes and the outputs it returns."""

    name: str
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    proves_identity: bool = False


@dataclass(frozen=True)
class ChannelInfo:
    """Capabilities of one channel, as the checker needs them."""

    key: str
    public: bool
    content: frozenset[str]  # content kinds it can carry: text, image, quick_replies, ...
    max_quick_replies: int | None = None
    max_buttons: int | None = None
    # the longest label a quick reply and a button show (None: no limit); longer is blocked
    quick_reply_label: int | None = None
    button_label: int | None = None
    # more options than those show go as a list of up to `list_rows`, each label up to
    # `list_row_label` (WhatsApp's interactive list); None: the first are kept
    list_rows: int | None = None
    list_row_label: int | None = None
    distinct_options: bool = False  # two options with the same label are blocked
    has_window: bool = False
    template_only_outside_window: bool = False
    max_text: int | None = None
    text_length: Callable[[str], int] = len  # how the channel counts `max_text`
    automated_replies_per_inbound: int | None = None
    # Who may reply privately on a public channel: "any" (flows too), "agent" (a person only),
    # "" (nobody: the channel has no private route, a private reply is blocked)
    private_route: str = ""
    private_via: str = ""  # the channel a private reply goes by (its limits apply)


@dataclass
class FlowContext:
    """Names declared in the deployment and channel capabilities; empty means 'not checked'."""

    deployment_file: str | None = None
    queues: set[str] = field(default_factory=set)
    skills: set[str] = field(default_factory=set)
    languages: set[str] = field(default_factory=set)
    agents: set[str] = field(default_factory=set)
    # agent attribute -> its type (text, number, boolean, list): `agent.tier` in routing steps
    agent_attributes: dict[str, str] = field(default_factory=dict)
    bots: set[str] = field(default_factory=set)
    bot_intents: dict[str, tuple[str, ...]] = field(default_factory=dict)  # bot -> its intents
    schedules: set[str] = field(default_factory=set)
    templates: dict[str, TemplateInfo] = field(default_factory=dict)
    data_actions: dict[str, DataActionInfo] = field(default_factory=dict)
    # channel -> its accounts' names and ids as declared; a flow's name matches one by
    # `account_names.account_key` (any case, `+` and `@` optional), as events do at run time
    accounts: dict[str, set[str]] = field(default_factory=dict)
    channels: dict[str, ChannelInfo] = field(default_factory=dict)
    span_of: Callable[[tuple[str | int, ...]], Span | None] = field(default=lambda _path: None)
    # the names of the flows loaded together (validated, served or tested side by side), which
    # `transfer to flow` may name; empty: not known, not checked
    flows: frozenset[str] = frozenset()

    @property
    def has_deployment(self) -> bool:
        return self.deployment_file is not None

    def channel_keys(self) -> tuple[str, ...]:
        return tuple(self.channels) if self.channels else KNOWN_CHANNELS

    def is_public(self, channel: str) -> bool:
        info = self.channels.get(channel)
        return info.public if info is not None else channel in PUBLIC_CHANNELS
