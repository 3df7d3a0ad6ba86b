"""Interaction records folded from the engine's event log.

    log = InteractionLog()
    for event in store.iter_events(end=to):
        log.apply(event)

Each conversation becomes an `Interaction`: its channel and media type, customer, the flow path,
every stint in a queue (`QueueVisit`: entered, left, how) and every stint with an agent
(`AgentSegment`: accepted, ended, after-call work, how). Reports are views over these records;
`apply` is incremental, so a host can feed events as they happen and read real-time figures
without rescanning the log.
"""

from __future__ import annotations

import copy
import heapq
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from flowlang.events import media_type

if TYPE_CHECKING:
    from flowlang.reporting.spill import Spill

MICROSECOND = timedelta(microseconds=1)
WAITING_PHASES = ("waiting", "offered", "preferred", "direct")


@dataclass
class QueueVisit:
    """One wait in a queue (or for one agent, `queue` None): from entering to leaving it."""

    queue: str | None
    entered_at: datetime
    left_at: datetime | None = None
    # waiting | answered | abandoned | expired | timeout | unavailable | withdrawn
    result: str = "waiting"
    agent: str | None = None  # who answered

    def wait_seconds(self, as_of: datetime) -> float:
        return ((self.left_at or as_of) - self.entered_at).total_seconds()

    def wait_micros(self, as_of: datetime) -> int:
        """The wait in whole microseconds: sums of these are exact in any order."""
        return ((self.left_at or as_of) - self.entered_at) // MICROSECOND


@dataclass
class AgentSegment:
    """One agent's part of an interaction: from accepting it to the end of after-call work."""

    agent: str
    queue: str | None
    started_at: datetime
    ended_at: datetime | None = None  # the conversation with this agent ended
    work_ended_at: datetime | None = None  # after-call work ended (== ended_at without ACW)
    end: str = ""  # completed | transferred | requeued | customer_left | disconnected
    wrap_up: str | None = None
    wrap_up_timed_out: bool = False  # after-call work ended without the required code
    messages: int = 0

    def handle_seconds(self, as_of: datetime) -> float:
        """Time the agent gave it: the conversation and its after-call work."""
        return ((self.work_ended_at or as_of) - self.started_at).total_seconds()

    def handle_micros(self, as_of: datetime) -> int:
        """The handle time in whole microseconds: sums of these are exact in any order."""
        return ((self.work_ended_at or as_of) - self.started_at) // MICROSECOND

    @property
    def handled_at(self) -> datetime | None:
        """When the agent's work on it was done (handle time counts then)."""
        return self.work_ended_at


@dataclass
class Interaction:
    """One conversation, as the reports see it."""

    id: str
    channel: str = ""
    media: str = "message"
    customer: str = ""
    started_at: datetime | None = None
    last_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: str = ""  # "" while in progress; completed, abandoned, expired, ...
    state: str = "flow"  # flow | bot | waiting | offered | with_agent | wrap_up | ended
    skills: list[str] = field(default_factory=list)
    visits: list[QueueVisit] = field(default_factory=list)
    segments: list[AgentSegment] = field(default_factory=list)
    transfers: int = 0
    wrap_up: str | None = None
    wrap_up_timed_out: bool = False  # an agent's after-call work ended without the required code
    path: list[str] = field(default_factory=list)  # flow steps (node ids) in order
    messages_in: int = 0
    messages_out: int = 0
    blocked: int = 0
    flow_errors: int = 0
    # survey answers, "<survey>.<question>" -> the value (the latest answer)
    survey: dict[str, Any] = field(default_factory=dict)
    # each rating given: [when (ISO), agent, queue, satisfied (in the top two of its scale)]
    ratings: list[list[Any]] = field(default_factory=list)
    # an `on` block (a survey after wrap-up) runs on the ended interaction: the customer's
    # answers do not open it again
    follow_up: bool = False

    @property
    def queues(self) -> list[str]:
        return _unique(v.queue for v in self.visits if v.queue)

    @property
    def agents(self) -> list[str]:
        return _unique(s.agent for s in self.segments)

    @property
    def open_visit(self) -> QueueVisit | None:
        return self.visits[-1] if self.visits and self.visits[-1].left_at is None else None

    @property
    def open_segment(self) -> AgentSegment | None:
        last = self.segments[-1] if self.segments else None
        return last if last is not None and last.work_ended_at is None else None

    def duration_seconds(self, as_of: datetime) -> float:
        if self.started_at is None:
            return 0.0
        return ((self.ended_at or as_of) - self.started_at).total_seconds()

    def wait_seconds(self, as_of: datetime) -> float:
        return sum(v.wait_seconds(as_of) for v in self.visits)

    def handle_seconds(self, as_of: datetime) -> float:
        return sum(s.handle_seconds(as_of) for s in self.segments)

    def flow_states(self) -> list[str]:
        """The states and tasks the flow went through, in order (repeats collapsed)."""
        states: list[str] = []
        for node in self.path:
            state = node.split("/", 1)[0]
            if not states or states[-1] != state:
                states.append(state)
        return states


class InteractionLog:
    """Folds events, in time order, into interactions, agent counters and live indexes.

    With `spill_over`, at most about that many interactions stay in memory (the rest are set
    aside on disk, `spill.py`, and taken back when an event needs them): the fold's memory no
    longer grows with the log. `interactions` then holds only those in memory; readers use
    `all_interactions`, `by_start`, `find` and `activity`, which see both."""

    def __init__(self, spill_over: int | None = None, spill: Spill | None = None) -> None:
        self.interactions: dict[str, Interaction] = {}
        self.spill_over = spill_over
        self._spill: Spill | None = spill
        self.agent_states: dict[str, tuple[str, datetime]] = {}
        # Counted by the time they happened: offers, declines, no-answers, messages sent.
        self.agent_activity: list[tuple[datetime, str, str, str]] = []  # at, agent, what, conv
        # Live indexes for real-time views, in order of entry (events come in time order), so
        # the first entry is the longest waiting / active; OrderedDict finds it in O(1).
        self.waiting: dict[str | None, OrderedDict[str, datetime]] = defaultdict(OrderedDict)
        self.with_agent: dict[str | None, OrderedDict[str, datetime]] = defaultdict(OrderedDict)
        self.active: dict[str, OrderedDict[str, datetime]] = defaultdict(OrderedDict)
        self.holding: dict[str, OrderedDict[str, datetime]] = defaultdict(OrderedDict)
        self.last_event_at: datetime | None = None
        # Per media, the queues of interactions a report checkpoint settled and left out: queue
        # performance lists every queue the log's interactions visited, as a full fold would.
        self.settled_queues: dict[str, set[str]] = {}

    @classmethod
    def from_events(
        cls, events: Iterable[Mapping[str, Any]], spill_over: int | None = None
    ) -> InteractionLog:
        log = cls(spill_over)
        for event in events:
            log.apply(event)
        return log

    @classmethod
    def up_to_each(
        cls,
        events: Iterable[Mapping[str, Any]],
        ends: Sequence[datetime | None],
        start_from: InteractionLog | None = None,
        spill_over: int | None = None,
    ) -> list[InteractionLog]:
        """One log per end, of the events before it (None: all of them), in one pass over
        time-ordered events. With `start_from` (a checkpoint's log, for events from its moment
        on), each log starts as it. `spill_over`: see the class. Ends no event has reached yet
        share one log: an end leaves with a copy of it when the first event at or after it
        comes (so a period ending after the last event, and the real-time view of now, are
        folded once)."""
        shared = start_from if start_from is not None else cls()
        shared.spill_over = spill_over
        open_ends = sorted({end for end in ends if end is not None})
        unbounded = None in ends
        logs: dict[datetime | None, InteractionLog] = {}
        for event in events:
            at = event["at"]
            while open_ends and at >= open_ends[0]:  # this end's log is complete
                done = open_ends.pop(0)
                last = not open_ends and not unbounded
                logs[done] = shared if last else shared.copy()
            if not open_ends and not unbounded:
                break
            shared.apply(event)
        for end in open_ends:
            logs[end] = shared
        if unbounded:
            logs[None] = shared
        return [logs[end] for end in ends]

    def apply(self, event: Mapping[str, Any]) -> None:
        """Take one event of the log ({"kind", "at", "conversation_id", **data})."""
        kind, at = event["kind"], event["at"]
        last = self.last_event_at
        if last is None or at > last:
            self.last_event_at = at
        if kind == "agent_state":
            self.agent_states[event["agent"]] = (event["state"], at)
            return
        conversation_id = event.get("conversation_id")
        if not conversation_id:
            return
        handler = _HANDLERS.get(kind)
        if handler is None:
            return
        item = self.interactions.get(conversation_id)
        if item is None:
            if self.spill_over is not None and len(self.interactions) >= self.spill_over:
                self._set_aside(len(self.interactions) // 2 or 1)
            item = self._spill.take(conversation_id) if self._spill is not None else None
            if item is None:
                item = Interaction(conversation_id, started_at=at)
            self.interactions[conversation_id] = item
        if not item.channel and event.get("channel"):
            item.channel = event["channel"]
            item.media = event.get("media") or media_type(item.channel)
        item.last_at = at
        handler(self, item, event, at)

    def copy(self) -> InteractionLog:
        """An independent copy (with a copy of what it set aside)."""
        spill, self._spill = self._spill, None
        try:
            twin = copy.deepcopy(self)
        finally:
            self._spill = spill
        twin._spill = spill.copy() if spill is not None else None
        return twin

    # ------------------------------------------------------------------ reading
    @property
    def spilled(self) -> bool:
        """Whether some interactions were set aside on disk (see the class)."""
        return self._spill is not None

    @property
    def aside(self) -> Spill | None:
        """Where interactions and activity were set aside (None: nowhere, all in memory)."""
        return self._spill

    def all_interactions(self) -> Iterator[Interaction]:
        """Every interaction, in memory or set aside."""
        yield from self.interactions.values()
        if self._spill is not None:
            yield from self._spill.items()

    def by_start(self) -> Iterator[Interaction]:
        """Every interaction in order of start (then id)."""
        if self._spill is None:
            yield from sorted(self.interactions.values(), key=lambda i: (i.started_at, i.id))
            return
        self._set_aside(len(self.interactions))
        yield from self._spill.items(by_start=True)

    def find(self, conversation_id: str) -> Interaction | None:
        """The interaction with this id, in memory or set aside (None: none)."""
        item = self.interactions.get(conversation_id)
        if item is None and self._spill is not None:
            item = self._spill.peek(conversation_id)
        return item

    def activity(self) -> Iterator[tuple[datetime, str, str, str | None]]:
        """Agents' activity (at, agent, what, media of its interaction: None when there is
        none), in the order it happened."""
        if self._spill is None:
            for at, agent, what, conv in self.agent_activity:
                item = self.interactions.get(conv)
                yield at, agent, what, item.media if item is not None else None
            return
        self._set_aside(len(self.interactions))
        yield from self._spill.activity()

    def activity_since(self, at: datetime) -> list[tuple[datetime, str, str, str]]:
        """Agents' activity at or after `at`, with the conversation's id."""
        kept = [entry for entry in self.agent_activity if entry[0] >= at]
        if self._spill is not None and self._spill.count:
            spilled = self._spill.activity_since(at)
            kept = [*spilled, *kept]
        return kept

    def _set_aside(self, count: int) -> None:
        """Move the `count` interactions touched least recently, and the activity in memory,
        to the spill."""
        if self._spill is None:
            from flowlang.reporting.spill import Spill  # it reads the records defined here

            self._spill = Spill()
        if count >= len(self.interactions):
            chosen = list(self.interactions.values())
        else:
            chosen = heapq.nsmallest(count, self.interactions.values(), key=_last_touched)
        self._spill.put(chosen)
        self._spill.add_activity(self.final_media(self.agent_activity))
        for item in chosen:
            del self.interactions[item.id]
        self.agent_activity = []

    def final_media(
        self, entries: Iterable[tuple[datetime, str, str, str]]
    ) -> Iterator[tuple[datetime, str, str, str, str | None]]:
        """Each activity with the media of its interaction in memory when that media is final
        (its channel known: it changes no more), else None (looked up when read back)."""
        found = self.interactions.get
        for at, agent, what, conv in entries:
            item = found(conv)
            yield at, agent, what, conv, item.media if item is not None and item.channel else None

    # ------------------------------------------------------------------ helpers
    def _begin(self, item: Interaction, at: datetime) -> None:
        """In progress; a conversation that had ended opens again (a new message in its
        thread)."""
        item.follow_up = False
        if item.state == "ended":
            # Active again from now: a thread reopened today is not a day-long conversation.
            item.state, item.outcome, item.ended_at = "flow", "", None
            self.active[item.media].setdefault(item.id, at)
        self.active[item.media].setdefault(item.id, item.started_at or at)

    def _end(self, item: Interaction, at: datetime, outcome: str) -> None:
        self._close_visit(item, at, outcome if outcome in ("abandoned", "expired") else "withdrawn")
        segment = item.open_segment
        if segment is not None and segment.ended_at is None:
            self._end_segment(item, segment, at, "customer_left")
        item.state, item.outcome, item.ended_at = "ended", outcome, at
        self.active[item.media].pop(item.id, None)

    def _enter(self, item: Interaction, queue: str | None, at: datetime) -> None:
        self._begin(item, at)
        self._close_visit(item, at, "withdrawn")
        item.visits.append(QueueVisit(queue, at))
        item.state = "waiting"
        self.waiting[queue][item.id] = at

    def _close_visit(self, item: Interaction, at: datetime, result: str) -> None:
        visit = item.open_visit
        if visit is not None:
            visit.left_at, visit.result = at, result
            self.waiting[visit.queue].pop(item.id, None)

    def _end_segment(
        self, item: Interaction, segment: AgentSegment, at: datetime, end: str
    ) -> None:
        """The conversation with the agent ended; so did their work on it, unless an
        `after_call_work` notice follows at the same moment."""
        if segment.ended_at is None:
            segment.ended_at, segment.end = at, end
            self.with_agent[segment.queue].pop(item.id, None)
            self.holding[segment.agent].pop(item.id, None)
        segment.work_ended_at = at

    # ------------------------------------------------------------------ events
    def _on_message_in(self, item: Interaction, event: Mapping[str, Any], at: datetime) -> None:
        item.customer = event.get("customer") or item.customer
        # Leaving, or unsending a message, is not a message.
        if event.get("message_kind") not in ("delete", "close", "unsend"):
            item.messages_in += 1
        if item.follow_up and item.state == "ended":
            return  # an answer to what an `on` block asked after the end
        if event.get("message_kind") not in ("delete", "close", "edit", "unsend"):
            self._begin(item, at)

    def _on_initiated(self, item: Interaction, event: Mapping[str, Any], at: datetime) -> None:
        """The business started it (a template to a customer who had not written)."""
        item.customer = event.get("customer") or item.customer

    def _on_not_sent(self, item: Interaction, event: Mapping[str, Any], at: datetime) -> None:
        """A business-initiated message the channel policy blocked: nothing was started."""
        self._end(item, at, f"not sent ({event.get('reason') or 'blocked'})")

    def _on_message_out(self, item: Interaction, event: Mapping[str, Any], at: datetime) -> None:
        item.messages_out += 1
        agent = event.get("agent")
        if event.get("sender") == "agent" and agent:
            self.agent_activity.append((at, agent, "message", item.id))
            segment = item.open_segment
            if segment is not None and segment.agent == agent:
                segment.messages += 1

    def _on_blocked(self, item: Interaction, event: Mapping[str, Any], at: datetime) -> None:
        item.blocked += 1

    def _on_flow_path(self, item: Interaction, event: Mapping[str, Any], at: datetime) -> None:
        item.path.extend(event.get("nodes") or ())

    def _on_flow_error(self, item: Interaction, event: Mapping[str, Any], at: datetime) -> None:
        item.flow_errors += 1

    def _on_bot_started(self, item: Interaction, event: Mapping[str, Any], at: datetime) -> None:
        item.state = "bot"

    def _on_queued(self, item: Interaction, event: Mapping[str, Any], at: datetime) -> None:
        for skill in event.get("skills") or ():
            if skill not in item.skills:
                item.skills.append(skill)
        visit = item.open_visit
        if visit is not None and visit.queue is not None and visit.queue == event.get("queue"):
            return  # routed again to the queue it waits in: the same wait goes on
        self._enter(item, event.get("queue"), at)

    def _on_agent_requested(
        self, item: Interaction, event: Mapping[str, Any], at: datetime
    ) -> None:
        self._enter(item, None, at)

    def _on_offered(self, item: Interaction, event: Mapping[str, Any], at: datetime) -> None:
        item.state = "offered"
        self.agent_activity.append((at, event.get("agent") or "", "offered", item.id))

    def _on_declined(self, item: Interaction, event: Mapping[str, Any], at: datetime) -> None:
        item.state = "waiting"
        self.agent_activity.append((at, event.get("agent") or "", "declined", item.id))

    def _on_not_responding(self, item: Interaction, event: Mapping[str, Any], at: datetime) -> None:
        item.state = "waiting"
        agent = event.get("agent") or ""
        self.agent_activity.append((at, agent, "not_responding", item.id))
        if agent:  # the ACD offers them nothing until they set themselves available again
            self.agent_states[agent] = ("not_responding", at)

    def _on_accepted(self, item: Interaction, event: Mapping[str, Any], at: datetime) -> None:
        agent = event.get("agent") or ""
        visit = item.open_visit
        queue = visit.queue if visit is not None else event.get("queue")
        if visit is not None:
            visit.agent = agent
        self._close_visit(item, at, "answered")
        item.segments.append(AgentSegment(agent, queue, at))
        item.state = "with_agent"
        self.with_agent[queue][item.id] = at
        self.holding[agent][item.id] = at
        if event.get("auto_answer"):  # given to them without an offer: offered all the same
            self.agent_activity.append((at, agent, "offered", item.id))
        self.agent_activity.append((at, agent, "answered", item.id))

    def _on_requeued(self, item: Interaction, event: Mapping[str, Any], at: datetime) -> None:
        segment = item.open_segment
        if segment is not None:  # taken back from an agent who had it (away, inactive)
            self._end_segment(item, segment, at, "requeued")
            self._enter(item, event.get("queue") or segment.queue, at)
        elif item.open_visit is None:
            self._enter(item, event.get("queue"), at)
        else:
            item.state = "waiting"

    def _on_transferred(self, item: Interaction, event: Mapping[str, Any], at: datetime) -> None:
        item.transfers += 1
        segment = item.open_segment
        previous_queue = segment.queue if segment is not None else None
        if segment is not None:
            self._end_segment(item, segment, at, "transferred")
        # A transfer to an agent waits in the queue it came from, as the ACD keeps it there.
        self._enter(item, event.get("to_queue") or previous_queue, at)

    def _on_completed(self, item: Interaction, event: Mapping[str, Any], at: datetime) -> None:
        item.wrap_up = event.get("wrap_up") or item.wrap_up
        segment = item.open_segment
        if segment is not None:
            segment.wrap_up = event.get("wrap_up") or segment.wrap_up
            self._end_segment(item, segment, at, "completed")
        item.state, item.outcome, item.ended_at = "ended", "completed", at
        self.active[item.media].pop(item.id, None)

    def _on_after_call_work(
        self, item: Interaction, event: Mapping[str, Any], at: datetime
    ) -> None:
        segment = item.segments[-1] if item.segments else None
        if segment is not None and segment.work_ended_at == at:
            segment.work_ended_at = None  # the work goes on until the wrap-up ends
            if item.state != "ended":
                item.state = "wrap_up"

    def _on_wrap_up(self, item: Interaction, event: Mapping[str, Any], at: datetime) -> None:
        item.wrap_up = event.get("wrap_up") or item.wrap_up
        if item.segments:
            item.segments[-1].wrap_up = event.get("wrap_up") or item.segments[-1].wrap_up

    def _on_wrap_up_ended(self, item: Interaction, event: Mapping[str, Any], at: datetime) -> None:
        if event.get("wrap_up"):
            item.wrap_up = event["wrap_up"]
        item.wrap_up_timed_out = item.wrap_up_timed_out or bool(event.get("timed_out"))
        if item.segments:
            segment = item.segments[-1]
            segment.wrap_up = event.get("wrap_up") or segment.wrap_up
            segment.wrap_up_timed_out = bool(event.get("timed_out"))
            if segment.work_ended_at is None:
                segment.work_ended_at = at

    def _on_withdrawn(self, item: Interaction, event: Mapping[str, Any], at: datetime) -> None:
        if event.get("phase") in ("active", "wrap_up"):
            segment = item.open_segment
            if segment is not None:
                self._end_segment(item, segment, at, "customer_left")
        else:
            self._close_visit(item, at, "withdrawn")
            item.state = "flow"

    def _on_agent_unavailable(
        self, item: Interaction, event: Mapping[str, Any], at: datetime
    ) -> None:
        if item.open_visit is not None and item.open_visit.queue is None:
            self._close_visit(item, at, "unavailable")
            item.state = "flow"

    def _on_queue_timeout(self, item: Interaction, event: Mapping[str, Any], at: datetime) -> None:
        self._close_visit(item, at, "timeout")
        item.state = "flow"

    def _on_abandoned(self, item: Interaction, event: Mapping[str, Any], at: datetime) -> None:
        visit = item.visits[-1] if item.visits else None
        if visit is not None and visit.left_at == at and visit.result == "withdrawn":
            visit.result = "abandoned"
        self._end(item, at, "customer left" if item.segments else "abandoned")

    def _on_expired(self, item: Interaction, event: Mapping[str, Any], at: datetime) -> None:
        self._end(item, at, "expired")

    def _on_disconnected(self, item: Interaction, event: Mapping[str, Any], at: datetime) -> None:
        segment = item.open_segment
        if segment is not None:
            self._end_segment(item, segment, at, "disconnected")
        item.state, item.outcome, item.ended_at = "ended", "disconnected", at
        self.active[item.media].pop(item.id, None)

    def _on_not_actionable(self, item: Interaction, event: Mapping[str, Any], at: datetime) -> None:
        self._end(item, at, "not actionable")

    def _on_flow_event(self, item: Interaction, event: Mapping[str, Any], at: datetime) -> None:
        if item.state == "ended":
            item.follow_up = True

    def _on_survey_answer(self, item: Interaction, event: Mapping[str, Any], at: datetime) -> None:
        value = event.get("value")
        item.survey[f"{event.get('survey')}.{event.get('question')}"] = value
        if event.get("answer") == "rating" and isinstance(value, int | float):
            high = event.get("high")
            satisfied = high is not None and value >= high - 1
            item.ratings.append([at.isoformat(), event.get("agent"), event.get("queue"), satisfied])

    def _on_flow_ended(self, item: Interaction, event: Mapping[str, Any], at: datetime) -> None:
        if item.follow_up:
            item.follow_up = False
            return  # the `on` block ended; the interaction had ended already
        if item.state in ("flow", "bot"):
            self._end(item, at, event.get("reason") or "flow ended")


def _last_touched(item: Interaction) -> datetime:
    return item.last_at or item.started_at or _NEVER


_NEVER = datetime.min.replace(tzinfo=UTC)


def _unique(values: Iterable[str | None]) -> list[str]:
    seen: list[str] = []
    for value in values:
        if value and value not in seen:
            seen.append(value)
    return seen


# Each event kind's handler, looked up once (an attribute lookup by a built name per event
# was a tenth of folding a large log).
_HANDLERS: dict[str, Callable[[InteractionLog, Interaction, Mapping[str, Any], datetime], None]] = {
    name.removeprefix("_on_"): method
    for name, method in vars(InteractionLog).items()
    if name.startswith("_on_")
}
