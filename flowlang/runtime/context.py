"""What the Engine's handlers share: the plugged-in parts, the loaded flow versions, the
flows' timers and one event's caches, and the unit of work every event runs in."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flowlang.compiler.ir import FlowGraph
from flowlang.errors import InputError
from flowlang.events import EventKind
from flowlang.runtime.delivery import Deliverer, FailedSend
from flowlang.runtime.event_feed import EventFeed
from flowlang.runtime.outcome import Outcome
from flowlang.runtime.ports import (
    Acd,
    Clock,
    ConversationStore,
    ConversationView,
    CustomerView,
    Ports,
    ReplyPolicy,
)
from flowlang.runtime.program import Program
from flowlang.runtime.state import FlowState

FlowChooser = Callable[[Sequence[Program], str, str, EventKind | None], str]
"""(the flows' current versions, channel, account, the kind of the event starting it) -> the
name of the flow a new conversation starts on, when an Engine runs several flows."""


@dataclass
class EngineContext:
    """One Engine's shared state; the handler modules take it as their first argument."""

    ports: Ports
    program: Program  # the version new conversations start on
    params: dict[str, Any]
    threading_window: timedelta
    clock: Clock | None
    events: EventFeed
    deliverer: Deliverer
    programs: dict[str, Program] = field(default_factory=dict)
    # each flow's current version, by the flow's name (the first is `program`'s), and which of
    # them a new conversation starts on
    flows: dict[str, Program] = field(default_factory=dict)
    flow_names: frozenset[str] = frozenset()  # `flows`' names, as a run's facts give them
    choose_flow: FlowChooser | None = None
    # (deadline, conversation id, timer) of the flows' waits, soonest first (a heap)
    timers: list[tuple[datetime, str, str]] = field(default_factory=list)
    # what the current event resolved, so the flow's facts need not read it again
    customers: dict[str, CustomerView] = field(default_factory=dict)
    senders: dict[str, str] = field(default_factory=dict)
    # the events' outcomes of the group open (`grouped`), None when no group is open
    group: list[tuple[Outcome, datetime | None]] | None = None
    # the store undid work the in-memory state (the ACD, the flows' timers) had done: that
    # state is taken back from the store (`rebuild`) before the next unit of work
    stale: bool = False
    rebuild: Callable[[datetime | None], None] = lambda _now: None

    @property
    def store(self) -> ConversationStore:
        return self.ports.store

    @property
    def acd(self) -> Acd:
        return self.ports.acd

    @property
    def policy(self) -> ReplyPolicy:
        return self.ports.policy

    def unit_of_work(self) -> AbstractContextManager[None]:
        return self.store.transaction()

    def committed(self, work: Callable[[], Outcome], now: datetime | None) -> Outcome:
        """Run `work` as one unit of work, then deliver the messages it queued; inside a
        group (`grouped`), as a nested unit of work whose effects wait for the group's commit."""
        self.in_step(now)
        if self.group is not None:
            return self._joined(work, now, self.group)
        try:
            with self.events.committing(self.unit_of_work()):
                outcome = work()
        except BaseException:
            self.deliverer.discard()
            self.stale = True
            raise
        finally:  # one event's caches: a long run keeps nothing per conversation it saw
            self.customers.clear()
            self.senders.clear()
        outcome.failed_sends.extend(self.deliverer.deliver_queued(now))
        return outcome

    def _joined(
        self,
        work: Callable[[], Outcome],
        now: datetime | None,
        group: list[tuple[Outcome, datetime | None]],
    ) -> Outcome:
        """`work` as a nested unit of work of the open group: undone alone when it fails; its
        messages, and the listeners' news of its events, wait for the group's commit."""
        mark = self.deliverer.mark()
        try:
            with self.events.undone_on_failure(), self.unit_of_work():
                outcome = work()
        except BaseException:
            self.deliverer.discard(mark)
            self.stale = True
            raise
        finally:
            self.customers.clear()
            self.senders.clear()
        group.append((outcome, now))
        return outcome

    @contextmanager
    def grouped(self) -> Iterator[None]:
        """One unit of work, one durable commit, for every event handled inside (`Engine.group`);
        each is a nested unit of work. Nothing leaves before the commit: messages are delivered,
        and listeners told, once it has committed; when it fails, nothing is."""
        if self.group is not None:  # a group inside a group joins it
            yield
            return
        if self.clock is not None:  # else the group's first event does, at its time
            self.in_step(None)
        group: list[tuple[Outcome, datetime | None]] = []
        self.group = group
        self.deliverer.held = True
        try:
            with self.events.committing(self.unit_of_work()):
                yield
        except BaseException:
            self.deliverer.discard()
            self.stale = True
            raise
        finally:
            self.group = None
            self.deliverer.held = False
        outcomes = [outcome for outcome, _ in group]
        nows = [now for _, now in group if now is not None]
        failed = self.deliverer.deliver_queued(max(nows) if nows else None)
        _attach(failed, outcomes)

    def in_step(self, now: datetime | None) -> None:
        """Before a unit of work: when the store undid work the in-memory state had done (a
        unit that failed, or a commit that did), take that state back from the store first, so
        that no decision is made on what never happened. Raises what the store raises then
        (the state stays to be taken back)."""
        if not self.stale:
            return
        self.stale = False
        try:
            self.rebuild(now)
        except BaseException:
            self.stale = True
            raise

    def keep_version(self, program: Program) -> None:
        """Load `program` and keep its graph in the store, for conversations in flight on it
        after a restart."""
        self.programs[program.graph.version] = program
        self.store.save_flow_version(program.graph.version, program.graph.to_dict())

    def program_for(
        self, state: FlowState, conv: ConversationView, kind: EventKind | None = None
    ) -> Program:
        """A suspended flow resumes on the version it started on; a flow that starts (again)
        uses the current version of the flow that serves the conversation. When the started-on
        version is no longer loaded, the flow resumes on the current one if its step still
        exists there (ids are stable), and otherwise starts over with the next message."""
        current = self.starting_program(conv, kind)
        if state.waiting is None:
            return current
        known = self.programs.get(state.graph_version) or self._stored_program(state)
        if known is not None:
            return known
        if state.waiting.node not in current.graph.nodes:
            state.waiting = None
        return current

    def starting_program(self, conv: ConversationView, kind: EventKind | None) -> Program:
        """The current version of the flow a conversation on its channel and account starts
        on (the only flow, when there is one)."""
        if self.choose_flow is None or len(self.flows) < 2:
            return self.program
        name = self.choose_flow(list(self.flows.values()), conv.channel, conv.account, kind)
        return self.flows.get(name, self.program)

    def _stored_program(self, state: FlowState) -> Program | None:
        """The version a conversation started on, from the store (a restart forgot it)."""
        graph = self.store.flow_version(state.graph_version)
        if graph is None:
            return None
        program = Program(FlowGraph.from_dict(graph), self.program.templates)
        self.programs[program.graph.version] = program
        return program

    def customer(self, customer_id: str) -> CustomerView:
        return self.store.get_customer(customer_id) or CustomerView(customer_id)

    def start_timer(self, at: datetime, conversation_id: str, timer: str) -> None:
        heapq.heappush(self.timers, (at, conversation_id, timer))

    def running_at(self, due: datetime) -> datetime:
        """When a timer due at `due` really runs: the engine's clock's time when that is later
        (the engine was down or busy past it), so that what it does (replies judged by the
        channel's rules, `now()`, a routing's wait) is of the time it happens. Without a clock
        (a dry-run, a simulation stepping time on) it runs at `due`: nothing is late there."""
        if self.clock is None:
            return due
        return max(due, self.clock.now())

    def now_or_clock(self, now: datetime | None, method: str) -> datetime | None:
        """`now`, else the engine's clock's time (None without either); checked for a zone."""
        if now is None and self.clock is not None:
            now = self.clock.now()
        if now is not None:
            check_aware(now, method)
        return now


def _attach(failed: list[FailedSend], outcomes: list[Outcome]) -> None:
    """A group's failed sends, each on the outcome of the last event of its conversation (the
    last outcome when none is)."""
    if not outcomes:
        return
    last = {outcome.conversation_id: outcome for outcome in outcomes}
    for send in failed:
        last.get(send.message.conversation_id, outcomes[-1]).failed_sends.append(send)


def check_aware(now: datetime, method: str) -> None:
    """Every time the engine compares carries a zone; a host's `datetime.now()` does not."""
    if now.tzinfo is None:
        raise InputError(
            f"engine.{method}: `now` ({now.isoformat()}) has no time zone; "
            "pass an aware time, e.g. datetime.now(UTC)"
        )
