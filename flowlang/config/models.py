"""The deployment file as pydantic models: what a contact center declares beside its flows.

Every model forbids unknown keys so a misspelt key is an error (FL502) with a did-you-mean,
never a silently ignored setting. Cross-references (an agent's skill, a queue's members) are
checked by `flowlang.config.references` after the models validate.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    field_validator,
)
from pydantic_core import PydanticCustomError

from flowlang.account_names import account_key
from flowlang.config.fields import (
    Duration,
    HoursRange,
    Name,
    Proficiency,
    ThreadingWindow,
    TimeZoneName,
    parse_time_range,
)
from flowlang.config.positions import PositionIndex
from flowlang.diagnostics import Span

MEDIA = ("message", "social_dm", "social_public")
Media = Literal["message", "social_dm", "social_public"]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


def _default_capacity() -> dict[Media, int]:
    return {"message": 3}


def _all_media() -> list[Media]:
    return ["message", "social_dm", "social_public"]


AttributeType = Literal["text", "number", "boolean", "list"]
AttributeValue = str | int | float | bool | list[str]


class Agent(Model):
    """A person who answers conversations."""

    name: str | None = None
    skills: dict[Name, Proficiency] = Field(default_factory=dict)
    languages: list[Name] = Field(default_factory=list)
    capacity: dict[Media, int] = Field(default_factory=_default_capacity)
    queues: list[Name] = Field(default_factory=list)
    state: Literal["available", "away", "offline"] = "available"
    auto_answer: bool = False  # offers are accepted at once, without the agent's click
    # values of the deployment's `agent_attributes` (routing steps read them: `agent.tier`)
    attributes: dict[Name, AttributeValue] = Field(default_factory=dict)


class ServiceLevel(Model):
    """Answered within `answer_within` for `target` of interactions (0.8 = 80 %)."""

    answer_within: Duration = timedelta(minutes=5)
    target: float = Field(default=0.8, gt=0, le=1)


class Ring(Model):
    """A bullseye ring: after waiting `after`, the interaction asks less of its agent."""

    after: Duration
    relax_proficiency: int = Field(default=0, ge=0, le=4)  # each skill's minimum, lowered
    remove_skills: list[Name] | Literal["all"] = Field(default_factory=list)


class Inactivity(Model):
    """What happens when a customer with an agent stays silent for `after`."""

    after: Duration
    action: Literal["disconnect", "reroute"] = "disconnect"


class WindowUrgency(Model):
    """Waiting interactions whose reply window closes within `within` gain `add` points."""

    within: Duration = timedelta(hours=1)
    add: float = Field(default=60, ge=0)


class Queue(Model):
    """A workgroup: its members, routing settings, wrap-up codes and service-level goal."""

    description: str | None = None
    members: list[Name] = Field(default_factory=list)
    media: list[Media] = Field(default_factory=_all_media)
    wrap_up_codes: list[Name] = Field(default_factory=list)
    wrap_up_required: bool = False
    after_call_work: Duration = timedelta(0)
    # With wrap_up_required: after-call work still without its code ends at after_call_work
    # (reported as a wrap-up timed out); otherwise it lasts until the agent gives the code.
    wrap_up_may_time_out: bool = False
    offer_timeout: Duration = timedelta(minutes=2)
    service_level: ServiceLevel = Field(default_factory=ServiceLevel)
    selection: Literal["longest_idle", "least_occupied"] = "longest_idle"
    preferred_agent_wait: Duration = timedelta(0)
    bullseye: list[Ring] = Field(default_factory=list)
    inactivity: Inactivity | None = None
    window_urgency: WindowUrgency = Field(default_factory=WindowUrgency)


class Account(Model):
    """One page, handle, phone number or chat widget of a channel."""

    name: Name
    id: str | None = None  # the platform's own id: page id, @handle, E.164 number, widget id
    # WhatsApp: the Cloud API's phone-number id of this number, the one its sends go from
    phone_number_id: str | None = None
    # X: the account's numeric user id, which names it in every Account Activity webhook
    # (`for_user_id`); `flowlang serve` takes only the events of the accounts listed by it
    user_id: str | None = None
    keywords: list[str] = Field(default_factory=list)
    queue: Name | None = None  # default workgroup for conversations on this account
    public_queue: Name | None = None
    dm_queue: Name | None = None

    def answers_to(self) -> frozenset[str]:
        """The names events give this account, as `account_key`s: its name, its platform id and
        (X) its numeric user id. The service's intake, the engine's keyword filters and queues,
        and the choice of a flow by its `serve` lines all find an account by these."""
        return frozenset(account_key(n) for n in (self.name, self.id, self.user_id) if n)

    def is_named(self, name: str) -> bool:
        """Whether an event's account `name` is this account."""
        return account_key(name) in self.answers_to()


class Portfolio(Model):
    """Numbers that share one messaging limit: a WhatsApp business portfolio."""

    # customers reached outside the reply window per moving 24 hours
    tier: int | Literal["unlimited"]
    numbers: list[str] = Field(default_factory=list)  # account names or ids

    @field_validator("tier", mode="before")
    @classmethod
    def _positive(cls, value: Any) -> Any:
        if value != "unlimited" and (
            isinstance(value, bool) or not isinstance(value, int) or value <= 0
        ):
            raise PydanticCustomError(
                "tier",
                "{message}",
                {
                    "message": f"{value!r} is not a messaging limit",
                    "hint": "a number of customers per 24 hours (250, 2000, 10000, 100000) "
                    "or unlimited",
                },
            )
        return value


EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Z_][A-Z0-9_]*$")]


class Connection(Model):
    """How `flowlang serve` talks to a channel's vendor. Secrets are never written here: each
    `*_env` names the environment variable that holds one."""

    signing_secret_env: EnvName | None = None  # Meta app secret, LINE channel secret,
    # X consumer secret, Twilio auth token: what webhook signatures are checked with
    verify_token_env: EnvName | None = None  # Meta's subscription handshake (hub.verify_token)
    access_token_env: EnvName | None = None  # what sends are authorised with
    account_sid_env: EnvName | None = None  # Twilio's account SID (basic auth user)
    api_base: str | None = None  # the vendor API's base URL; tests point it at a fake server


class Channel(Model):
    """A channel the center uses, its accounts, overrides of the built-in channel rules, the
    business portfolios its numbers belong to, and how the service connects to its vendor."""

    accounts: list[Account] = Field(default_factory=list)
    rules: dict[str, Any] = Field(default_factory=dict)
    portfolios: dict[Name, Portfolio] = Field(default_factory=dict)
    connection: Connection | None = None


class WhatsAppTemplate(Model):
    """A WhatsApp message template approved in WhatsApp Manager."""

    name: Name
    language: str = "en"
    category: Literal["UTILITY", "MARKETING", "AUTHENTICATION"] = "UTILITY"
    parameters: list[Name] = Field(default_factory=list)
    status: Literal["APPROVED", "PENDING", "REJECTED", "PAUSED", "DISABLED"] = "APPROVED"
    body: str | None = None


class TemplateItem(Model):
    title: Name
    payload: str | None = None
    url: str | None = None
    image: str | None = None
    subtitle: str | None = None


class Template(Model):
    """A reply the flows name: Jinja2 text, optionally with quick replies, buttons or cards."""

    text: str | None = None
    kind: Literal["text", "quick_replies", "buttons", "carousel", "card"] = "text"
    items: list[TemplateItem | str] = Field(default_factory=list)
    fallback: str | None = None
    whatsapp: WhatsAppTemplate | None = None


class CannedResponse(Model):
    """A standard response agents insert from the workspace: Jinja2 text that may read
    `customer.name`, offered in conversations of `queues` (all queues when empty)."""

    text: str
    queues: list[Name] = Field(default_factory=list)


class Bot(Model):
    """A bot flows hand conversations to; its outcome comes back as an event."""

    description: str | None = None
    endpoint: str | None = None
    timeout: Duration = timedelta(minutes=15)
    intents: list[Name] = Field(default_factory=list)


class Holiday(Model):
    date: date
    name: str | None = None


class Emergency(Model):
    """A period during which the schedule reports `emergency`."""

    start: datetime
    end: datetime
    reason: str | None = None


class Schedule(Model):
    """Opening hours in a time zone, with holidays and emergencies."""

    time_zone: TimeZoneName
    hours: dict[Weekday, list[HoursRange]] = Field(default_factory=dict)
    holidays: list[Holiday | date] = Field(default_factory=list)
    emergencies: list[Emergency] = Field(default_factory=list)
    emergency: bool = False

    def state_at(self, now: datetime) -> str:
        """`open`, `closed`, `holiday` or `emergency` at the instant `now` (aware or UTC)."""
        aware = now if now.tzinfo is not None else now.replace(tzinfo=ZoneInfo("UTC"))
        if self.emergency or any(_within(e, aware) for e in self.emergencies):
            return "emergency"
        local = aware.astimezone(ZoneInfo(self.time_zone))
        if local.date() in self.holiday_dates():
            return "holiday"
        ranges = self.hours.get(WEEKDAYS[local.weekday()], [])  # type: ignore[call-overload]
        clock = local.time().replace(tzinfo=None)
        return "open" if any(_in_range(r, clock) for r in ranges) else "closed"

    def holiday_dates(self) -> set[date]:
        return {h.date if isinstance(h, Holiday) else h for h in self.holidays}


def _within(emergency: Emergency, now: datetime) -> bool:
    start = (
        emergency.start if emergency.start.tzinfo else emergency.start.replace(tzinfo=now.tzinfo)
    )
    end = emergency.end if emergency.end.tzinfo else emergency.end.replace(tzinfo=now.tzinfo)
    return start <= now < end


def _in_range(text: str, clock: time) -> bool:
    start, end = parse_time_range(text)
    return start <= clock and (end is None or clock < end)


class DataAction(Model):
    """A host-provided lookup (a CRM, say) that flows call with named inputs."""

    description: str | None = None
    inputs: list[Name] = Field(default_factory=list)
    outputs: list[Name] = Field(default_factory=list)
    timeout: Duration = timedelta(seconds=10)
    # Its success proves who the customer is (it checks a one-time code or a secret), so a flow
    # may link what it returns with `verified by`.
    proves_identity: bool = False


class Access(Model):
    """How `flowlang serve` guards its people's access: how long a browser's sign-in session
    lasts idle and at most, the token `/metrics` asks of its scrapers (by variable name), and
    how many failed sign-ins one address may make in how long."""

    session_idle_timeout: Duration = Field(default=timedelta(minutes=30), gt=timedelta(0))
    session_lifetime: Duration = Field(default=timedelta(hours=12), gt=timedelta(0))
    metrics_token_env: EnvName | None = None  # unset: /metrics answers no one
    # this many failed sign-ins from one address within the window: its next ones are refused
    # (429) until a window after the last of them
    failed_signin_limit: int = Field(default=10, gt=0)
    failed_signin_window: Duration = Field(default=timedelta(minutes=1), gt=timedelta(0))


class Deployment(Model):
    """Everything a center declares besides its flows."""

    threading_window: ThreadingWindow = timedelta(hours=72)
    languages: list[Name] = Field(default_factory=list)
    skills: list[Name] = Field(default_factory=list)
    queues: dict[Name, Queue] = Field(default_factory=dict)
    agents: dict[Name, Agent] = Field(default_factory=dict)
    agent_attributes: dict[Name, AttributeType] = Field(default_factory=dict)
    channels: dict[Name, Channel] = Field(default_factory=dict)
    templates: dict[Name, Template] = Field(default_factory=dict)
    canned_responses: dict[Name, CannedResponse] = Field(default_factory=dict)
    bots: dict[Name, Bot] = Field(default_factory=dict)
    schedules: dict[Name, Schedule] = Field(default_factory=dict)
    data_actions: dict[Name, DataAction] = Field(default_factory=dict)
    wrap_up_codes: list[Name] = Field(default_factory=list)
    environments: dict[Name, dict[str, Any]] = Field(default_factory=dict)
    access: Access = Field(default_factory=Access)

    _positions: PositionIndex | None = PrivateAttr(default=None)

    def span_of(self, path: tuple[str | int, ...]) -> Span | None:
        """Where the value at `path` (e.g. `("queues", "Loans")`) is written in the file."""
        return self._positions.value_span(path) if self._positions is not None else None

    @property
    def file(self) -> str | None:
        return self._positions.filename if self._positions is not None else None

    def account(self, channel: str, name_or_id: str) -> Account | None:
        """The account of `channel` that answers to `name_or_id` (`Account.answers_to`)."""
        entry = self.channels.get(channel)
        if entry is None:
            return None
        return next((a for a in entry.accounts if a.is_named(name_or_id)), None)
