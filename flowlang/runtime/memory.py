"""In-memory implementations of the engine's ports, for dry-runs, tests and small hosts."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flowlang.events import InboundEvent
from flowlang.runtime.phones import normalise_phone
from flowlang.runtime.ports import (
    ConversationView,
    CustomerView,
    DataResult,
    Delivery,
    IdentityClaim,
    OutboundMessage,
    PendingSend,
    PolicyLedger,
    SentMessage,
    User,
    latest_attempts,
    status_advances,
)
from flowlang.runtime.users import check_new_user

__all__ = [
    "AllowAll",
    "MemoryLedger",
    "MemoryOutbox",
    "MemoryStore",
    "MemoryUsers",
    "NoAccounts",
    "RecordingAdapter",
    "RecordingBots",
    "ScriptedDataActions",
    "normalise_phone",
]


_NO_TRANSACTION: AbstractContextManager[None] = nullcontext()  # holds nothing: one for all


@dataclass(slots=True)
class _Customer:
    id: str
    name: str | None = None
    phone: str | None = None
    identities: set[tuple[str, str]] = field(default_factory=set)
    volunteered: set[str] = field(default_factory=set)
    claims: dict[tuple[str, str], IdentityClaim] = field(default_factory=dict)


class MemoryOutbox:
    """An Outbox in a dictionary (what the Engine uses when its store has none)."""

    def __init__(self) -> None:
        self._send_ids = itertools.count(1)
        self.outbox: dict[int, PendingSend] = {}
        self.sent: dict[tuple[str, str], SentMessage] = {}

    def add_outbound(
        self,
        conversation_id: str,
        message: dict[str, Any],
        at: datetime,
        delivered_to: Sequence[str] = (),
    ) -> int:
        send_id = next(self._send_ids)
        self.outbox[send_id] = PendingSend(
            send_id, conversation_id, message, at, delivered_to=list(delivered_to)
        )
        return send_id

    def pending_outbound(
        self, conversation_ids: Collection[str] | None = None
    ) -> list[PendingSend]:
        return [
            dataclasses.replace(send, delivered_to=list(send.delivered_to))
            for send in self.outbox.values()
            if conversation_ids is None or send.conversation_id in conversation_ids
        ]

    def outbound_failed(
        self,
        send_id: int,
        reason: str,
        next_attempt_at: datetime,
        delivered_to: Sequence[str] = (),
    ) -> None:
        send = self.outbox[send_id]
        send.attempts += 1
        send.last_error = reason
        send.next_attempt_at = next_attempt_at
        send.delivered_to = list(delivered_to)

    def outbound_done(self, send_id: int) -> None:
        self.outbox.pop(send_id, None)

    def record_sent(self, sent: SentMessage) -> None:
        self.sent[(sent.channel, sent.vendor_id)] = dataclasses.replace(sent)

    def update_sent(
        self, channel: str, vendor_id: str, status: str, error: str, at: datetime
    ) -> SentMessage | None:
        sent = self.sent.get((channel, vendor_id))
        if sent is None:
            return None
        if status_advances(sent.status, status):
            sent.status, sent.status_at, sent.error = status, at, error
        return dataclasses.replace(sent)

    def update_sent_until(
        self, channel: str, recipient: str, status: str, until: datetime, at: datetime
    ) -> list[SentMessage]:
        changed = []
        for sent in self.sent.values():
            if (
                sent.channel == channel
                and sent.recipient == recipient
                and sent.sent_at <= until
                and status_advances(sent.status, status)
            ):
                sent.status, sent.status_at = status, at
                changed.append(dataclasses.replace(sent))
        return changed

    def sent_messages(self, message_ids: Collection[str]) -> dict[str, SentMessage]:
        wanted = set(message_ids)
        return latest_attempts(s for s in self.sent.values() if s.message_id in wanted)


class MemoryLedger:
    """A PolicyLedger in dictionaries: one process's view (what a policy without a store
    uses)."""

    def __init__(self) -> None:
        self.opt_outs: dict[tuple[str, str, str], datetime] = {}
        self.reaches: dict[str, dict[str, datetime]] = {}

    def opted_out(self, channel: str, account: str, address: str) -> bool:
        return (channel, account, address) in self.opt_outs

    def set_opted_out(
        self, channel: str, account: str, address: str, opted_out: bool, at: datetime
    ) -> None:
        if opted_out:
            self.opt_outs[(channel, account, address)] = at
        else:
            self.opt_outs.pop((channel, account, address), None)

    def reached(self, scope: str, since: datetime, recipient: str) -> tuple[int, bool]:
        recent = {r for r, at in self.reaches.get(scope, {}).items() if at > since}
        return len(recent), recipient in recent

    def record_reach(self, scope: str, recipient: str, at: datetime) -> None:
        reached = self.reaches.setdefault(scope, {})
        reached[recipient] = max(at, reached.get(recipient, at))


class MemoryUsers:
    """The service's users (`UserDirectory`), kept in a dictionary."""

    def __init__(self) -> None:
        self._users: dict[str, User] = {}

    def add_user(
        self,
        name: str,
        role: str,
        token_hash: str,
        at: datetime,
        expires_at: datetime | None = None,
    ) -> User:
        check_new_user(name, role, self._users.get(name))
        self._users[name] = User(name, role, token_hash, at, None, expires_at)
        return self._users[name]

    def user(self, name: str) -> User | None:
        return self._users.get(name)

    def user_by_token_hash(self, token_hash: str) -> User | None:
        return next((u for u in self._users.values() if u.token_hash == token_hash), None)

    def users(self) -> list[User]:
        return sorted(self._users.values(), key=lambda u: u.name)

    def revoke_user(self, name: str, at: datetime) -> bool:
        found = self._users.get(name)
        if found is None or found.revoked_at is not None:
            return False
        self._users[name] = dataclasses.replace(found, revoked_at=at)
        return True


class MemoryStore(MemoryOutbox, MemoryLedger, MemoryUsers):
    """A ConversationStore kept in dictionaries: customers, threads, history, events, an
    outbox, the channel policy's ledger and the service's users."""

    def __init__(self) -> None:
        MemoryOutbox.__init__(self)
        MemoryLedger.__init__(self)
        MemoryUsers.__init__(self)
        self._ids = itertools.count(1)
        self.customers: dict[str, _Customer] = {}
        self.identities: dict[tuple[str, str], str] = {}
        self.conversations: dict[str, ConversationView] = {}
        self.current: dict[tuple[str, str], str] = {}
        self.history: list[dict[str, Any]] = []
        # the event log's rows: (kind, at, conversation_id, data) as written, each made the
        # dictionary readers get when the log is first read after it (`events`)
        self._events: list[Any] = []
        self._events_made = 0
        self.seen: set[tuple[str, str]] = set()
        self.senders: dict[tuple[str, str], str] = {}
        self.unprocessed: dict[tuple[str, str], dict[str, Any]] = {}
        self.flow_versions: dict[str, dict[str, Any]] = {}
        self._letters: list[dict[str, Any]] = []

    def transaction(self) -> AbstractContextManager[None]:
        """Nothing to commit: a dictionary has no rollback (a failed event's changes stay)."""
        return _NO_TRANSACTION

    def accept_inbound(
        self, channel: str, event_id: str, payload: dict[str, Any], processing: bool = False
    ) -> bool:
        key = (channel, event_id)
        if key in self.seen:
            return False
        self.seen.add(key)
        if not processing:
            self.unprocessed[key] = payload
        if payload.get("sender_id"):
            self.senders[key] = str(payload["sender_id"])
        return True

    def accept_event(self, event: InboundEvent) -> bool:
        """`accept_inbound(..., processing=True)` given the event: of an event processed at
        once only its sender is kept, so its stored form is never made."""
        key = (event.channel, event.event_id)
        if key in self.seen:
            return False
        self.seen.add(key)
        if event.sender_id:
            self.senders[key] = event.sender_id
        return True

    def pending_inbound(self) -> list[dict[str, Any]]:
        """Inbound events accepted but not processed, in the order received."""
        return list(self.unprocessed.values())

    def inbound_sender(self, channel: str, event_id: str) -> str | None:
        """Who sent an inbound event seen before (a removal may come without its author)."""
        return self.senders.get((channel, event_id))

    def mark_processed(self, channel: str, event_id: str) -> None:
        self.unprocessed.pop((channel, event_id), None)

    def resolve_customer(
        self, channel: str, external_id: str, phone: str | None, name: str | None
    ) -> CustomerView:
        e164 = normalise_phone(phone) if phone else None
        identities = self.identities
        key = (channel, external_id)
        known_by: set[str] = set()
        customer_id = identities.get(key)
        if customer_id is not None:
            known_by.add("platform id")
        elif e164 and ("phone", e164) in identities:
            customer_id = identities[("phone", e164)]
            known_by.add("phone")
        new = customer_id is None
        if customer_id is None:
            customer_id = f"c{next(self._ids)}"
            customer = self.customers[customer_id] = _Customer(customer_id, name, e164)
        else:
            customer = self.customers[customer_id]
            customer.name = customer.name or name
            customer.phone = customer.phone or e164
        identities.setdefault(key, customer_id)
        customer.identities.add(key)
        if e164:
            identities.setdefault(("phone", e164), customer_id)
            customer.identities.add(("phone", e164))
        if customer.volunteered:
            known_by |= customer.volunteered
        return CustomerView(customer_id, customer.name, customer.phone, frozenset(known_by), new)

    def link_identity(self, customer_id: str, kind: str, value: str) -> CustomerView:
        owner = self.identities.get((kind, value))
        if owner is not None and owner != customer_id:
            self._merge(keep=owner, absorb=customer_id)
            customer_id = owner
        customer = self.customers[customer_id]
        self.identities[(kind, value)] = customer_id
        customer.identities.add((kind, value))
        customer.volunteered.add(kind)
        customer.claims.pop((kind, value), None)
        return CustomerView(
            customer_id, customer.name, customer.phone, frozenset(customer.volunteered), False
        )

    def move_identity(self, customer_id: str, kind: str, value: str) -> CustomerView:
        owner = self.identities.pop((kind, value), None)
        if owner is not None and owner != customer_id:
            self.customers[owner].identities.discard((kind, value))
        return self.link_identity(customer_id, kind, value)

    def claim_identity(
        self, customer_id: str, kind: str, value: str, conversation_id: str, at: datetime
    ) -> bool:
        if self.identities.get((kind, value)) == customer_id:
            return False
        claims = self.customers[customer_id].claims
        claims.setdefault((kind, value), IdentityClaim(kind, value, conversation_id, at))
        return True

    def claims_of(self, customer_id: str) -> list[IdentityClaim]:
        customer = self.customers.get(customer_id)
        return sorted(customer.claims.values(), key=lambda c: c.at) if customer else []

    def _merge(self, keep: str, absorb: str) -> None:
        kept, gone = self.get_customer(keep), self.get_customer(absorb)
        assert kept is not None and gone is not None
        merged = kept.absorbing(gone)
        source = self.customers.pop(absorb)
        target = self.customers[keep]
        target.name, target.phone = merged.name, merged.phone
        target.volunteered = set(merged.known_by)
        for key, claim in source.claims.items():
            target.claims.setdefault(key, claim)
        for customer, channel in [key for key in self.current if key[0] == absorb]:
            conversation_id = self.current.pop((customer, channel))
            self.current.setdefault((keep, channel), conversation_id)
        for key in source.identities:
            self.identities[key] = keep
            target.identities.add(key)
        for conv in self.conversations.values():
            if conv.customer_id == absorb:
                conv.customer_id = keep
        for item in self.history:
            if item["customer_id"] == absorb:
                item["customer_id"] = keep

    def conversation_for(
        self, customer_id: str, channel: str, account: str, now: datetime, window: timedelta
    ) -> ConversationView:
        key = (customer_id, channel)
        current = self.conversations.get(self.current.get(key, ""))
        if current is not None and current.continues_at(now, window):
            current.ongoing = True
            return current
        if current is not None:
            current.close()
        return self._start(customer_id, channel, account, now, current)

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
        """`resolve_customer`, then `conversation_for`: a new customer's conversation is
        started without looking for one they had (`ThreadsSenders`)."""
        customer = self.resolve_customer(kind, external_id, phone, name)
        if customer.new:
            return customer, self._start(customer.id, channel, account, now, None)
        return customer, self.conversation_for(customer.id, channel, account, now, window)

    def _start(
        self,
        customer_id: str,
        channel: str,
        account: str,
        now: datetime,
        after: ConversationView | None,
    ) -> ConversationView:
        conv = ConversationView.starting(
            f"conv{next(self._ids)}", customer_id, channel, account, now, after
        )
        self.conversations[conv.id] = conv
        self.current[(customer_id, channel)] = conv.id
        return conv

    def get_conversation(self, conversation_id: str) -> ConversationView | None:
        return self.conversations.get(conversation_id)

    def save_conversation(self, conversation: ConversationView) -> None:
        self.conversations[conversation.id] = conversation

    def routed_conversations(self) -> list[ConversationView]:
        """Queued or assigned conversations with a routing request, oldest routing first."""
        routed = [
            c
            for c in self.conversations.values()
            if c.status in ("queued", "with_agent") and c.routing
        ]
        return sorted(routed, key=lambda c: (str(c.routing.get("entered_at")), c.id))

    def waiting_timers(self) -> list[tuple[datetime, str, str]]:
        """(deadline, conversation id, timer) of every flow waiting with a time limit."""
        found = []
        for conv in self.conversations.values():
            waiting = conv.flow_state.get("waiting") or {}
            if waiting.get("deadline") and waiting.get("timer"):
                deadline = datetime.fromisoformat(waiting["deadline"])
                found.append((deadline, conv.id, str(waiting["timer"])))
            warning = conv.channel_state.get("window_warning")
            if isinstance(warning, str) and conv.status != "closed":
                at = datetime.fromisoformat(warning)
                found.append((at, conv.id, f"window_closing|{warning}"))
        return sorted(found)

    def save_flow_version(self, version: str, graph: dict[str, Any]) -> None:
        self.flow_versions.setdefault(version, graph)

    def flow_version(self, version: str) -> dict[str, Any] | None:
        return self.flow_versions.get(version)

    def append_message(
        self,
        conversation: ConversationView,
        direction: str,
        content: dict[str, Any],
        at: datetime,
        sender: str,
    ) -> None:
        conversation.count_message(at)
        self.history.append(
            {
                "customer_id": conversation.customer_id,
                "conversation_id": conversation.id,
                "direction": direction,
                "content": content,
                "at": at,
                "sender": sender,
            }
        )

    def append_event(
        self, kind: str, at: datetime, conversation_id: str | None, data: dict[str, Any]
    ) -> None:
        self._events.append((kind, at, conversation_id, data))

    @property
    def events(self) -> list[dict[str, Any]]:
        """The event log in the order written, each event as `iter_events` gives it (the same
        list on every read; a row becomes its dictionary when first read)."""
        rows = self._events
        for index in range(self._events_made, len(rows)):
            kind, at, conversation_id, data = rows[index]
            rows[index] = {**data, "kind": kind, "at": at, "conversation_id": conversation_id}
        self._events_made = len(rows)
        return rows

    def agent_states(self) -> dict[str, str]:
        """Each agent's last state in the event log."""
        return {e["agent"]: e["state"] for e in self.events if e["kind"] == "agent_state"}

    def iter_events(
        self, start: datetime | None = None, end: datetime | None = None
    ) -> Iterator[dict[str, Any]]:
        """The event log in time order: {"kind", "at", "conversation_id", **data}."""
        for event in sorted(self.events, key=lambda e: e["at"]):
            if (start is None or event["at"] >= start) and (end is None or event["at"] < end):
                yield event

    def conversation_events(self, conversation_id: str, kind: str) -> list[dict[str, Any]]:
        """The conversation's events of `kind`, in time order (as `iter_events` gives them)."""
        return [
            e
            for e in self.iter_events()
            if e["conversation_id"] == conversation_id and e["kind"] == kind
        ]

    def get_customer(self, customer_id: str) -> CustomerView | None:
        customer = self.customers.get(customer_id)
        if customer is None:
            return None
        return CustomerView(
            customer.id, customer.name, customer.phone, frozenset(customer.volunteered), False
        )

    def dead_letter(self, source: str, payload: dict[str, Any], reason: str, at: datetime) -> None:
        self._letters.append(
            {
                "id": len(self._letters) + 1,
                "source": source,
                "payload": payload,
                "reason": reason,
                "at": at.isoformat(),
                "replayed_at": None,
            }
        )

    def dead_letters(self, include_replayed: bool = False) -> list[dict[str, Any]]:
        """The kept letters, oldest first (as `SqliteStore.dead_letters` gives them)."""
        return [
            dict(letter)
            for letter in self._letters
            if include_replayed or not letter["replayed_at"]
        ]

    def mark_replayed(self, letter_id: int, at: datetime) -> None:
        self._letters[letter_id - 1]["replayed_at"] = at.isoformat()


class ScriptedDataActions:
    """Data actions answered from a table: action -> result (or a callable)."""

    def __init__(self, results: dict[str, DataResult] | None = None) -> None:
        self.results = dict(results or {})
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def call(self, action: str, inputs: dict[str, Any], timeout_seconds: int | None) -> DataResult:
        self.calls.append((action, dict(inputs)))
        return self.results.get(action, DataResult("failure", {"error": "no result scripted"}))


class RecordingBots:
    """Bots that record hand-offs; outcomes are fed back as BotEvents by the host or test."""

    def __init__(self) -> None:
        self.started: list[tuple[str, str]] = []

    def start(self, conversation_id: str, bot: str, context: dict[str, Any]) -> None:
        self.started.append((conversation_id, bot))


class RecordingAdapter:
    """Keeps every message handed to it (dry-run, tests)."""

    name = "recording"

    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []

    def send(self, message: OutboundMessage) -> None:
        self.sent.append(message)


class NoAccounts:
    """No account settings: every post is actionable, the flow's params keep their values."""

    def actionable(self, channel: str, account: str, text: str) -> bool:
        return True

    def params(self, channel: str, account: str) -> Mapping[str, Any]:
        return {}


class AllowAll:
    """A reply policy that allows everything: for hosts that enforce channel rules elsewhere
    (and tests of what is not the channel rules)."""

    def decide(
        self, message: OutboundMessage, conversation: ConversationView, now: datetime
    ) -> Delivery:
        return Delivery(message, "sent")

    def recheck(
        self, message: OutboundMessage, conversation: ConversationView, now: datetime
    ) -> Delivery:
        return Delivery(message, "sent")

    def window_open(
        self, conversation: ConversationView, now: datetime
    ) -> tuple[bool, timedelta | None]:
        return True, None

    def window_closes_at(self, conversation: ConversationView) -> datetime | None:
        return None

    def window_warning_at(self, conversation: ConversationView) -> datetime | None:
        return None

    def observe_inbound(
        self, conversation: ConversationView, event: Any, now: datetime
    ) -> tuple[str, str] | None:
        return None

    def use_ledger(self, ledger: PolicyLedger) -> None:
        return None  # nothing to remember

    def vendor_failed(self, conversation: ConversationView, code: str, at: datetime) -> str | None:
        return None
