"""The seams a host plugs into: what the Engine needs from the world, as protocols.

The Engine has no default for any of them: `Ports` names every part it is built with, and
`flowlang.assembly` puts the built-in ones together (in-memory ones from
`flowlang.runtime.memory`; the store, ACD and channels packages for the real ones).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from flowlang.errors import FlowError
from flowlang.events import EventKind, InboundEvent
from flowlang.runtime.state import FlowState, Waiting


class Clock(Protocol):
    def now(self) -> datetime: ...


@dataclass
class CustomerView:
    id: str
    name: str | None = None
    phone: str | None = None
    known_by: frozenset[str] = frozenset()
    new: bool = True

    def absorbing(self, other: CustomerView) -> CustomerView:
        """This customer's record once `other` is merged into it (every store merges alike):
        its own name and phone, else `other`'s; the identities either volunteered. What is
        keyed (claims, the current conversation per channel) stays this customer's where it
        has one and moves over from `other` where it has none."""
        return CustomerView(
            self.id,
            self.name if self.name is not None else other.name,
            self.phone if self.phone is not None else other.phone,
            self.known_by | other.known_by,
            False,
        )


@dataclass
class IdentityClaim:
    """An identity the customer says is theirs (a typed account number) that nothing has proven:
    recorded and shown to agents, but it identifies no one and joins no other customer's record."""

    kind: str
    value: str
    conversation_id: str
    at: datetime


@dataclass
class _ConversationFields:
    """`ConversationView`'s fields: what a store persists of a conversation, field by field."""

    id: str
    customer_id: str
    channel: str
    account: str
    started_at: datetime
    last_activity_at: datetime
    ongoing: bool = False
    status: str = "open"  # open | bot | queued | with_agent | closed
    last_agent: str | None = None
    agent: str | None = None
    queue: str | None = None
    wrap_up: str | None = None
    wrap_up_agent: str | None = None  # the agent in after-call work on it, who may give a code
    messages: int = 0
    flow_state: dict[str, Any] = field(default_factory=dict)
    channel_state: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    last_inbound_at: datetime | None = None
    last_sender_id: str = ""
    post_id: str | None = None
    # The customer's latest comment or post on a public channel: a public reply answers it.
    reply_to: str | None = None
    # The last routing request (JSON values) and when it entered: an ACD rebuilt after a
    # restart takes queued and assigned conversations back from it.
    routing: dict[str, Any] = field(default_factory=dict)


_new = object.__new__

NO_STATE = FlowState()
"""The state of a flow that has not run: the one `ConversationView.state` gives for all of
them (a run never changes the state it is given)."""


class ConversationView(_ConversationFields):
    """What the engine needs of a conversation; the store persists it.

    `flow_state` and `routing` are JSON forms (what a durable store writes). The engine keeps
    the objects they are made from with the conversation (`keep_state`, `keep_routing`) and
    reads them back without decoding (`state`, `waiting`, `routing_entered_at`); each JSON
    form is made when it is first read, so once per save for a durable store, and never on the
    in-memory store's hot path. Reading it hands the JSON form over: from then on it is what
    the conversation holds (a reader may change it in place), and `state` decodes it."""

    _flow_state: dict[str, Any]
    _live_state: FlowState | None
    _routing: dict[str, Any]
    _live_routing: tuple[RoutingRequest, datetime] | None

    @property
    def flow_state(self) -> dict[str, Any]:
        """The flow state's JSON form (`FlowState.to_json`)."""
        live = self._live_state
        if live is not None:
            self._flow_state, self._live_state = live.to_json(), None
        return self._flow_state

    @flow_state.setter
    def flow_state(self, value: dict[str, Any]) -> None:
        self._flow_state, self._live_state = value, None

    @property
    def routing(self) -> dict[str, Any]:
        """The last routing request's JSON form, with when it entered (`routing_json`)."""
        live = self._live_routing
        if live is not None:
            self._routing, self._live_routing = routing_json(*live), None
        return self._routing

    @routing.setter
    def routing(self, value: dict[str, Any]) -> None:
        self._routing, self._live_routing = value, None

    def keep_state(self, state: FlowState) -> None:
        """The flow's state is now `state` (the caller changes it no more)."""
        self._live_state = state

    def state(self) -> FlowState:
        """The flow's state: the one kept (`keep_state`), else decoded from the JSON form;
        not a copy, and shared by every conversation whose flow has not run yet (`clone` it
        to change it)."""
        live = self._live_state
        if live is not None:
            return live
        return FlowState.from_json(self._flow_state) if self._flow_state else NO_STATE

    def resume_point(self) -> FlowState:
        """A new state with only the flow state's version and what it waits for
        (`FlowState.resumes_at`): what choosing its program reads (and may change)."""
        live = self._live_state
        if live is not None:
            return FlowState(live.graph_version, waiting=live.waiting)
        return FlowState.resumes_at(self._flow_state)

    def waiting(self) -> Waiting | None:
        """What the flow waits for (None: nothing)."""
        live = self._live_state
        if live is not None:
            return live.waiting
        return FlowState.resumes_at(self._flow_state).waiting if self._flow_state else None

    def keep_routing(self, request: RoutingRequest, entered_at: datetime) -> None:
        """The conversation's routing is now `request`, waiting since `entered_at`."""
        self._live_routing = (request, entered_at)

    def routing_entered_at(self) -> datetime | None:
        """When the last routing entered its queue (None: no routing is kept)."""
        live = self._live_routing
        if live is not None:
            return live[1]
        entered = self._routing.get("entered_at")
        return datetime.fromisoformat(entered) if entered else None

    # The bookkeeping every store does the same way (MemoryStore, SqliteStore).
    @classmethod
    def starting(
        cls,
        conversation_id: str,
        customer_id: str,
        channel: str,
        account: str,
        now: datetime,
        after: ConversationView | None,
    ) -> ConversationView:
        """A new conversation at `now`; it keeps the last agent of the one it comes `after`.
        Every field is set as `__init__` sets it (a test compares the two), without its
        defaults' factories and the forms' setters: a new customer's first message makes one."""
        conv = _new(cls)
        conv.id, conv.customer_id, conv.channel, conv.account = (
            conversation_id,
            customer_id,
            channel,
            account,
        )
        conv.started_at = conv.last_activity_at = now
        conv.ongoing, conv.status = False, "open"
        conv.last_agent = after.last_agent if after else None
        conv.agent = conv.queue = conv.wrap_up = conv.wrap_up_agent = None
        conv.messages = 0
        conv._flow_state, conv._live_state = {}, None
        conv.channel_state, conv.data = {}, {}
        conv.last_inbound_at, conv.last_sender_id = None, ""
        conv.post_id = conv.reply_to = None
        conv._routing, conv._live_routing = {}, None
        return conv

    def continues_at(self, now: datetime, window: timedelta) -> bool:
        """Whether a message at `now` is part of this conversation: it comes within the
        threading window of the last activity (a window of 0 starts one per message)."""
        return window > timedelta(0) and now - self.last_activity_at < window

    def close(self) -> bool:
        """Close the conversation; False when it was closed already."""
        if self.status == "closed":
            return False
        self.status = "closed"
        return True

    def count_message(self, at: datetime) -> None:
        """A message in or out: one more, and the last activity moves to `at` (never back)."""
        self.messages += 1
        self.last_activity_at = max(self.last_activity_at, at)


class KeepsInboundEvents(Protocol):
    """What a store may offer beside `accept_inbound`: taking an inbound event the engine
    processes in the same unit of work as the event itself. A store that keeps no stored form
    of such an event (the in-memory store keeps only its sender) spares the engine making one;
    a store without `accept_event` is given the stored form (`InboundEvent.model_dump`)."""

    def accept_event(self, event: InboundEvent) -> bool:
        """`accept_inbound(channel, event_id, <its stored form>, processing=True)`."""


class ThreadsSenders(Protocol):
    """What a store may offer beside `resolve_customer` and `conversation_for`: both in one
    call (the in-memory store: a new customer has no conversation to look for). A store
    without it is asked the two in turn (`sender_and_conversation`)."""

    def sender_and_conversation(
        self,
        kind: str,
        external_id: str,
        phone: str | None,
        name: str | None,
        channel: str,
        account: str,
        now: datetime,
        window: timedelta,
    ) -> tuple[CustomerView, ConversationView]:
        """`resolve_customer(kind, external_id, phone, name)`, then `conversation_for` that
        customer on `channel` and `account` at `now` with the threading `window`."""


def sender_and_conversation(
    store: ConversationStore,
    kind: str,
    external_id: str,
    phone: str | None,
    name: str | None,
    channel: str,
    account: str,
    now: datetime,
    window: timedelta,
) -> tuple[CustomerView, ConversationView]:
    """Who wrote (`resolve_customer`) and the conversation their message belongs to
    (`conversation_for`): in one call of a store that offers it (`ThreadsSenders`)."""
    both = getattr(store, "sender_and_conversation", None)
    if both is not None:
        found: tuple[CustomerView, ConversationView] = both(
            kind, external_id, phone, name, channel, account, now, window
        )
        return found
    customer = store.resolve_customer(kind, external_id, phone, name)
    return customer, store.conversation_for(customer.id, channel, account, now, window)


@dataclass
class PendingSend:
    """An outbound message the policy allowed, waiting in the outbox to be delivered."""

    id: int
    conversation_id: str
    message: dict[str, Any]  # the OutboundMessage's fields, as JSON values
    queued_at: datetime
    attempts: int = 0
    last_error: str = ""
    next_attempt_at: datetime | None = None
    delivered_to: list[str] = field(default_factory=list)  # adapters that took it already


# A vendor's statuses of a message it accepted, in the order they can follow one another; a
# status reported late (a "sent" after "read") never replaces a later one, and "failed" is final.
SENT_STATUSES = ("accepted", "sent", "delivered", "read", "failed")


def status_advances(old: str, new: str) -> bool:
    """Whether a message's status `old` gives way to the status `new` a vendor reported."""
    if old == "failed":
        return False
    rank = {status: i for i, status in enumerate(SENT_STATUSES)}
    return rank.get(new, -1) > rank.get(old, -1)


@dataclass
class SentMessage:
    """A message a vendor accepted, by the vendor's id of it, with the latest status the vendor
    reported (`accepted` until a status webhook says more) and, when it failed, why."""

    channel: str
    vendor_id: str
    message_id: str  # the outbox's id of the message (the history's `message_id`)
    conversation_id: str
    recipient: str
    sent_at: datetime
    status: str = "accepted"
    status_at: datetime | None = None
    error: str = ""


def latest_attempts(sent: Iterable[SentMessage]) -> dict[str, SentMessage]:
    """Each message's latest attempt, by message id (a message given up on and replayed has
    two: the failed `unsent:` one and the one the vendor accepted)."""
    ordered = sorted(sent, key=lambda s: (s.status_at or s.sent_at, s.sent_at))
    return {s.message_id: s for s in ordered}


class SentLedger(Protocol):
    """The vendor ids of the messages sent, so that the vendor's status webhooks (delivered,
    read, failed) find the message and conversation they are about."""

    def record_sent(self, sent: SentMessage) -> None:
        """Keep a message the vendor accepted. Outside a transaction it may be written with the
        next one (as `outbound_done` is), which a status webhook's processing always is."""

    def update_sent(
        self, channel: str, vendor_id: str, status: str, error: str, at: datetime
    ) -> SentMessage | None:
        """The vendor reported `status` for its message `vendor_id`: kept when it advances the
        message's status (`status_advances`). The message as it now is, or None when no sent
        message has that id."""

    def update_sent_until(
        self, channel: str, recipient: str, status: str, until: datetime, at: datetime
    ) -> list[SentMessage]:
        """A watermark (Messenger, Instagram): every message to `recipient` on `channel` sent
        at or before `until` has `status` (where it advances); those changed."""

    def sent_messages(self, message_ids: Collection[str]) -> dict[str, SentMessage]:
        """The sent messages of these outbox message ids, by message id: of a message tried
        more than once (given up on, then replayed), the latest attempt."""


class Outbox(Protocol):
    """Outbound messages saved with the state change that made them, delivered once it is
    committed: a failed delivery keeps the flow's progress and is retried on its own, and a
    rolled-back event sends nothing. Every `ConversationStore` is one (`MemoryStore` and
    `SqliteStore` alike)."""

    def add_outbound(
        self,
        conversation_id: str,
        message: dict[str, Any],
        at: datetime,
        delivered_to: Sequence[str] = (),
    ) -> int: ...

    def pending_outbound(
        self, conversation_ids: Collection[str] | None = None
    ) -> list[PendingSend]:
        """Waiting sends (of these conversations), oldest first."""

    def outbound_failed(
        self,
        send_id: int,
        reason: str,
        next_attempt_at: datetime,
        delivered_to: Sequence[str] = (),
    ) -> None:
        """A delivery failed: retry at `next_attempt_at`, skipping the adapters named in
        `delivered_to` (they took it)."""

    def outbound_done(self, send_id: int) -> None:
        """Delivered, or given up on (the engine keeps it as a dead letter)."""


class PolicyLedger(Protocol):
    """What the channel policy remembers beyond one conversation: who opted out of which
    business number, and which customers a business reached outside the reply window (the
    WhatsApp messaging limit). `MemoryStore` and `SqliteStore` keep it, so every conversation,
    a restart and several processes on one store file see the same; a policy without a store
    keeps its own in memory."""

    def opted_out(self, channel: str, account: str, address: str) -> bool:
        """Whether the customer at `address` opted out of `account` on `channel`."""

    def set_opted_out(
        self, channel: str, account: str, address: str, opted_out: bool, at: datetime
    ) -> None: ...

    def reached(self, scope: str, since: datetime, recipient: str) -> tuple[int, bool]:
        """How many customers `scope` reached after `since`, and whether `recipient`
        is one of them."""

    def record_reach(self, scope: str, recipient: str, at: datetime) -> None: ...


class ConversationStore(PolicyLedger, Outbox, SentLedger, Protocol):
    """Customers, identities, threading and history, as the engine uses them; the channel
    policy's ledger (opt-outs, customers reached), which the Engine gives its policy; and the
    outbox, where allowed messages wait to be delivered."""

    def transaction(self) -> AbstractContextManager[None]:
        """Everything done inside commits together, or not at all (a store that cannot roll
        back returns a context that does nothing)."""

    def accept_inbound(
        self, channel: str, event_id: str, payload: dict[str, Any], processing: bool = False
    ) -> bool:
        """Store an inbound event; False when this channel message id was seen before.
        `processing`: (inside a transaction) the caller processes it in the same transaction,
        so it is stored as processed at once (`mark_processed` is not needed): if the
        transaction rolls back, the event was never stored either."""

    def mark_processed(self, channel: str, event_id: str) -> None: ...

    def pending_inbound(self) -> list[dict[str, Any]]:
        """Inbound events accepted but not processed (a crash came in between), oldest first."""

    def inbound_sender(self, channel: str, event_id: str) -> str | None:
        """Who sent an inbound event seen before (a removal may come without its author)."""

    def resolve_customer(
        self, channel: str, external_id: str, phone: str | None, name: str | None
    ) -> CustomerView: ...

    def link_identity(self, customer_id: str, kind: str, value: str) -> CustomerView:
        """A proven identity: the customer is known by it; when another customer has it, the
        two are merged into that one (identities, conversations, history)."""

    def move_identity(self, customer_id: str, kind: str, value: str) -> CustomerView:
        """The channel says this identity is now the customer's (a changed number): it leaves
        whoever had it and nothing is merged, since numbers are recycled to strangers."""

    def claim_identity(
        self, customer_id: str, kind: str, value: str, conversation_id: str, at: datetime
    ) -> bool:
        """Record an unproven identity as the customer's claim; False (nothing recorded) when it
        is already one of the customer's own identities."""

    def claims_of(self, customer_id: str) -> list[IdentityClaim]:
        """The customer's unproven claims, oldest first."""

    def conversation_for(
        self, customer_id: str, channel: str, account: str, now: datetime, window: timedelta
    ) -> ConversationView:
        """The customer's conversation on `channel` that continues at `now`, else a new one.
        The caller saves it (`save_conversation`) in the same unit of work: a store may leave
        a new conversation's record to that save."""

    def get_conversation(self, conversation_id: str) -> ConversationView | None: ...

    def save_conversation(self, conversation: ConversationView) -> None: ...

    def get_customer(self, customer_id: str) -> CustomerView | None: ...

    def routed_conversations(self) -> list[ConversationView]:
        """Conversations queued or with an agent that have a stored routing request (what an
        ACD takes back after a restart), oldest routing first."""

    def waiting_timers(self) -> list[tuple[datetime, str, str]]:
        """(deadline, conversation id, timer) of every flow waiting with a time limit."""

    def save_flow_version(self, version: str, graph: dict[str, Any]) -> None:
        """Keep a flow version's graph, for conversations in flight on it after a restart."""

    def flow_version(self, version: str) -> dict[str, Any] | None:
        """The graph kept by `save_flow_version`, or None."""

    def append_message(
        self,
        conversation: ConversationView,
        direction: str,
        content: dict[str, Any],
        at: datetime,
        sender: str,
    ) -> None: ...

    def append_event(
        self, kind: str, at: datetime, conversation_id: str | None, data: dict[str, Any]
    ) -> None:
        """Log an event, read back as `{"kind", "at", "conversation_id", **data}`. `data` is
        the store's once given: the engine makes one for each event and changes it no more (a
        store may keep it as it is until the log is read)."""

    def agent_states(self) -> dict[str, str]:
        """Each agent's last state in the event log (`agent_state` events): what a restarted
        ACD sets them to."""

    def dead_letter(
        self, source: str, payload: dict[str, Any], reason: str, at: datetime
    ) -> None: ...


ROLES = ("agent", "supervisor", "admin")


@dataclass(frozen=True)
class User:
    """Someone who may use the service's API: an agent, a supervisor or an admin. Only the
    SHA-256 of their token is kept (the token itself is shown once, when it is made)."""

    name: str
    role: str  # agent | supervisor | admin
    token_hash: str
    created_at: datetime
    revoked_at: datetime | None = None
    expires_at: datetime | None = None  # when the token stops working (None: never)


class UserDirectory(Protocol):
    """The service's users and their API tokens (by hash); `MemoryStore` and `SqliteStore` keep
    them."""

    def add_user(
        self,
        name: str,
        role: str,
        token_hash: str,
        at: datetime,
        expires_at: datetime | None = None,
    ) -> User:
        """A new user, or a new token (and role) for one whose token was revoked; `InputError`
        when `name` has a token that is not revoked or `role` is not one of `ROLES`. The token
        stops working at `expires_at` (None: only when revoked)."""

    def user(self, name: str) -> User | None: ...

    def user_by_token_hash(self, token_hash: str) -> User | None:
        """The user whose token hashes to `token_hash`, revoked or not."""

    def users(self) -> list[User]:
        """Every user, revoked ones too, by name."""

    def revoke_user(self, name: str, at: datetime) -> bool:
        """Revoke the user's token; False when there is no such user or it was revoked."""


@dataclass
class DataResult:
    status: str  # success | failure | timeout | not_found
    outputs: dict[str, Any] = field(default_factory=dict)


class DataActions(Protocol):
    def call(
        self, action: str, inputs: dict[str, Any], timeout_seconds: int | None
    ) -> DataResult: ...


class Bots(Protocol):
    def start(self, conversation_id: str, bot: str, context: dict[str, Any]) -> None:
        """Hand the conversation to a bot; its outcome arrives later as a BotEvent."""


@dataclass
class RoutingRequest:
    """What the flow asks of the ACD for a conversation (`route to queue`)."""

    conversation_id: str
    queue: str
    media: str
    skills: dict[str, int | None]
    language: str | None
    priority: float
    preferred_agents: list[tuple[str, int | None]]
    last_agent: str | None
    timeout_seconds: int | None
    window_closes_at: datetime | None = None
    agent_steps: tuple[AgentStep, ...] = ()


@dataclass(frozen=True)
class AgentStep:
    """One step of an ordered routing target (`prefer agents where ... for 2m`): the agents
    `condition` takes (the canonical JSON of an expression tree on `agent.<attribute>` alone,
    `flowlang.runtime.agent_steps`; None: any agent of the queue), for `seconds` (None: until
    the routing ends)."""

    condition: str | None
    seconds: int | None = None


def routing_json(request: RoutingRequest, entered_at: datetime) -> dict[str, Any]:
    """A routing request's JSON form, with when it entered its queue (`entered_at`): what
    `ConversationView.routing` holds, and a restart routes from (`request_from`)."""
    closes = request.window_closes_at
    stored = {
        "queue": request.queue,
        "media": request.media,
        "skills": dict(request.skills),
        "language": request.language,
        "priority": request.priority,
        "preferred_agents": (
            [list(p) for p in request.preferred_agents] if request.preferred_agents else []
        ),
        "last_agent": request.last_agent,
        "timeout_seconds": request.timeout_seconds,
        "window_closes_at": closes.isoformat() if closes else None,
        "entered_at": entered_at.isoformat(),
    }
    if request.agent_steps:
        stored["agent_steps"] = [[s.condition, s.seconds] for s in request.agent_steps]
    return stored


@dataclass
class RoutingNotice:
    """Something the ACD tells the engine: an agent took it, the queue timed out, ..."""

    kind: str  # offered | accepted | queue_timeout | agent_unavailable | abandoned | expired
    conversation_id: str
    agent: str | None = None
    queue: str | None = None
    at: datetime | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QueueStatus:
    """A queue now, as a flow reads it (`queue("Retail Banking").waiting`, and `in_queue` in a
    `while queued` block): interactions waiting, agents on the queue (not offline) and those
    free to take one now, the service level in percent (None: nobody answered or left lately),
    the place in line of the conversation asked about (1: next; None: none asked about, or it
    does not wait in this queue) and the estimated wait, of that place or else of a new
    interaction (None: not known). docs/acd.md, "Queue figures", defines the estimate."""

    waiting: int = 0
    agents_on_queue: int = 0
    agents_available: int = 0
    estimated_wait: timedelta | None = None
    service_level: float | None = None
    position: int | None = None


@dataclass(frozen=True, slots=True)
class AcdAgent:
    """An agent as the ACD has them now: a read-only copy for a host to show."""

    id: str
    state: str  # available | away | offline | not_responding
    queues: frozenset[str] = frozenset()
    capacity: Mapping[str, int] = field(default_factory=dict)  # media -> how many at once
    # conversation id -> media, in the order they took them: offered, active or after-call work
    holding: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AcdInteraction:
    """A conversation as the ACD distributes it now: a read-only copy for a host to show."""

    conversation_id: str
    phase: str  # preferred | waiting | direct | offered | active | wrap_up
    queue: str | None  # None: routed to one agent alone
    media: str
    entered_at: datetime  # when it started to wait
    agent: str | None = None  # offered to, or held by
    skills: Mapping[str, int] = field(default_factory=dict)  # skill -> minimum level
    offer_ends_at: datetime | None = None  # when the open offer times out
    wrap_up: str | None = None  # the wrap-up code given so far


class AcdError(FlowError, ValueError):
    """A request an `Acd` cannot act on (an unknown agent, an agent state it has not): what it
    raises, and the service answers 422."""


class Acd(Protocol):
    """Automatic call distribution: the engine asks, the ACD answers with notices.

    Notices it may return: offered, accepted, declined, not_responding, requeued, waiting,
    withdrawn, expired, disconnected, priority_raised, ring_widened, target_widened,
    after_call_work,
    wrap_up_ended, wrap_up_rejected, agent_unavailable. Never queued, transferred or completed:
    the engine logs those itself. `wrap_up_rejected` (with `code` and `reason` in its data) is the
    whole answer to a complete or wrap-up whose code the queue refuses: the ACD changed nothing,
    and the engine refuses the agent's action. `flowlang.acd.SkillsAcd` is the built-in one.
    """

    def enqueue(self, request: RoutingRequest, now: datetime) -> list[RoutingNotice]: ...

    def request_agent(
        self, conversation_id: str, agent: str, media: str, wait_seconds: int | None, now: datetime
    ) -> list[RoutingNotice]: ...

    def withdraw(self, conversation_id: str, now: datetime) -> list[RoutingNotice]: ...

    def complete(
        self, conversation_id: str, agent: str, wrap_up: str | None, now: datetime
    ) -> list[RoutingNotice]: ...

    def transfer(
        self, conversation_id: str, queue: str | None, agent: str | None, now: datetime
    ) -> list[RoutingNotice]: ...

    def accept(self, conversation_id: str, agent: str, now: datetime) -> list[RoutingNotice]: ...

    def decline(self, conversation_id: str, agent: str, now: datetime) -> list[RoutingNotice]: ...

    def wrap_up(
        self, conversation_id: str, agent: str, wrap_up: str | None, now: datetime
    ) -> list[RoutingNotice]: ...

    def set_agent_state(self, agent: str, state: str, now: datetime) -> list[RoutingNotice]:
        """The agent sets themselves available, away or offline; `AcdError` for an agent or a
        state this ACD does not know."""

    def customer_activity(
        self, conversation_id: str, now: datetime, window_closes_at: datetime | None = None
    ) -> None:
        """The customer wrote to a routed conversation: their inactivity clock starts again,
        and its reply window now closes at `window_closes_at` (None: as it did)."""

    def tick(self, now: datetime) -> list[RoutingNotice]: ...

    def next_deadline(self) -> datetime | None:
        """When `tick` next has something to do (None: nothing is armed)."""

    def restore(
        self, request: RoutingRequest, entered_at: datetime, agent: str | None, now: datetime
    ) -> list[RoutingNotice]:
        """Take an interaction back after a restart: held by `agent`, or waiting since
        `entered_at`, keeping its place in line."""

    def reset(self) -> None:
        """Forget every interaction, and each agent's state and work (agents as the
        deployment starts them): the engine then gives back what its store holds (`restore`,
        `set_agent_state`), after the store undid work the ACD had been told of."""

    def queue_status(
        self, queue: str, now: datetime, conversation_id: str | None = None
    ) -> QueueStatus:
        """The queue's figures at `now`: for `queue(...)` in a flow's expressions, and, with
        `conversation_id`, that conversation's place and estimated wait (`in_queue`)."""

    def refused_code(
        self, conversation_id: str, queue: str | None, agent: str, code: str | None, now: datetime
    ) -> RoutingNotice | None:
        """Judge a wrap-up code for after-call work this ACD no longer holds (lost in a
        restart): a `wrap_up_rejected` notice, or None when the code is fine."""

    # What a host shows (the service's agent and supervisor pages): read-only copies, never
    # the ACD's own records; the engine itself asks none of these.
    def agent_view(self, agent: str) -> AcdAgent | None:
        """The agent now (None: an agent this ACD does not know)."""

    def agent_views(self) -> list[AcdAgent]:
        """Every agent this ACD knows, by id."""

    def interaction_view(self, conversation_id: str) -> AcdInteraction | None:
        """The conversation's interaction now (None: the ACD holds none for it)."""

    def work_views(self, agent: str, now: datetime) -> list[AcdInteraction]:
        """What `agent` has at `now`: offers still open to them (not timed out, even before a
        `tick`), interactions they are in, and their after-call work."""

    def waiting_counts(self) -> dict[str, int]:
        """Per queue, its interactions not yet with an agent (offered ones included); every
        queue named, 0 when none waits; '' for those routed to one agent alone."""


INITIATED = "business"  # the sender of a business-initiated message (`Engine.initiate`)


@dataclass
class OutboundMessage:
    conversation_id: str
    channel: str
    account: str
    recipient: str
    sender: str  # flow | bot | agent | business (business-initiated)
    content: dict[str, Any]
    visibility: str = "default"
    in_reply_to: str | None = None
    # Given when the message enters the outbox and kept through every retry and resend: the
    # HTTP adapter's Idempotency-Key is made from it.
    message_id: str = ""
    # A private reply's addressee on Meta's Private Replies: {"comment_id": ...} or {"post_id": ...}
    private_reply_to: dict[str, str] | None = None


@dataclass
class Delivery:
    """What became of one outbound message."""

    message: OutboundMessage
    status: str  # sent | blocked | degraded | skipped | recorded
    reason_code: str = ""
    reason: str = ""
    suggestion: str = ""
    # The messages it goes out as, in order, where the channel takes it as several (a Meta
    # carousel's text, then its generic template); empty: `message` alone.
    parts: tuple[OutboundMessage, ...] = ()


class OutboundAdapter(Protocol):
    """Delivers messages somewhere. An optional `name` attribute identifies it in the outbox
    (which adapters already took a message); without one its class name does."""

    def send(self, message: OutboundMessage) -> str | None:
        """Deliver or raise; an exception with `permanent = True` is not retried. A vendor's
        id of the message it accepted is returned (status webhooks name it), else None."""


class AccountDirectory(Protocol):
    """A deployment's accounts: each public account's keyword filter, and the queues an account
    names (the values of the flow's params of those names on that account)."""

    def actionable(self, channel: str, account: str, text: str) -> bool: ...

    def params(self, channel: str, account: str) -> Mapping[str, Any]: ...


class ReplyPolicy(Protocol):
    """Channel rules applied to every outbound message before any adapter sees it."""

    def decide(
        self, message: OutboundMessage, conversation: ConversationView, now: datetime
    ) -> Delivery: ...

    def recheck(
        self, message: OutboundMessage, conversation: ConversationView, now: datetime
    ) -> Delivery:
        """Check again a message allowed earlier, before it is sent again (a resend): the
        opt-out, the window and the limits as they are now; what the first decision counted
        (replies per customer message, the last text) is not counted twice."""

    def window_open(
        self, conversation: ConversationView, now: datetime
    ) -> tuple[bool, timedelta | None]: ...

    def window_closes_at(self, conversation: ConversationView) -> datetime | None:
        """When an agent can no longer answer (None: never); the ACD expires it then."""

    def window_warning_at(self, conversation: ConversationView) -> datetime | None:
        """When a flow's `on window closing` runs: the channel's warning time before its
        standard window closes (None: no window, no warning time, or no message yet)."""

    def observe_inbound(
        self, conversation: ConversationView, event: Any, now: datetime
    ) -> tuple[str, str] | None:
        """A customer message arrived; an opt-out / opt-in / help keyword gives (what, text)."""

    def use_ledger(self, ledger: PolicyLedger) -> None:
        """Keep opt-outs and reach counts in `ledger` (the Engine gives its store, so every
        conversation, process and restart sees the same); a policy with nothing to remember
        ignores it."""

    def vendor_failed(self, conversation: ConversationView, code: str, at: datetime) -> str | None:
        """The vendor reported a message of `conversation` failed with error `code`: what
        that changes (`window_closed`: only templates until the customer writes again), or
        None."""


ScheduleOracle = Callable[[str, datetime], str]  # schedule name, time -> open / closed / ...


@dataclass(frozen=True)
class Ports:
    """Every part an Engine is built with; none has a default inside the runtime.
    `flowlang.assembly.assemble_engine` (or `Project.engine`) puts the built-in ones together
    for a deployment."""

    store: ConversationStore
    acd: Acd
    bots: Bots
    data_actions: DataActions
    adapters: Sequence[OutboundAdapter]
    policy: ReplyPolicy
    schedule_state: ScheduleOracle
    accounts: AccountDirectory
    # What the channel registry says of a channel: the identity kind its user ids belong to
    # (X DMs and X posts share one), how it addresses a customer ("phone", "phone_digits",
    # "id"), and the ACD media type of an event kind on it.
    identity_kind: Callable[[str], str]
    address_of: Callable[[str], str]
    media_of: Callable[[str, EventKind], str]
    # Whether the deployment has a queue, skill, agent or language of that name: `names(kind,
    # name)`, for routing targets a flow's data names (`route to queue crm.product`).
    names: Callable[[str, str], bool]
