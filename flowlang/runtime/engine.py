"""The Engine: what host services embed.

It takes inbound events (customer messages and posts, edits and deletions, agent actions, bot
outcomes, timers), keeps each conversation's flow state in the store, runs the interpreter, and
applies the effects: replies through the channel policy to the outbound adapters, routing through
the ACD, bot hand-offs, data actions, identity links. Production, `flowlang dry-run` and tests all
use this one code path; only the parts plugged in differ.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flowlang.acd import SkillsAcd
from flowlang.compiler.ir import FlowGraph
from flowlang.events import (
    AgentAction,
    AgentEvent,
    BotEvent,
    EventKind,
    InboundEvent,
    TimerEvent,
    media_type,
)
from flowlang.runtime import effects as fx
from flowlang.runtime.agent_rules import Refusal, code_refusal, holder_refusal, state_of
from flowlang.runtime.delivery import Deliverer, FailedSend, RetryPolicy
from flowlang.runtime.event_feed import EventFeed, Listener
from flowlang.runtime.initiate import INITIATED, recipient, template_content
from flowlang.runtime.interpreter import TraceStep, run
from flowlang.runtime.memory import (
    MemoryOutbox,
    MemoryStore,
    RecordingAdapter,
    RecordingBots,
    ScriptedDataActions,
)
from flowlang.runtime.ports import (
    AccountDirectory,
    Acd,
    Bots,
    Clock,
    ConversationStore,
    ConversationView,
    CustomerView,
    DataActions,
    Delivery,
    OutboundAdapter,
    OutboundMessage,
    Outbox,
    ReplyPolicy,
    RoutingNotice,
    RoutingRequest,
)
from flowlang.runtime.program import Program
from flowlang.runtime.state import Facts, FlowState, Trigger, Waiting

ScheduleOracle = Callable[[str, datetime], str]
DEFAULT_THREADING_WINDOW = timedelta(hours=72)
PUBLIC_KINDS = {EventKind.POST, EventKind.COMMENT}


class NoAccounts:
    """No account settings: every post is actionable, the flow's params keep their values."""

    def actionable(self, channel: str, account: str, text: str) -> bool:
        return True

    def params(self, channel: str, account: str) -> Mapping[str, Any]:
        return {}


class AllowAll:
    """A reply policy that allows everything: for hosts that enforce channel rules elsewhere."""

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

    def observe_inbound(
        self, conversation: ConversationView, event: Any, now: datetime
    ) -> tuple[str, str] | None:
        return None


@dataclass
class Outcome:
    """What handling one event did."""

    event: Any
    conversation_id: str | None = None
    trace: list[TraceStep] = field(default_factory=list)
    path: list[str] = field(default_factory=list)
    effects: list[Any] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    failed_sends: list[FailedSend] = field(default_factory=list)  # allowed, but not delivered
    notices: list[RoutingNotice] = field(default_factory=list)
    duplicate: bool = False
    dead_lettered: bool = False
    note: str = ""
    refusal: Refusal | None = None  # an agent action refused: nothing was sent or changed

    @property
    def blocked(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.status in ("blocked", "skipped", "recorded")]


class Engine:
    """Runs one flow for every conversation of the channels it serves."""

    def __init__(
        self,
        program: Program,
        *,
        store: ConversationStore | None = None,
        acd: Acd | None = None,
        bots: Bots | None = None,
        data_actions: DataActions | None = None,
        adapters: Sequence[OutboundAdapter] = (),
        policy: ReplyPolicy | None = None,
        schedule_state: ScheduleOracle | None = None,
        params: dict[str, Any] | None = None,
        accounts: AccountDirectory | None = None,
        threading_window: timedelta | None = None,
        media_of: Callable[[str, EventKind], str] | None = None,
        identity_kind: Callable[[str], str] | None = None,
        address_of: Callable[[str], str] | None = None,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
        deliver: bool = True,
    ) -> None:
        self.program = program
        self.programs: dict[str, Program] = {program.graph.version: program}
        self.store: ConversationStore = store or MemoryStore()
        self._keep_version(program)
        self.acd: Acd = acd or SkillsAcd()
        self.bots: Bots = bots or RecordingBots()
        self.data_actions: DataActions = data_actions or ScriptedDataActions()
        self.events = EventFeed(self.store)
        outbox: Outbox = (
            self.store  # type: ignore[assignment]
            if hasattr(self.store, "add_outbound")
            else MemoryOutbox()
        )
        # deliver=False leaves every message in the outbox for the host's own engine to deliver
        self.deliverer = Deliverer(
            outbox,
            list(adapters) or [RecordingAdapter()],
            self.store,
            self.events,
            self._unit_of_work,
            retry,
            deliver,
        )
        self.policy: ReplyPolicy = policy or AllowAll()
        use_ledger = getattr(self.policy, "use_ledger", None)
        if use_ledger is not None and hasattr(self.store, "opted_out"):
            # Opt-outs and reach counts live in the store: shared by conversations and processes
            # (a host store without the ledger's methods leaves the policy its own, in memory)
            use_ledger(self.store)
        self.schedule_state = schedule_state or (lambda _name, _now: "open")
        self.params = dict(params or {})
        self.accounts: AccountDirectory = accounts or NoAccounts()
        seconds = program.graph.threading_window_seconds
        self.threading_window = threading_window or (
            timedelta(seconds=seconds) if seconds is not None else DEFAULT_THREADING_WINDOW
        )
        self.media_of = media_of or _default_media
        # Channels that share user ids (X DMs and X posts) name one identity kind.
        self.identity_kind = identity_kind or (lambda channel: channel)
        # how each channel addresses a customer: "phone", "phone_digits" (wa_id) or "id"
        self.address_of = address_of or (lambda _channel: "id")
        self.clock = clock
        self._timers: list[tuple[datetime, str, str]] = []
        self._customers: dict[str, CustomerView] = {}
        self._senders: dict[str, str] = {}

    # ------------------------------------------------------------------ public API
    @property
    def adapters(self) -> list[OutboundAdapter]:
        """Where delivered messages go (every adapter gets every message)."""
        return self.deliverer.adapters

    @adapters.setter
    def adapters(self, adapters: Sequence[OutboundAdapter]) -> None:
        self.deliverer.adapters = list(adapters)

    def listen(self, listener: Listener) -> None:
        """Call `listener` with every event of the log once the unit of work that wrote it has
        committed (e.g. `engine.listen(live_log.apply)` keeps an `InteractionLog` current)."""
        self.events.listeners.append(listener)

    def publish(self, program: Program) -> None:
        """Make `program` the version new conversations start on; conversations in flight keep
        the version they started on."""
        self.programs[program.graph.version] = program
        self.program = program
        self._keep_version(program)

    def _keep_version(self, program: Program) -> None:
        """Keep the version's graph in a store that can, for conversations in flight on it
        after a restart."""
        save = getattr(self.store, "save_flow_version", None)
        if save is not None:
            save(program.graph.version, program.graph.to_dict())

    def handle(self, event: InboundEvent | AgentEvent | BotEvent | TimerEvent) -> Outcome:
        """Process one event; errors in a flow are recorded, never raised."""
        if isinstance(event, InboundEvent):
            return self._inbound(event)
        try:
            return self._committed(lambda: self._handle_other(event), event.timestamp)
        except Exception as exc:  # a bug or a failing part must not lose the event
            reason = f"{type(exc).__name__}: {exc}"
            kind = {AgentEvent: "agent", BotEvent: "bot"}.get(type(event), "timer")
            with self._unit_of_work():
                self.store.dead_letter(
                    f"{kind}:{event.conversation_id}",
                    event.model_dump(mode="json"),
                    reason,
                    event.timestamp,
                )
            return Outcome(
                event=event,
                conversation_id=event.conversation_id,
                dead_lettered=True,
                note=f"kept in the dead letters: {reason}",
            )

    def _handle_other(self, event: AgentEvent | BotEvent | TimerEvent) -> Outcome:
        if isinstance(event, AgentEvent):
            return self._agent(event)
        if isinstance(event, BotEvent):
            return self._resume(
                event.conversation_id,
                event,
                event.timestamp,
                Trigger(
                    kind="bot", outcome=event.outcome, intent=event.intent, slots=dict(event.slots)
                ),
            )
        return self._resume(
            event.conversation_id, event, event.timestamp, Trigger(kind="timer", timer=event.timer)
        )

    def due_timers(self, now: datetime, limit: int | None = None) -> list[TimerEvent]:
        """Timers whose deadline has passed, as events to `handle` (oldest first, at most
        `limit`); they leave the timer queue."""
        _check_aware(now, "due_timers")
        due: list[TimerEvent] = []
        while self._timers and self._timers[0][0] <= now and (limit is None or len(due) < limit):
            at, conversation_id, timer = heapq.heappop(self._timers)
            if not self._still_waiting_for(conversation_id, timer):
                continue  # what the timer guarded has happened; it has nothing left to do
            due.append(
                TimerEvent(
                    event_id=f"timer:{timer}",
                    conversation_id=conversation_id,
                    timer=timer,
                    timestamp=at,
                )
            )
        return due

    def _still_waiting_for(self, conversation_id: str, timer: str) -> bool:
        conv = self.store.get_conversation(conversation_id)
        if conv is None or not conv.flow_state:
            return False
        waiting = FlowState.from_json(conv.flow_state).waiting
        return waiting is not None and waiting.timer == timer

    def advance(self, now: datetime | None = None) -> list[Outcome]:
        """Fire due timers and let the ACD re-evaluate waiting interactions; `now` defaults to
        the engine's clock (a host calls this every few seconds)."""
        if now is None:
            if self.clock is None:
                raise ValueError("advance() needs `now` when the engine has no clock")
            now = self.clock.now()
        _check_aware(now, "advance")
        outcomes: list[Outcome] = []
        acd_deadline: Callable[[], datetime | None] = getattr(
            self.acd, "next_deadline", lambda: None
        )
        # In the order they are due, the flows' timers and the ACD's deadlines alike, one at a
        # time: what one does (a window expiry ends a flow) may void or set another.
        while True:
            flow_at = self._next_timer_at(now)
            acd_at = acd_deadline()
            if acd_at is not None and acd_at <= now and (flow_at is None or acd_at <= flow_at):
                tick = self._ticked(acd_at)
                if tick.notices or tick.failed_sends:
                    outcomes.append(tick)
            elif flow_at is not None:
                outcomes.append(self.handle(self.due_timers(now, limit=1)[0]))
            else:
                break
        tick = self._ticked(now)
        tick.failed_sends.extend(self.deliverer.deliver_pending(now))
        if tick.notices or tick.failed_sends:
            outcomes.append(tick)
        return outcomes

    def _ticked(self, at: datetime) -> Outcome:
        """Let the ACD act on its deadlines passed by `at`."""
        tick = Outcome(event={"type": "tick", "at": at})
        return self._committed(lambda: self._tick(at, tick), at)

    def _next_timer_at(self, now: datetime) -> datetime | None:
        """When the next flow timer due by `now` is due (stale ones are dropped)."""
        while self._timers and self._timers[0][0] <= now:
            at, conversation_id, timer = self._timers[0]
            if self._still_waiting_for(conversation_id, timer):
                return at
            heapq.heappop(self._timers)
        return None

    def next_deadline(self) -> datetime | None:
        """When `advance` may next have something to do: the earliest armed flow timer or ACD
        deadline (None: nothing is armed). A host sleeps until then, or until an event."""
        acd_at: datetime | None = getattr(self.acd, "next_deadline", lambda: None)()
        flow_at = self._timers[0][0] if self._timers else None
        return min((at for at in (flow_at, acd_at) if at is not None), default=None)

    def _tick(self, now: datetime, outcome: Outcome) -> Outcome:
        self._notices(self.acd.tick(now), now, outcome)
        return outcome

    def deliver_pending(self, now: datetime | None = None) -> list[FailedSend]:
        """Retry the outbox: messages whose delivery failed and is due again by `now` (default:
        the engine's clock; without one, all of them). `advance` does this too."""
        if now is None and self.clock is not None:
            now = self.clock.now()
        if now is not None:
            _check_aware(now, "deliver_pending")
        return self.deliverer.deliver_pending(now)

    def initiate(
        self,
        channel: str,
        account: str,
        to: str,
        template: str,
        now: datetime,
        params: Mapping[str, Any] | None = None,
        phone: str | None = None,
    ) -> Outcome:
        """Send a business-initiated message: the deployment template `template`, filled with
        `params`, to the customer whose id on `channel` is `to` (a phone number on WhatsApp and
        SMS; `phone` links them to a customer known by it), from `account`. It goes through
        the channel policy and the outbox like every send: WhatsApp allows approved templates
        (outside the window, within the portfolio's messaging limit), SMS a customer who has
        not opted out; any other channel blocks it with the reason (`Outcome.deliveries`). The
        customer's reply continues the conversation it opens. Raises `InitiateError` for an
        unknown template, a missing parameter or a `to` that is not a phone number on a channel
        that addresses customers by phone ("+44 (7700) 900-999" is read as +447700900999)."""
        _check_aware(now, "initiate")
        to, read = recipient(self.address_of(channel), to)
        phone = read or phone
        outcome = Outcome(
            event={"type": "initiate", "channel": channel, "to": to, "template": template}
        )

        def send() -> Outcome:
            customer = self.store.resolve_customer(self.identity_kind(channel), to, phone, None)
            content = template_content(self.program, template, params or {}, customer)
            conv = self.store.conversation_for(
                customer.id, channel, account, now, self.threading_window
            )
            outcome.conversation_id = conv.id
            new = conv.messages == 0
            conv.last_sender_id = conv.last_sender_id or to
            self._senders.setdefault(conv.id, to)
            media = self.media_of(channel, EventKind.MESSAGE)
            self.events.append(
                "initiated",
                now,
                conv.id,
                {"channel": channel, "media": media, "customer": customer.id, "template": template},
            )
            self._send(conv, content, INITIATED, "default", None, now, outcome, "initiate", 0)
            delivery = outcome.deliveries[-1]
            if new and delivery.status not in ("sent", "degraded"):
                conv.status = "closed"  # nothing was said: no conversation to continue
                self.events.append("not_sent", now, conv.id, {"reason": delivery.reason_code})
            self.store.save_conversation(conv)
            return outcome

        return self._committed(send, now)

    def resend(self, message: dict[str, Any], now: datetime) -> Outcome:
        """Deliver again a message that was given up on (an `outbound:` dead letter's payload),
        to the adapters its `delivered_to` does not name. The channel policy checks it again
        first: a window closed since, or an opt-out since, blocks it with the reason."""
        _check_aware(now, "resend")
        outcome = Outcome(event={"type": "resend", "at": now})
        fields = {k: v for k, v in message.items() if k != "delivered_to"}

        def queue() -> Outcome:
            again = OutboundMessage(**fields)
            outcome.conversation_id = again.conversation_id
            conv = self.store.get_conversation(again.conversation_id)
            if conv is None:
                delivery = Delivery(
                    again,
                    "blocked",
                    "unknown_conversation",
                    f"conversation {again.conversation_id} is not in the store, so the "
                    "channel rules cannot be checked",
                    "send it from the host, where the conversation is known",
                )
                outcome.deliveries.append(delivery)
                return outcome
            delivery = self.policy.recheck(again, conv, now)
            if delivery.status in ("sent", "degraded"):
                # the log has its message_out from when it was first allowed
                self.deliverer.queue(delivery.message, now, message.get("delivered_to", ()))
                outcome.deliveries.append(delivery)
            else:
                self._record_delivery(conv, delivery, now, outcome, "resend", 0, None)
            self.store.save_conversation(conv)
            return outcome

        return self._committed(queue, now)

    # ------------------------------------------------------------------ inbound
    def _inbound(self, event: InboundEvent) -> Outcome:
        payload = event.model_dump(mode="json")
        if not self.store.accept_inbound(event.channel, event.event_id, payload):
            outcome = Outcome(event=event, duplicate=True)
            outcome.note = f"duplicate {event.channel} message {event.event_id}: already processed"
            return outcome
        return self.process_inbound(event)

    def process_inbound(self, event: InboundEvent) -> Outcome:
        """Process an inbound event the store has accepted: its outcome is committed with the
        state it changes, or not at all; an event that fails goes to the dead letters."""
        try:
            return self._committed(lambda: self._process_inbound(event), event.timestamp)
        except Exception as exc:  # a bug or a failing part must not lose the message
            reason = f"{type(exc).__name__}: {exc}"
            with self._unit_of_work():
                self.store.dead_letter(
                    f"inbound:{event.channel}",
                    event.model_dump(mode="json"),
                    reason,
                    event.timestamp,
                )
                self.store.mark_processed(event.channel, event.event_id)
            return Outcome(
                event=event, dead_lettered=True, note=f"kept in the dead letters: {reason}"
            )

    def recover(self, now: datetime | None = None) -> list[Outcome]:
        """After a restart: rebuild the flows' timers, give the ACD back the conversations that
        were queued or with an agent (when both the store and the ACD can), and process every
        inbound event that was stored but not processed (a crash came in between), once, in the
        order received. `now` (default: the engine's clock) is when the ACD resumes; without
        either, the queues are rebuilt at the last routing's time."""
        for deadline, conversation_id, timer in getattr(self.store, "waiting_timers", list)():
            heapq.heappush(self._timers, (deadline, conversation_id, timer))
        now = now or (self.clock.now() if self.clock else None)
        if now is not None:
            _check_aware(now, "recover")
        outcomes = self._restore_routing(now)
        pending: list[dict[str, Any]] = getattr(self.store, "pending_inbound", list)()
        outcomes += [self.process_inbound(InboundEvent.model_validate(p)) for p in pending]
        failed = self.deliverer.deliver_pending(now)
        if failed:
            outcomes.append(Outcome(event={"type": "deliver", "at": now}, failed_sends=failed))
        return outcomes

    def _restore_routing(self, now: datetime | None) -> list[Outcome]:
        restore = getattr(self.acd, "restore", None)
        routed: list[ConversationView] = getattr(self.store, "routed_conversations", list)()
        if restore is None or not routed:
            return []
        entered = [datetime.fromisoformat(c.routing["entered_at"]) for c in routed]
        resume_at = max(now, *entered) if now is not None else max(entered)
        outcome = Outcome(event={"type": "recover", "at": resume_at})

        def give_back() -> Outcome:
            for conv, entered_at in zip(routed, entered, strict=True):
                request = _request_from(conv)
                agent = conv.agent if conv.status == "with_agent" else None
                self._notices(restore(request, entered_at, agent, resume_at), resume_at, outcome)
            return self._tick(resume_at, outcome)

        self._committed(give_back, resume_at)
        outcome.note = f"{len(routed)} routed conversation(s) given back to the ACD"
        return [outcome]

    def _unit_of_work(self) -> AbstractContextManager[None]:
        transaction = getattr(self.store, "transaction", None)
        return transaction() if transaction is not None else nullcontext()

    def _committed(self, work: Callable[[], Outcome], now: datetime | None) -> Outcome:
        """Run `work` as one unit of work, then deliver the messages it queued."""
        try:
            with self.events.committing(self._unit_of_work()):
                outcome = work()
        except BaseException:
            self.deliverer.discard()
            raise
        outcome.failed_sends.extend(self.deliverer.deliver_queued(now))
        return outcome

    def _process_inbound(self, event: InboundEvent) -> Outcome:
        outcome = Outcome(event=event)
        now = event.timestamp
        if event.kind is EventKind.RECEIPT:
            self.events.append(
                "receipt", now, None, {"channel": event.channel, "event_id": event.event_id}
            )
            outcome.note = "receipt recorded"
            self.store.mark_processed(event.channel, event.event_id)
            return outcome
        if not event.sender_id:  # a removal that came without its author (Facebook's feed)
            author = self._author_of(event)
            if author is None:
                outcome.note = f"{event.refers_to} was removed; whose it was is not known here"
                self.store.mark_processed(event.channel, event.event_id)
                return outcome
            event = event.model_copy(update={"sender_id": author})
        customer = self.store.resolve_customer(
            self.identity_kind(event.channel),
            event.sender_id,
            event.sender_phone,
            event.sender_name,
        )
        conv = self.store.conversation_for(
            customer.id, event.channel, event.account, now, self.threading_window
        )
        self._customers[conv.id] = customer
        self._senders[conv.id] = event.sender_id
        outcome.conversation_id = conv.id
        if event.kind is EventKind.SYSTEM:
            return self._identity_changed(event, conv, outcome, now)
        conv.last_inbound_at = now
        conv.last_sender_id = event.sender_id
        conv.post_id = event.post_id or conv.post_id
        conv.reply_to = _reply_target(event) or conv.reply_to
        content: dict[str, Any] = {
            "text": event.text,
            "kind": event.kind.value,
            "event_id": event.event_id,
        }
        if event.refers_to is not None:
            content["refers_to"] = event.refers_to
        if event.data is not None:
            content["data"] = event.data
        self.store.append_message(conv, "in", content, now, event.sender_id)
        self.events.append(
            "message_in",
            now,
            conv.id,
            {
                "channel": event.channel,
                "media": self.media_of(event.channel, event.kind),
                "message_kind": event.kind.value,
                "customer": conv.customer_id,
            },
        )
        keyword = self.policy.observe_inbound(conv, event, now)
        if keyword is not None:
            what, text = keyword
            if text:
                content = {"kind": "text", "text": text}
                self._send(conv, content, "flow", "default", None, now, outcome, "policy", 0)
            self.events.append(what, now, conv.id, {"channel": event.channel})
            outcome.note = {
                "opted_out": "the customer opted out; nothing more will be sent to them",
                "opted_in": "the customer opted back in",
                "help": "the customer asked for help; the channel's help text was sent",
            }.get(what, what)
        elif event.kind in (EventKind.DELETE, EventKind.CLOSE):
            self._notices(self.acd.withdraw(conv.id, now), now, outcome, conv)
            conv.status, conv.agent = "closed", None
            _stop_waiting(conv, "customer left")
            what = "deleted the post" if event.kind is EventKind.DELETE else "closed the chat"
            reason = "post deleted" if event.kind is EventKind.DELETE else "chat closed"
            self.events.append("abandoned", now, conv.id, {"reason": reason})
            outcome.note = f"the customer {what}; the interaction is withdrawn"
        elif event.kind is EventKind.EDIT:
            self.events.append(
                "edited", now, conv.id, {"post_id": event.post_id, "refers_to": event.refers_to}
            )
            outcome.note = "the customer edited the post; the new text is in the history"
        elif event.kind is EventKind.UNSEND:
            self.events.append("unsent", now, conv.id, {"refers_to": event.refers_to})
            outcome.note = "the customer unsent a message; the conversation goes on without it"
        elif conv.status == "with_agent":
            self.acd.customer_activity(conv.id, now)
            outcome.note = f"delivered to agent {conv.agent} (the conversation is theirs)"
        elif conv.status == "queued":
            where = f"in {conv.queue}" if conv.queue else "for an agent"
            outcome.note = f"added to the conversation waiting {where}"
        else:
            state = FlowState.from_json(conv.flow_state)
            if state.waiting is None or state.waiting.kind == "answer":
                self._run(
                    conv, state, Trigger(kind="message", text=event.text), event, now, outcome
                )
            else:
                outcome.note = f"flow waits for the {state.waiting.kind}; message kept in history"
        self.store.save_conversation(conv)
        self.store.mark_processed(event.channel, event.event_id)
        return outcome

    def _identity_changed(
        self, event: InboundEvent, conv: ConversationView, outcome: Outcome, now: datetime
    ) -> Outcome:
        """The channel's signed notice that the customer's number or user id changed: the new
        identity is linked to the customer, the notice kept in the history and the event log;
        the flow does not run, nothing is sent and the customer's window stays as it was."""
        data = event.data or {}
        links: list[tuple[str, str]] = []
        if phone := data.get("new_phone"):
            links += [("phone", str(phone)), (self.identity_kind(event.channel), str(phone)[1:])]
        if user_id := data.get("new_user_id"):
            links.append((self.identity_kind(event.channel), str(user_id)))
        customer = self._customers[conv.id]
        for kind, value in links:
            customer = self.store.move_identity(customer.id, kind, value)
        self._customers[conv.id], conv.customer_id = customer, customer.id
        content = {"text": event.text, "kind": "system", "event_id": event.event_id, "data": data}
        self.store.append_message(conv, "in", content, now, event.sender_id)
        self.events.append(
            "identity_changed",
            now,
            conv.id,
            {"channel": event.channel, "customer": customer.id, **data},
        )
        outcome.note = f"{data.get('system', 'system')}: {', '.join(v for _, v in links)} linked"
        self.store.save_conversation(conv)
        self.store.mark_processed(event.channel, event.event_id)
        return outcome

    def _author_of(self, event: InboundEvent) -> str | None:
        """Who sent the message `event` is about, from the store's inbound log."""
        find = getattr(self.store, "inbound_sender", None)
        if find is None or event.refers_to is None:
            return None
        author: str | None = find(event.channel, event.refers_to)
        return author

    def _agent(self, event: AgentEvent) -> Outcome:
        outcome = Outcome(event=event, conversation_id=event.conversation_id)
        conv = self.store.get_conversation(event.conversation_id)
        now = event.timestamp
        if conv is None:
            outcome.note = f"unknown conversation {event.conversation_id}"
            outcome.refusal = Refusal(
                event.agent_id,
                event.action,
                event.conversation_id,
                "unknown_conversation",
                f"there is no conversation {event.conversation_id}",
            )
            self.store.dead_letter("agent", event.model_dump(mode="json"), outcome.note, now)
            return outcome
        # Checked before anything changes: a refused action leaves no trace but the outcome.
        refusal = holder_refusal(event, conv) or self._agent_action(conv, event, now, outcome)
        if refusal is not None:
            outcome.refusal, outcome.note = refusal, str(refusal)
            return outcome
        self.store.save_conversation(conv)
        return outcome

    def _agent_action(
        self, conv: ConversationView, event: AgentEvent, now: datetime, outcome: Outcome
    ) -> Refusal | None:
        if event.action is AgentAction.REPLY:
            content = dict(event.content) or {"kind": "text", "text": event.text}
            self._send(
                conv,
                content,
                "agent",
                event.visibility,
                None,
                now,
                outcome,
                "agent",
                0,
                event.agent_id,
            )
        elif event.action in (AgentAction.ACCEPT, AgentAction.DECLINE):
            ask = self.acd.accept if event.action is AgentAction.ACCEPT else self.acd.decline
            notices = ask(conv.id, event.agent_id, now)
            if not notices:
                return Refusal(
                    event.agent_id,
                    event.action,
                    conv.id,
                    "offer_not_open",
                    f"the offer of {conv.id} is not open to {event.agent_id}: "
                    f"it is {state_of(conv)}",
                )
            self._notices(notices, now, outcome, conv)
        elif event.action is AgentAction.TRANSFER:
            self.events.append(
                "transferred",
                now,
                conv.id,
                {
                    "agent": event.agent_id,
                    "to_queue": event.transfer_queue,
                    "to_agent": event.transfer_agent,
                },
            )
            conv.status = "queued"
            conv.agent = None
            conv.queue = event.transfer_queue or conv.queue
            if conv.routing:
                conv.routing["entered_at"] = now.isoformat()
                if event.transfer_queue and event.transfer_queue != conv.routing.get("queue"):
                    conv.routing.update(queue=event.transfer_queue, skills={})
            self._notices(
                self.acd.transfer(conv.id, event.transfer_queue, event.transfer_agent, now),
                now,
                outcome,
                conv,
            )
        elif event.action is AgentAction.COMPLETE and conv.status == "with_agent":
            notices = self.acd.complete(conv.id, event.agent_id, event.wrap_up, now)
            if refused := code_refusal(event, notices):
                return refused
            # The threading window runs from the disconnect: wrap-up is activity too.
            conv.last_activity_at = max(conv.last_activity_at, now)
            conv.wrap_up = event.wrap_up
            conv.status, conv.agent = "closed", None
            conv.last_agent = event.agent_id
            self.events.append(
                "completed",
                now,
                conv.id,
                {"agent": event.agent_id, "wrap_up": event.wrap_up, "queue": conv.queue},
            )
            self._notices(notices, now, outcome, conv)
        else:  # a wrap-up code during the agent's after-call work (`complete` with one, too)
            notices = self.acd.wrap_up(conv.id, event.agent_id, event.wrap_up, now)
            judge = getattr(self.acd, "refused_code", None)
            if not notices and judge is not None:  # after a restart: the ACD lost this work
                code = event.wrap_up or conv.wrap_up
                notices = [n for n in [judge(conv.id, conv.queue, event.agent_id, code, now)] if n]
            if refused := code_refusal(event, notices):
                return refused
            conv.wrap_up = event.wrap_up or conv.wrap_up
            conv.wrap_up_agent = None
            self.events.append(
                "wrap_up", now, conv.id, {"agent": event.agent_id, "wrap_up": event.wrap_up}
            )
            self._notices(notices, now, outcome, conv)
        return None

    # ------------------------------------------------------------------ running the flow
    def _resume(self, conversation_id: str, event: Any, now: datetime, trigger: Trigger) -> Outcome:
        outcome = Outcome(event=event, conversation_id=conversation_id)
        conv = self.store.get_conversation(conversation_id)
        if conv is None:
            outcome.note = f"unknown conversation {conversation_id}"
            self.store.dead_letter(
                trigger.kind, {"conversation_id": conversation_id}, outcome.note, now
            )
            return outcome
        state = FlowState.from_json(conv.flow_state)
        timed_out = (
            state.waiting
            if trigger.kind == "timer"
            and state.waiting is not None
            and state.waiting.kind in ("queue", "agent")
            and state.waiting.timer == trigger.timer
            else None
        )
        self._run(conv, state, trigger, None, now, outcome, timed_out)
        self.store.save_conversation(conv)
        return outcome

    def _customer(self, customer_id: str) -> CustomerView:
        get_customer = getattr(self.store, "get_customer", None)
        found = get_customer(customer_id) if get_customer is not None else None
        return found or CustomerView(customer_id)

    def _facts(
        self,
        conv: ConversationView,
        event: InboundEvent | None,
        state: FlowState,
        now: datetime,
        starts_run: bool = False,
    ) -> Facts:
        customer = self._customers.get(conv.id) or self._customer(conv.customer_id)
        open_, remaining = self.policy.window_open(conv, now)
        message = (
            _message_facts(conv, event) if starts_run or not state.message else dict(state.message)
        )
        if starts_run and event is not None:
            message["actionable"] = self.accounts.actionable(conv.channel, conv.account, event.text)
        params = self.params
        if by_account := self.accounts.params(conv.channel, conv.account):
            params = {**by_account, **self.params}  # the environment's values still win
        return Facts(
            now=now,
            message=message,
            customer={
                "known": bool(customer.known_by),
                "new": customer.new,
                "id": customer.id,
                "name": customer.name,
                "phone": customer.phone,
            },
            conversation={
                "ongoing": conv.ongoing,
                "id": conv.id,
                "last_agent": conv.last_agent,
                "messages": conv.messages,
                "idle": now - conv.last_activity_at,
            },
            window={"open": open_, "remaining": remaining},
            known_by=customer.known_by,
            schedule_state=self.schedule_state,
            params=params,
        )

    def _run(
        self,
        conv: ConversationView,
        state: FlowState,
        trigger: Trigger,
        event: InboundEvent | None,
        now: datetime,
        outcome: Outcome,
        timed_out: Waiting | None = None,
    ) -> None:
        starts_run = state.waiting is None and trigger.kind == "message"
        facts = self._facts(conv, event, state, now, starts_run)
        started_on = facts.message
        program = self._program_for(state)
        path: list[str] = []
        for _round in range(100):  # data actions answer at once and resume the flow
            result = run(program, state, trigger, facts)
            if timed_out is not None:
                self._time_out(conv, timed_out, result.effects, now, outcome)
                timed_out = None
            state = result.state
            state.message = started_on
            outcome.trace.extend(result.trace)
            outcome.path.extend(result.path)
            path.extend(result.path)
            outcome.effects.extend(result.effects)
            conv.flow_state = state.to_json()
            follow_up = self._apply(conv, state, result.effects, now, outcome)
            if follow_up is None:
                break
            trigger = follow_up
            facts = self._facts(conv, event, state, now)
        if path:
            self.events.append(
                "flow_path", now, conv.id, {"version": program.graph.version, "nodes": path}
            )

    def _time_out(
        self,
        conv: ConversationView,
        waited: Waiting,
        effects: list[Any],
        now: datetime,
        outcome: Outcome,
    ) -> None:
        """A queue or agent wait timed out and the flow's `on timeout` has run (its effects not
        yet applied). The conversation stays in its queue, keeping its place and its wait, when
        the branch routes it to that queue again (`keep waiting` does); otherwise it leaves."""
        if waited.kind == "queue" and any(
            isinstance(e, fx.RouteToQueue) and e.queue == conv.queue for e in effects
        ):
            return
        self.events.append(
            "queue_timeout", now, conv.id, {"queue": conv.queue, "waiting_for": waited.kind}
        )
        self._notices(self.acd.withdraw(conv.id, now), now, outcome, conv)
        conv.status = "open"

    def _program_for(self, state: FlowState) -> Program:
        """A suspended flow resumes on the version it started on; a flow that starts (again)
        uses the current version. When the started-on version is no longer loaded, the flow
        resumes on the current one if its step still exists there (ids are stable), and
        otherwise starts over with the next message."""
        if state.waiting is None:
            return self.program
        known = self.programs.get(state.graph_version) or self._stored_program(state)
        if known is not None:
            return known
        if state.waiting.node not in self.program.graph.nodes:
            state.waiting = None
        return self.program

    def _stored_program(self, state: FlowState) -> Program | None:
        """The version a conversation started on, from the store (a restart forgot it)."""
        load = getattr(self.store, "flow_version", None)
        graph = load(state.graph_version) if load is not None else None
        if graph is None:
            return None
        program = Program(FlowGraph.from_dict(graph), self.program.templates)
        self.programs[program.graph.version] = program
        return program

    def _apply(
        self,
        conv: ConversationView,
        state: FlowState,
        effects: list[Any],
        now: datetime,
        outcome: Outcome,
    ) -> Trigger | None:
        follow_up: Trigger | None = None
        for effect in effects:
            if isinstance(effect, fx.SendReply):
                self._send(
                    conv,
                    effect.content,
                    "flow",
                    effect.visibility,
                    effect.guard,
                    now,
                    outcome,
                    effect.step,
                    effect.line,
                )
            elif isinstance(effect, fx.RouteToQueue):
                follow_up = self._route_queue(conv, state, effect, now, outcome) or follow_up
            elif isinstance(effect, fx.RouteToAgent):
                agent = effect.agent or ""
                # Waiting for that one agent: not closed, and no longer with the last one. A
                # wait for one agent is not kept for a restart (no routing to restore).
                conv.status, conv.agent, conv.queue, conv.routing = "queued", None, None, {}
                self.events.append("agent_requested", now, conv.id, {"agent": agent})
                notices = self.acd.request_agent(
                    conv.id,
                    agent,
                    self.media_of(conv.channel, EventKind.MESSAGE),
                    effect.wait_seconds,
                    now,
                )
                follow_up = self._notices(notices, now, outcome, conv) or follow_up
            elif isinstance(effect, fx.HandOffToBot):
                conv.status = "bot"
                self.bots.start(conv.id, effect.bot, {"customer": conv.customer_id})
                self.events.append("bot_started", now, conv.id, {"bot": effect.bot})
            elif isinstance(effect, fx.CallDataAction):
                result = self.data_actions.call(
                    effect.action, effect.inputs, effect.timeout_seconds
                )
                follow_up = Trigger(kind="data", outcome=result.status, outputs=result.outputs)
            elif isinstance(effect, fx.SetData):
                conv.data[f"{effect.scope}.{effect.key}"] = effect.value
            elif isinstance(effect, fx.LinkIdentity):
                self._link(conv, effect, now)
            elif isinstance(effect, fx.StartTimer):
                heapq.heappush(self._timers, (effect.at, conv.id, effect.timer))
            elif isinstance(effect, fx.MarkNotActionable):
                conv.status = "closed"
                self.events.append("not_actionable", now, conv.id, {"reason": effect.reason})
            elif isinstance(effect, fx.EndFlow):
                if conv.status not in ("with_agent", "queued"):
                    conv.status = "closed"
                self.events.append("flow_ended", now, conv.id, {"reason": effect.reason})
            elif isinstance(effect, fx.FlowFailed):
                self.events.append(
                    "flow_error",
                    now,
                    conv.id,
                    {
                        "code": effect.code,
                        "message": effect.message,
                        "line": effect.line,
                        "file": effect.file,
                    },
                )
        return follow_up

    def _link(self, conv: ConversationView, effect: fx.LinkIdentity, now: datetime) -> None:
        """A proven identity joins the customer to whoever has it; a claim only is recorded,
        so a stranger who types another customer's number sees none of their history."""
        if effect.verified_by:
            customer = self.store.link_identity(conv.customer_id, effect.kind, effect.value)
            conv.customer_id = customer.id
            self._customers[conv.id] = customer
            verified = True
        else:
            verified = not self.store.claim_identity(
                conv.customer_id, effect.kind, effect.value, conv.id, now
            )
        # What the agent is shown with the conversation: the value, and whether it is proven.
        conv.data[f"identity.{effect.kind}"] = {"value": effect.value, "verified": verified}
        self.events.append(
            "identity_linked" if verified else "identity_claimed",
            now,
            conv.id,
            {"kind": effect.kind, "verified_by": effect.verified_by},
        )

    def _route_queue(
        self,
        conv: ConversationView,
        state: FlowState,
        effect: fx.RouteToQueue,
        now: datetime,
        outcome: Outcome,
    ) -> Trigger | None:
        # Routed again to the queue it waits in: it keeps its place, and its wait counts on.
        again = conv.status == "queued" and conv.queue == effect.queue and conv.routing
        entered_at = datetime.fromisoformat(conv.routing["entered_at"]) if again else now
        conv.status = "queued"
        conv.queue = effect.queue
        request = RoutingRequest(
            conversation_id=conv.id,
            queue=effect.queue,
            media=self.media_of(conv.channel, EventKind.MESSAGE),
            skills={s["skill"]: s.get("min") for s in effect.skills},
            language=effect.language,
            priority=effect.priority,
            preferred_agents=[(p["agent"], p.get("score")) for p in effect.preferred_agents],
            last_agent=conv.last_agent if effect.prefer_last_agent else None,
            timeout_seconds=effect.timeout_seconds,
            window_closes_at=self.policy.window_closes_at(conv),
        )
        conv.routing = _routing_json(request, entered_at)
        self.events.append(
            "queued",
            now,
            conv.id,
            {
                "queue": effect.queue,
                "skills": list(request.skills),
                "priority": effect.priority,
                "channel": conv.channel,
            },
        )
        return self._notices(self.acd.enqueue(request, now), now, outcome, conv)

    def _notices(
        self,
        notices: list[RoutingNotice],
        now: datetime,
        outcome: Outcome,
        current: ConversationView | None = None,
    ) -> Trigger | None:
        """Apply ACD notices; a notice about `current` comes back as a trigger to run."""
        follow_up: Trigger | None = None
        for notice in notices:
            outcome.notices.append(notice)
            conv = (
                current
                if current is not None and current.id == notice.conversation_id
                else self.store.get_conversation(notice.conversation_id)
            )
            if conv is None:
                continue
            self.events.append(
                notice.kind,
                notice.at or now,
                conv.id,
                {"agent": notice.agent, "queue": notice.queue, **notice.data},
            )
            if notice.kind == "accepted":
                conv.status = "with_agent"
                conv.agent = conv.last_agent = notice.agent
                trigger = Trigger(
                    kind="queue" if conv.queue and notice.queue else "agent", outcome="routed"
                )
            elif notice.kind == "agent_unavailable":
                conv.status = "open"
                trigger = Trigger(kind="agent", outcome="unavailable")
            else:
                self._apply_notice(conv, notice)
                if conv is not current:
                    self.store.save_conversation(conv)
                continue
            state = FlowState.from_json(conv.flow_state) if conv.flow_state else None
            if state is None or state.waiting is None:
                if conv is not current:
                    self.store.save_conversation(conv)
                continue
            if state.waiting.kind == "agent":
                trigger = Trigger(kind="agent", outcome=trigger.outcome)
            elif state.waiting.kind == "queue":
                trigger = Trigger(kind="queue", outcome=trigger.outcome)
            if conv is current:
                follow_up = trigger
            else:
                self._run(conv, state, trigger, None, now, outcome)
                self.store.save_conversation(conv)
        return follow_up

    def _apply_notice(self, conv: ConversationView, notice: RoutingNotice) -> None:
        """What an ACD notice other than accepted / agent_unavailable changes."""
        if notice.kind == "requeued":
            conv.status, conv.agent = "queued", None
        elif notice.kind == "after_call_work":
            conv.wrap_up_agent = notice.agent
        elif notice.kind == "wrap_up_ended":
            conv.wrap_up_agent = None
        elif notice.kind in ("expired", "disconnected"):
            conv.status, conv.agent = "closed", None
            _stop_waiting(conv, notice.kind)

    def set_agent_state(self, agent: str, state: str, now: datetime) -> Outcome:
        """An agent became available, away or offline; the ACD hands out what it can."""
        _check_aware(now, "set_agent_state")
        outcome = Outcome(event={"type": "agent_state", "agent": agent, "state": state})

        def hand_out() -> Outcome:
            self.events.append("agent_state", now, None, {"agent": agent, "state": state})
            self._notices(self.acd.set_agent_state(agent, state, now), now, outcome)
            return outcome

        return self._committed(hand_out, now)

    # ------------------------------------------------------------------ replies
    def _send(
        self,
        conv: ConversationView,
        content: dict[str, Any],
        sender: str,
        visibility: str,
        guard: dict[str, Any] | None,
        now: datetime,
        outcome: Outcome,
        step: str,
        line: int,
        agent: str | None = None,
    ) -> None:
        recipient = self._senders.get(conv.id) or conv.last_sender_id
        message = OutboundMessage(
            conv.id,
            conv.channel,
            conv.account,
            recipient,
            sender,
            content,
            visibility,
            conv.reply_to or conv.post_id,  # post_id: a conversation kept before reply_to
        )
        window_open, _remaining = self.policy.window_open(conv, now)
        if guard is not None and not window_open:
            action = guard["action"]
            if action == "template":
                message = OutboundMessage(
                    conv.id,
                    conv.channel,
                    conv.account,
                    recipient,
                    sender,
                    guard["content"],
                    visibility,
                    conv.reply_to or conv.post_id,
                )
            else:
                status = "skipped" if action == "skip" else "recorded"
                delivery = Delivery(
                    message,
                    status,
                    "window_closed",
                    f"the {conv.channel} reply window is closed; the flow said "
                    f"to {action} this reply",
                )
                self._record_delivery(conv, delivery, now, outcome, step, line, agent)
                return
        delivery = self.policy.decide(message, conv, now)
        if delivery.status in ("sent", "degraded"):
            self.deliverer.queue(delivery.message, now)
            self.store.append_message(conv, "out", _kept(delivery.message, conv), now, sender)
        self._record_delivery(conv, delivery, now, outcome, step, line, agent)

    def _record_delivery(
        self,
        conv: ConversationView,
        delivery: Delivery,
        now: datetime,
        outcome: Outcome,
        step: str,
        line: int,
        agent: str | None,
    ) -> None:
        outcome.deliveries.append(delivery)
        kind = "message_out" if delivery.status in ("sent", "degraded") else "blocked"
        self.events.append(
            kind,
            now,
            conv.id,
            {
                "sender": delivery.message.sender,
                "status": delivery.status,
                "reason_code": delivery.reason_code,
                "reason": delivery.reason,
                "step": step,
                "line": line,
                **({"agent": agent} if agent else {}),
            },
        )


def _check_aware(now: datetime, method: str) -> None:
    """Every time the engine compares carries a zone; a host's `datetime.now()` does not."""
    if now.tzinfo is None:
        raise ValueError(
            f"engine.{method}: `now` ({now.isoformat()}) has no time zone; "
            "pass an aware time, e.g. datetime.now(UTC)"
        )


def _stop_waiting(conv: ConversationView, reason: str) -> None:
    """End a flow that waits for something that can no longer come; its timers lapse."""
    state = FlowState.from_json(conv.flow_state) if conv.flow_state else None
    if state is not None and state.waiting is not None:
        state.waiting = None
        state.status, state.ended_reason = "ended", reason
        conv.flow_state = state.to_json()


def _routing_json(request: RoutingRequest, entered_at: datetime) -> dict[str, Any]:
    closes = request.window_closes_at
    return {
        "queue": request.queue,
        "media": request.media,
        "skills": dict(request.skills),
        "language": request.language,
        "priority": request.priority,
        "preferred_agents": [list(p) for p in request.preferred_agents],
        "last_agent": request.last_agent,
        "timeout_seconds": request.timeout_seconds,
        "window_closes_at": closes.isoformat() if closes else None,
        "entered_at": entered_at.isoformat(),
    }


def _request_from(conv: ConversationView) -> RoutingRequest:
    data = conv.routing
    closes = data.get("window_closes_at")
    return RoutingRequest(
        conversation_id=conv.id,
        queue=data.get("queue") or conv.queue or "",
        media=data.get("media") or media_type(conv.channel),
        skills=dict(data.get("skills") or {}),
        language=data.get("language"),
        priority=data.get("priority") or 0,
        preferred_agents=[(a, s) for a, s in data.get("preferred_agents") or []],
        last_agent=data.get("last_agent"),
        timeout_seconds=data.get("timeout_seconds"),
        window_closes_at=datetime.fromisoformat(closes) if closes else None,
    )


def _kept(message: OutboundMessage, conv: ConversationView) -> dict[str, Any]:
    """What the history keeps of a sent message: a private reply to a public post says by which
    channel it went, so whoever reads the thread sees it was not posted publicly."""
    if message.visibility == "privately" and message.channel != conv.channel:
        return {**message.content, "privately_by": message.channel}
    return message.content


def _message_facts(conv: ConversationView, event: InboundEvent | None) -> dict[str, Any]:
    """`message` in a flow is the customer message that started this run of the flow: answers
    to `ask` go into their variable, and a run resumed by a bot, agent or timer still sees it
    (kept in the flow state)."""
    message: dict[str, Any] = {
        "channel": conv.channel,
        "account": conv.account,
        "actionable": True,
    }
    if event is not None:
        message.update(
            text=event.text,
            kind=_flow_kind(event.kind),
            has_attachment=bool(event.attachments),
            sender_name=event.sender_name,
            postback=event.postback,
            post_id=event.post_id,
            data=event.data or {},
        )
    return message


def _reply_target(event: InboundEvent) -> str | None:
    """What a public reply answers: the customer's comment (it nests under it), or their post
    when they wrote the post itself; an edit's newest version. None for anything else."""
    if event.kind is EventKind.COMMENT:
        return event.comment_id
    if event.kind in (EventKind.POST, EventKind.EDIT):
        return event.comment_id or event.post_id
    return None


def _flow_kind(kind: EventKind) -> str:
    return "message" if kind in (EventKind.MESSAGE, EventKind.POSTBACK) else kind.value


def _default_media(channel: str, kind: EventKind) -> str:
    return media_type(channel)
