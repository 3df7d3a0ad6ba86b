"""The Engine: what host services embed.

It takes inbound events (customer messages and posts, edits and deletions, agent actions, bot
outcomes, timers), keeps each conversation's flow state in the store, runs the interpreter, and
applies the effects through the parts it is built with (`Ports`): replies through the channel
policy to the outbound adapters, routing through the ACD, bot hand-offs, data actions, identity
links. Production, `flowlang dry-run` and tests all use this one code path; only the parts
plugged in differ. The Engine has no default parts: `flowlang.assembly.assemble_engine` (or
`Project.engine`) builds one with the built-in parts for a deployment.

This module is the façade hosts call; each kind of event is handled in its own module
(`inbound`, `agent_actions`, `bot_outcomes`, `timers`), sharing an `EngineContext`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from flowlang.errors import InputError
from flowlang.events import AgentEvent, BotEvent, InboundEvent, TimerEvent
from flowlang.runtime import inbound, replies, timers
from flowlang.runtime.agent_actions import handle_agent, pull_back
from flowlang.runtime.agent_actions import set_agent_state as agent_state
from flowlang.runtime.bot_outcomes import handle_bot
from flowlang.runtime.context import EngineContext, FlowChooser, check_aware
from flowlang.runtime.delivery import Deliverer, FailedSend, RetryPolicy
from flowlang.runtime.event_feed import EventFeed, Listener
from flowlang.runtime.outcome import Outcome
from flowlang.runtime.ports import (
    Acd,
    Bots,
    Clock,
    ConversationStore,
    OutboundAdapter,
    Ports,
    ReplyPolicy,
)
from flowlang.runtime.program import Program
from flowlang.runtime.recovery import rebuild, recover

__all__ = ["DEFAULT_THREADING_WINDOW", "Engine", "Outcome"]

DEFAULT_THREADING_WINDOW = timedelta(hours=72)

_log = logging.getLogger("flowlang.engine")


class Engine:
    """Runs the flows of a project for every conversation of the channels they serve."""

    def __init__(
        self,
        program: Program,
        ports: Ports,
        *,
        params: Mapping[str, Any] | None = None,
        threading_window: timedelta | None = None,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
        deliver: bool = True,
        flows: Sequence[Program] = (),
        choose_flow: FlowChooser | None = None,
    ) -> None:
        """`ports` are the parts the Engine works through (none is optional); `params`
        override the flow's params; `threading_window` (default: the flow's, else 72 hours)
        is how long a conversation stays ongoing; `deliver=False` leaves every message in the
        outbox for another process to deliver. `flows` are more flows beside `program` (each
        with a name of its own); `choose_flow` says which one a new conversation starts on
        (without it, `program`)."""
        store = ports.store
        events = EventFeed(store)
        seconds = program.graph.threading_window_seconds
        if threading_window is not None:
            window = threading_window
        else:
            window = timedelta(seconds=seconds) if seconds is not None else DEFAULT_THREADING_WINDOW
        self._ctx = ctx = EngineContext(
            ports=ports,
            program=program,
            params=dict(params or {}),
            threading_window=window,
            clock=clock,
            events=events,
            deliverer=Deliverer(
                store, ports.adapters, store, events, store.transaction, retry, deliver
            ),
        )
        for each in (program, *flows):
            if each.graph.name in ctx.flows:
                raise InputError(f"two flows are named {each.graph.name!r}: name each its own")
            ctx.flows[each.graph.name] = each
            ctx.keep_version(each)
        ctx.flow_names = frozenset(ctx.flows)
        ctx.choose_flow = choose_flow
        ctx.rebuild = lambda now: rebuild(ctx, now)
        # Opt-outs and reach counts live in the store: shared by conversations and processes.
        ports.policy.use_ledger(store)

    # ------------------------------------------------------------------ the parts
    @property
    def ports(self) -> Ports:
        return self._ctx.ports

    @property
    def program(self) -> Program:
        """The version new conversations start on (of the first flow, with several)."""
        return self._ctx.program

    @property
    def flows(self) -> dict[str, Program]:
        """Each flow's version new conversations start on, by the flow's name (as started)."""
        return dict(self._ctx.flows)

    @property
    def store(self) -> ConversationStore:
        return self._ctx.store

    @property
    def acd(self) -> Acd:
        return self._ctx.acd

    @property
    def policy(self) -> ReplyPolicy:
        return self._ctx.policy

    @property
    def bots(self) -> Bots:
        return self._ctx.ports.bots

    @property
    def deliverer(self) -> Deliverer:
        return self._ctx.deliverer

    @property
    def adapters(self) -> list[OutboundAdapter]:
        """Where delivered messages go (every adapter gets every message)."""
        return self._ctx.deliverer.adapters

    @adapters.setter
    def adapters(self, adapters: Sequence[OutboundAdapter]) -> None:
        self._ctx.deliverer.adapters = list(adapters)
        self._ctx.ports = replace(self._ctx.ports, adapters=self._ctx.deliverer.adapters)

    # ------------------------------------------------------------------ public API
    def listen(self, listener: Listener) -> None:
        """Call `listener` with every event of the log once the unit of work that wrote it has
        committed (e.g. `engine.listen(live_log.apply)` keeps an `InteractionLog` current)."""
        self._ctx.events.listeners.append(listener)

    def publish(self, program: Program) -> None:
        """Make `program` the version new conversations of its flow (the flow of its name)
        start on; conversations in flight keep the version they started on. InputError for a
        flow the engine does not run."""
        ctx = self._ctx
        key = program.graph.name
        if key not in ctx.flows:
            names = ", ".join(repr(name) for name in ctx.flows)
            raise InputError(
                f"the flow is named {key!r}; the flows running here are {names} (a flow keeps "
                "its name from version to version)"
            )
        ctx.keep_version(program)
        first = next(iter(ctx.flows))
        ctx.flows[key] = program
        if key == first:
            ctx.program = program

    def handle(self, event: InboundEvent | AgentEvent | BotEvent | TimerEvent) -> Outcome:
        """Process one event as one unit of work. Errors in a flow are the flow's (FL900, its
        `on error` runs); anything else that fails keeps the event as a dead letter, to replay
        after a fix, and logs the traceback. Nothing is raised."""
        if isinstance(event, InboundEvent):
            return inbound.accept(self._ctx, event)
        try:
            return self._ctx.committed(lambda: self._other(event), event.timestamp)
        except Exception as exc:  # a bug or a failing part must not lose the event
            return self._dead_letter(event, exc)

    def group(self) -> AbstractContextManager[None]:
        """Group commit: every event handled inside (`handle`, `advance`, an agent's action...)
        is processed as before, each its own nested unit of work (one that fails is undone
        alone and kept as a dead letter), and all commit together, once, when the block ends:
        one durable commit (one disk sync) for all of them. Nothing leaves before that commit:
        the messages they queued are delivered, and `listen` listeners told of their events,
        only once it has committed; a host answers (acknowledges) the events only after the
        block. When the block raises, or the commit fails, none of it is stored, nothing is
        sent and the error is raised; a group inside a group joins it."""
        return self._ctx.grouped()

    def handle_all(
        self, events: Iterable[InboundEvent | AgentEvent | BotEvent | TimerEvent]
    ) -> list[Outcome]:
        """`handle` each event in order, in one group (`group`): one durable commit for all.
        A message that fails to deliver is in the `failed_sends` of the last outcome of its
        conversation."""
        with self.group():
            return [self.handle(event) for event in events]

    def rolled_back(self) -> None:
        """The host rolled back a transaction the engine's work was part of (a savepoint of
        its own around `handle`): the engine's in-memory state (the ACD, the flows' timers) is
        taken back from the store before the next event, as it is after a unit of work of the
        engine's own fails."""
        self._ctx.stale = True

    def _other(self, event: AgentEvent | BotEvent | TimerEvent) -> Outcome:
        if isinstance(event, AgentEvent):
            return handle_agent(self._ctx, event)
        if isinstance(event, BotEvent):
            return handle_bot(self._ctx, event)
        return timers.handle_timer(self._ctx, event)

    def _dead_letter(self, event: AgentEvent | BotEvent | TimerEvent, exc: Exception) -> Outcome:
        reason = f"{type(exc).__name__}: {exc}"
        kind = {AgentEvent: "agent", BotEvent: "bot"}.get(type(event), "timer")
        _log.exception("%s event of %s failed; kept as a dead letter", kind, event.conversation_id)
        with self._ctx.unit_of_work():
            self._ctx.store.dead_letter(
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

    def process_inbound(self, event: InboundEvent) -> Outcome:
        """Process an inbound event the store has accepted already (a replay, a recovery): its
        outcome is committed with the state it changes, or not at all; an event that fails
        goes to the dead letters."""
        return inbound.process(self._ctx, event)

    def due_timers(self, now: datetime, limit: int | None = None) -> list[TimerEvent]:
        """Timers whose deadline has passed, as events to `handle` (oldest first, at most
        `limit`); they leave the timer queue."""
        check_aware(now, "due_timers")
        self._ctx.in_step(now)
        return timers.due_timers(self._ctx, now, limit)

    def advance(self, now: datetime | None = None) -> list[Outcome]:
        """Fire due timers and let the ACD re-evaluate waiting interactions; `now` defaults to
        the engine's clock (a host calls this every few seconds)."""
        now = self._ctx.now_or_clock(now, "advance")
        if now is None:
            raise InputError("engine.advance() needs `now` when the engine has no clock")
        self._ctx.in_step(now)
        return timers.advance(self._ctx, now, self.handle)

    def next_deadline(self) -> datetime | None:
        """When `advance` may next have something to do: the earliest armed flow timer or ACD
        deadline (None: nothing is armed). A host sleeps until then, or until an event."""
        acd_at = self._ctx.acd.next_deadline()
        flow_at = self._ctx.timers[0][0] if self._ctx.timers else None
        return min((at for at in (flow_at, acd_at) if at is not None), default=None)

    def deliver_pending(self, now: datetime | None = None) -> list[FailedSend]:
        """Retry the outbox: messages whose delivery failed and is due again by `now` (default:
        the engine's clock; without one, all of them). `advance` does this too."""
        now = self._ctx.now_or_clock(now, "deliver_pending")
        return self._ctx.deliverer.deliver_pending(now)

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
        check_aware(now, "initiate")
        return replies.initiate(self._ctx, channel, account, to, template, now, params, phone)

    def resend(self, message: dict[str, Any], now: datetime) -> Outcome:
        """Deliver again a message that was given up on (an `outbound:` dead letter's payload),
        to the adapters its `delivered_to` does not name. The channel policy checks it again
        first: a window closed since, or an opt-out since, blocks it with the reason."""
        check_aware(now, "resend")
        return replies.resend(self._ctx, message, now)

    def recover(self, now: datetime | None = None) -> list[Outcome]:
        """After a restart: rebuild the flows' timers, give the ACD back the conversations that
        were queued or with an agent, and process every inbound event that was stored but not
        processed (a crash came in between), once, in the order received. `now` (default: the
        engine's clock) is when the ACD resumes; without either, the queues are rebuilt at the
        last routing's time."""
        now = self._ctx.now_or_clock(now, "recover")
        return recover(self._ctx, now, self.process_inbound)

    def forget(self) -> None:
        """Forget what is held in memory (the ACD's interactions and agents, the flows'
        timers), as a new process starts: before `recover` in a service process that takes
        the lead again after it lost it (docs/scaling.md, "When a connection is lost")."""
        self._ctx.timers.clear()
        self._ctx.acd.reset()
        self._ctx.stale = False

    def set_agent_state(self, agent: str, state: str, now: datetime) -> Outcome:
        """An agent became available, away or offline; the ACD hands out what it can."""
        check_aware(now, "set_agent_state")
        return agent_state(self._ctx, agent, state, now)

    def pull_back(self, conversation_id: str, by: str, now: datetime) -> Outcome:
        """A supervisor (`by`) takes a conversation back from its agent to its queue; refused
        with `outcome.note` when it is not with an agent or has no queue."""
        check_aware(now, "pull_back")
        return pull_back(self._ctx, conversation_id, by, now)
