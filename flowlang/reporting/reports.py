"""The reports managers read: interaction details, agent and queue performance, real-time.

Historical figures are counted in the period in which they happen, so two halves of a day add up
to the whole day: an interaction is *routed* when it enters a queue, *answered* (with its wait)
when an agent accepts it, *abandoned* or *expired* when that happens, and its handle time counts
when the agent's work on it ends (after-call work included). Interaction details list every
interaction with activity in the period, as far as it had got by the period's end.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, overload

from flowlang.reporting.interactions import AgentSegment, Interaction, InteractionLog, QueueVisit

ColumnKind = Literal["text", "int", "seconds", "percent", "time", "list"]
TIMED_OUT = "(timed out)"
"""An interaction's wrap-up when after-call work ended without the code its queue requires."""
MEDIA_TYPES = ("message", "social_dm", "social_public")
DEFAULT_ANSWER_WITHIN = timedelta(minutes=5)


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    kind: ColumnKind = "text"


class StreamedRows(Sequence[dict[str, Any]]):
    """Rows made again from their source each time they are read, never all held at once
    (interaction details of a large log). Indexing and `len` read through them."""

    def __init__(self, source: Callable[[], Iterator[dict[str, Any]]]) -> None:
        self._source = source

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self._source()

    def __bool__(self) -> bool:
        return next(self._source(), None) is not None

    def __len__(self) -> int:
        return sum(1 for _ in self._source())

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | Sequence[dict[str, Any]]:
        return list(self._source())[index]


@dataclass
class Report:
    """A table of figures: rows of values keyed by column, and an optional totals row."""

    kind: str
    title: str
    columns: list[Column]
    rows: Sequence[dict[str, Any]]
    total: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Scope:
    """What a report covers: a period and, optionally, media types, queues and agents."""

    start: datetime | None = None
    end: datetime | None = None
    media: Collection[str] = ()
    queues: Collection[str] = ()
    agents: Collection[str] = ()

    def contains(self, at: datetime | None) -> bool:
        if at is None:
            return False
        return (self.start is None or at >= self.start) and (self.end is None or at < self.end)

    def overlaps(self, first: datetime | None, last: datetime | None) -> bool:
        if first is None:
            return False
        return (self.end is None or first < self.end) and (
            self.start is None or last is None or last >= self.start
        )

    def takes(self, item: Interaction) -> bool:
        return not self.media or item.media in self.media

    def takes_media(self, media: str) -> bool:
        return not self.media or media in self.media


def as_of(log: InteractionLog, scope: Scope) -> datetime:
    """The moment figures of unfinished interactions are measured at."""
    if scope.end is not None:
        return scope.end
    return log.last_event_at or datetime.fromtimestamp(0).astimezone()


# ---------------------------------------------------------------------- interaction details
def interaction_details(log: InteractionLog, scope: Scope) -> Report:
    """One row per interaction with activity in the period, in order of start. From a log
    that set interactions aside (`InteractionLog(spill_over=...)`) the rows are read as they
    are used, each time, rather than held."""
    moment = as_of(log, scope)
    rows: Sequence[dict[str, Any]]
    if log.spilled:
        rows = StreamedRows(lambda: _detail_rows(log, scope, moment))
    else:
        rows = list(_detail_rows(log, scope, moment))
    columns = [
        Column("conversation", "Conversation"),
        Column("channel", "Channel"),
        Column("media", "Media"),
        Column("customer", "Customer"),
        Column("started", "Started", "time"),
        Column("ended", "Ended", "time"),
        Column("duration", "Duration", "seconds"),
        Column("outcome", "Outcome"),
        Column("queues", "Queues", "list"),
        Column("agents", "Agents", "list"),
        Column("skills", "Skills", "list"),
        Column("transfers", "Transfers", "int"),
        Column("wait", "Wait", "seconds"),
        Column("handle", "Handle", "seconds"),
        Column("wrap_up", "Wrap-up"),
        Column("messages_in", "In", "int"),
        Column("messages_out", "Out", "int"),
        Column("flow_path", "Flow path", "list"),
        Column("survey", "Survey", "list"),
    ]
    return Report("interactions", "Interaction details", columns, rows)


def _detail_rows(log: InteractionLog, scope: Scope, moment: datetime) -> Iterator[dict[str, Any]]:
    for item in log.by_start():
        if not scope.takes(item) or not scope.overlaps(item.started_at, item.ended_at or moment):
            continue
        if scope.queues and not set(item.queues) & set(scope.queues):
            continue
        if scope.agents and not set(item.agents) & set(scope.agents):
            continue
        yield {
            "conversation": item.id,
            "channel": item.channel,
            "media": item.media,
            "customer": item.customer,
            "started": item.started_at,
            "ended": item.ended_at,
            "duration": item.duration_seconds(moment),
            "outcome": item.outcome or f"in progress ({item.state})",
            "queues": item.queues,
            "agents": item.agents,
            "skills": item.skills,
            "transfers": item.transfers,
            "wait": item.wait_seconds(moment),
            "handle": item.handle_seconds(moment),
            "wrap_up": item.wrap_up or (TIMED_OUT if item.wrap_up_timed_out else ""),
            "messages_in": item.messages_in,
            "messages_out": item.messages_out,
            "flow_path": item.flow_states(),
            "survey": [f"{key} = {value}" for key, value in item.survey.items()],
        }


# ---------------------------------------------------------------------- agents
AGENT_COLUMNS = [
    Column("agent", "Agent"),
    Column("offered", "Offered", "int"),
    Column("answered", "Answered", "int"),
    Column("declined", "Declined", "int"),
    Column("not_responding", "No answer", "int"),
    Column("handled", "Handled", "int"),
    Column("messages", "Messages sent", "int"),
    Column("handle_total", "Total handle", "seconds"),
    Column("handle_average", "Avg handle", "seconds"),
    Column("transferred", "Transferred", "int"),
    Column("transferred_share", "% transferred", "percent"),
    Column("wrap_up_timed_out", "Wrap-up timed out", "int"),
    Column("rated", "Rated", "int"),
    Column("satisfaction", "Satisfaction", "percent"),
]


def agent_performance(log: InteractionLog, scope: Scope) -> Report:
    """Per agent: what they were offered and answered, handled (work ended in the period),
    messages sent, total and average handle time, and the share they transferred."""
    moment = as_of(log, scope)
    counters: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for at, agent, what, media in log.activity():
        if agent and scope.contains(at) and media is not None and scope.takes_media(media):
            counters[agent]["messages" if what == "message" else what] += 1
    for item in log.all_interactions():  # one pass: a spilled log reads each back once
        if not scope.takes(item):
            continue
        for segment in item.segments:
            if scope.contains(segment.handled_at):
                _count_segment(counters[segment.agent], segment, moment)
        for _when, agent, _queue, satisfied in _ratings(item, scope):
            if agent:
                counters[agent]["rated"] += 1
                counters[agent]["satisfied"] += satisfied
    names = sorted(a for a in counters if not scope.agents or a in scope.agents)
    rows = [_agent_row(name, counters[name]) for name in names]
    total: dict[str, float] = defaultdict(float)
    for name in names:
        for key, value in counters[name].items():
            total[key] += value
    return Report(
        "agents",
        "Agent performance",
        AGENT_COLUMNS,
        rows,
        _agent_row("all agents", total) if rows else None,
    )


def _count_segment(figures: dict[str, float], segment: AgentSegment, moment: datetime) -> None:
    """What an agent's handling adds to their row and to its queue's: one handled, its
    handle time (microseconds, exact in any order), transferred, wrap-up timed out."""
    figures["handled"] += 1
    figures["handle_us"] += segment.handle_micros(moment)
    figures["transferred"] += segment.end == "transferred"
    figures["wrap_up_timed_out"] += segment.wrap_up_timed_out


def _ratings(item: Interaction, scope: Scope) -> Iterable[tuple[datetime, str, str, bool]]:
    """The interaction's ratings given in the period."""
    for when, agent, queue, satisfied in item.ratings:
        at = datetime.fromisoformat(when)
        if scope.contains(at):
            yield at, agent, queue, bool(satisfied)


def _satisfaction(figures: Mapping[str, float]) -> float | None:
    rated = figures.get("rated", 0)
    return figures.get("satisfied", 0) / rated if rated else None


def _agent_row(name: str, figures: Mapping[str, float]) -> dict[str, Any]:
    handled = int(figures.get("handled", 0))
    total = figures.get("handle_us", 0.0) / 1e6
    transferred = int(figures.get("transferred", 0))
    return {
        "agent": name,
        "offered": int(figures.get("offered", 0)),
        "answered": int(figures.get("answered", 0)),
        "declined": int(figures.get("declined", 0)),
        "not_responding": int(figures.get("not_responding", 0)),
        "handled": handled,
        "messages": int(figures.get("messages", 0)),
        "handle_total": total,
        "handle_average": total / handled if handled else None,
        "transferred": transferred,
        "transferred_share": transferred / handled if handled else None,
        "wrap_up_timed_out": int(figures.get("wrap_up_timed_out", 0)),
        "rated": int(figures.get("rated", 0)),
        "satisfaction": _satisfaction(figures),
    }


# ---------------------------------------------------------------------- queues
QUEUE_COLUMNS = [
    Column("queue", "Queue"),
    Column("routed", "Routed", "int"),
    Column("answered", "Answered", "int"),
    Column("wait_average", "Avg wait", "seconds"),
    Column("wait_longest", "Longest wait", "seconds"),
    Column("abandoned", "Abandoned", "int"),
    Column("expired", "Expired", "int"),
    Column("timed_out", "Timed out", "int"),
    Column("transferred", "Transferred", "int"),
    Column("wrap_up_timed_out", "Wrap-up timed out", "int"),
    Column("handle_total", "Total handle", "seconds"),
    Column("handle_average", "Avg handle", "seconds"),
    Column("service_level", "Service level", "percent"),
    Column("answer_within", "Target answer", "seconds"),
    Column("rated", "Rated", "int"),
    Column("satisfaction", "Satisfaction", "percent"),
]


def queue_performance(
    log: InteractionLog,
    scope: Scope,
    answer_within: Mapping[str, timedelta] | None = None,
    default_answer_within: timedelta = DEFAULT_ANSWER_WITHIN,
) -> Report:
    """Per queue: routed, answered, average and longest wait, abandoned, expired, timed out,
    transferred, total and average handle time and service level.

    Service level = answered within the queue's target ÷ interactions whose wait ended in the
    period (answered, abandoned, expired or timed out).
    """
    targets = dict(answer_within or {})
    figures = queue_totals(
        log.all_interactions(), scope, targets, default_answer_within, as_of(log, scope)
    )
    for media, settled in log.settled_queues.items():
        if not scope.media or media in scope.media:
            for name in settled:
                figures[name]  # a row of zeros, as the whole log would give
    names = sorted(q for q in figures if not scope.queues or q in scope.queues)
    rows = [
        queue_row(name, figures[name], targets.get(name, default_answer_within).total_seconds())
        for name in names
    ]
    total: dict[str, float] = defaultdict(float)
    for name in names:
        for key, value in figures[name].items():
            total[key] = max(total[key], value) if key == "wait_longest" else total[key] + value
    notes = [
        "Service level: answered within the target ÷ answered, abandoned, expired and timed out.",
        "Satisfaction: survey ratings in the top two points of their scale (4 and 5 of 1-5) ÷ "
        "ratings given in the period.",
    ]
    return Report(
        "queues",
        "Queue performance",
        QUEUE_COLUMNS,
        rows,
        queue_row("all queues", total, None) if rows else None,
        notes,
    )


def queue_totals(
    items: Iterable[Interaction],
    scope: Scope,
    targets: Mapping[str, timedelta],
    default_answer_within: timedelta,
    moment: datetime,
) -> dict[str, dict[str, float]]:
    """The sums queue performance is made of, per queue, over `items`: what each interaction
    adds (counts, total wait and handle time in microseconds so that sums are exact in any
    order, and the longest wait, a maximum). A host that
    keeps them per interaction updates a day's figures as interactions change."""
    figures: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for item in items:
        if not scope.takes(item):
            continue
        for visit in item.visits:
            if visit.queue is not None:
                _count_visit(figures[visit.queue], visit, scope, targets, default_answer_within)
        for segment in item.segments:
            if segment.queue is not None and scope.contains(segment.handled_at):
                _count_segment(figures[segment.queue], segment, moment)
        for _at, _agent, queue_name, satisfied in _ratings(item, scope):
            if queue_name:
                figures[queue_name]["rated"] += 1
                figures[queue_name]["satisfied"] += satisfied
    return figures


def _count_visit(
    figures: dict[str, float],
    visit: QueueVisit,
    scope: Scope,
    targets: Mapping[str, timedelta],
    default_answer_within: timedelta,
) -> None:
    if scope.contains(visit.entered_at):
        figures["routed"] += 1
    if not scope.contains(visit.left_at) or visit.left_at is None:
        return
    wait = visit.wait_seconds(visit.left_at)
    micros = visit.wait_micros(visit.left_at)
    if visit.result == "answered":
        figures["answered"] += 1
        figures["wait_us"] += micros
        target = targets.get(visit.queue or "", default_answer_within).total_seconds()
        figures["answered_within"] += wait <= target
    elif visit.result in ("abandoned", "expired"):
        figures[visit.result] += 1
    elif visit.result == "timeout":
        figures["timed_out"] += 1
    else:
        return  # withdrawn by the flow: neither answered nor lost
    figures["wait_longest"] = max(figures["wait_longest"], wait)


def queue_row(name: str, figures: Mapping[str, float], target: float | None) -> dict[str, Any]:
    """A queue performance row from the sums `queue_totals` gives."""
    answered = int(figures.get("answered", 0))
    handled = int(figures.get("handled", 0))
    handle = figures.get("handle_us", 0.0) / 1e6
    ended = answered + sum(int(figures.get(k, 0)) for k in ("abandoned", "expired", "timed_out"))
    return {
        "queue": name,
        "routed": int(figures.get("routed", 0)),
        "answered": answered,
        "wait_average": figures.get("wait_us", 0.0) / 1e6 / answered if answered else None,
        "wait_longest": figures.get("wait_longest") if ended else None,
        "abandoned": int(figures.get("abandoned", 0)),
        "expired": int(figures.get("expired", 0)),
        "timed_out": int(figures.get("timed_out", 0)),
        "transferred": int(figures.get("transferred", 0)),
        "wrap_up_timed_out": int(figures.get("wrap_up_timed_out", 0)),
        "handle_total": handle,
        "handle_average": handle / handled if handled else None,
        "service_level": figures.get("answered_within", 0) / ended if ended else None,
        "answer_within": target,
        "rated": int(figures.get("rated", 0)),
        "satisfaction": _satisfaction(figures),
    }


# ---------------------------------------------------------------------- real time
REALTIME_COLUMNS = [
    Column("queue", "Queue"),
    Column("waiting", "Waiting", "int"),
    Column("longest_waiting", "Longest waiting", "seconds"),
    Column("in_progress", "In progress", "int"),
]
ACTIVE_COLUMNS = [
    Column("media", "Media"),
    Column("active", "Active", "int"),
    Column("longest", "Longest", "seconds"),
    Column("longest_conversation", "Longest conversation"),
]
AGENT_STATE_COLUMNS = [
    Column("agent", "Agent"),
    Column("state", "State"),
    Column("since", "Since", "time"),
    Column("conversations", "Conversations", "int"),
]

MEDIA_TITLES = {
    "message": "Messages",
    "social_dm": "Social direct messages",
    "social_public": "Social conversations (public)",
}


def realtime(
    log: InteractionLog,
    at: datetime,
    scope: Scope,
    queues: Collection[str] = (),
    agents: Collection[str] = (),
) -> list[Report]:
    """What is going on at `at` (the log folded up to then): per queue the interactions waiting,
    the longest wait and those in progress with agents; per media type the active interactions
    and the longest (for social media: the longest public conversation and direct message);
    each agent's state and load. Counts come from the log's live indexes, not from a scan."""
    names = sorted({*queues, *(q for q in log.waiting if q), *(q for q in log.with_agent if q)})
    rows = []
    for name in names:
        if scope.queues and name not in scope.queues:
            continue
        waiting = _of_media(log, log.waiting.get(name, {}), scope)
        with_agent = _of_media(log, log.with_agent.get(name, {}), scope)
        oldest = next(iter(waiting.values()), None)
        rows.append(
            {
                "queue": name,
                "waiting": len(waiting),
                "longest_waiting": (at - oldest).total_seconds() if oldest else None,
                "in_progress": len(with_agent),
            }
        )
    media_rows = []
    for media in scope.media or MEDIA_TYPES:
        active: Mapping[str, datetime] = log.active.get(media) or {}
        first = next(iter(active.items()), None)
        media_rows.append(
            {
                "media": MEDIA_TITLES.get(media, media),
                "active": len(active),
                "longest": (at - first[1]).total_seconds() if first else None,
                "longest_conversation": first[0] if first else "",
            }
        )
    load = {agent: len(_of_media(log, held, scope)) for agent, held in log.holding.items()}
    agent_rows = [
        {
            "agent": agent,
            # An agent with no state change logged is as the deployment starts them.
            "state": log.agent_states.get(agent, ("available", None))[0],
            "since": log.agent_states.get(agent, ("", None))[1],
            "conversations": load.get(agent, 0),
        }
        for agent in sorted({*agents, *log.agent_states, *load})
        if not scope.agents or agent in scope.agents
    ]
    stamp = f"at {at.isoformat()}"
    return [
        Report("realtime", f"Queues activity {stamp}", REALTIME_COLUMNS, rows),
        Report("realtime_media", f"Active interactions {stamp}", ACTIVE_COLUMNS, media_rows),
        Report("realtime_agents", f"Agents {stamp}", AGENT_STATE_COLUMNS, agent_rows),
    ]


def _of_media(
    log: InteractionLog, entries: Mapping[str, datetime], scope: Scope
) -> Mapping[str, datetime]:
    if not scope.media:
        return entries
    return {conv: at for conv, at in entries.items() if _media_of(log, conv) in scope.media}


def _media_of(log: InteractionLog, conversation_id: str) -> str | None:
    item = log.find(conversation_id)
    return item.media if item is not None else None
