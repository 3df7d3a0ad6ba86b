"""The built-in ACD: skills, capacity, preferred and last agents, bullseye rings, wrap-up.

Every decision looks at the head of an ordered structure, not at the center:

- agents who can take an interaction are kept, per requirement (queue, media, skills at their
  minimum, language, routing step), ordered by the queue's selection rule: in a queue while
  they come in order (agents freed one after the other), in a heap when they do not;
- waiting interactions are kept, per requirement, in a heap ordered by rank (entry time moved a
  minute earlier per priority point), so a freed agent looks only at the heads of the groups
  they qualify for;
- deadlines (offer timeouts, bullseye rings, preferred-agent waits, after-call work, reply
  windows, customer inactivity) are one heap of timers that `tick` pops.

Both are lazy: an entry carries the version of its agent or interaction and is dropped when
found stale; an agent's new entries are pushed once before the next decision, however often
they changed since. The ACD answers with `RoutingNotice`s; the engine logs each as an event.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Container, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from flowlang.acd.model import (
    AGENT_STATES,
    AgentProfile,
    AgentRecord,
    Interaction,
    QueueSettings,
    Requirement,
    Ring,
    Selection,
    requirement_at_ring,
)
from flowlang.acd.targets import AGENT, attribute_equals, matcher, matches
from flowlang.batch import collector_paused
from flowlang.runtime.ports import (
    AcdAgent,
    AcdError,
    AcdInteraction,
    QueueStatus,
    RoutingNotice,
    RoutingRequest,
)

if TYPE_CHECKING:
    from flowlang.config.models import Deployment, Queue

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STATUS_WINDOW = timedelta(minutes=30)
"""How far back `queue_status` looks for the service level."""


Entry = tuple[float, float, str, int]  # AgentRecord.heap_entry()
_UNSET: Any = object()
_new = object.__new__
_NO_ONE: frozenset[str] = frozenset()  # no agent declined a first routing


@dataclass(eq=False, slots=True)
class _Pool:
    """Agents who meet one requirement, and those who can take it now: entries made in order
    (each no smaller than the one before: agents freed one after the other, longest idle
    first) queue in `fifo`, pushed and popped at no cost that grows with the pool; the others
    wait in `heap`. The best agent is the smaller of the two heads. Hashed by identity: an
    agent's record lists the pools they are in."""

    media: str
    selection: Selection
    qualified: set[str] = field(default_factory=set)
    heap: list[Entry] = field(default_factory=list)
    fifo: deque[Entry] = field(default_factory=deque)
    kind: tuple[str, Selection] = field(init=False)  # (media, selection): its agents' entries
    filling: bool = False  # being filled by `SkillsAcd.prepare`

    def __post_init__(self) -> None:
        self.kind = (self.media, self.selection)

    def add(self, entry: Entry) -> None:
        if not self.fifo or entry >= self.fifo[-1]:
            self.fifo.append(entry)
        else:
            heapq.heappush(self.heap, entry)

    def size(self) -> int:
        return len(self.heap) + len(self.fifo)


@dataclass
class _Group:
    """Interactions waiting with one requirement, best rank first."""

    members: set[str] = field(default_factory=set)
    heap: list[tuple[float, int, int, str]] = field(default_factory=list)


ANSWERS_KEPT = 20
"""How many of a queue's last answers its estimated wait is paced on (`_pace`)."""
WAITING = ("preferred", "waiting", "direct", "offered")


class SkillsAcd:
    """A skills-based ACD with the engine's `Acd` protocol; see docs/acd.md."""

    def __init__(
        self, queues: Iterable[QueueSettings] = (), agents: Iterable[AgentProfile] = ()
    ) -> None:
        self.queues: dict[str, QueueSettings] = {q.name: q for q in queues}
        self.agents: dict[str, AgentRecord] = {}
        self.interactions: dict[str, Interaction] = {}
        self._members: dict[str, set[str]] = {}
        # skill -> level (1 or more) -> the agents who have it at that level; language -> the
        # agents who speak it: a new requirement's agents are found by set operations
        self._skilled: dict[str, dict[int, set[str]]] = {}
        # (skill, minimum) -> the agents who have it at that level or more, kept once asked for
        self._at_least: dict[tuple[str, int], set[str]] = {}
        self._speakers: dict[str, set[str]] = {}
        # a routing step's condition -> the agents who meet it, gathered once per condition
        self._step_members: dict[str, set[str]] = {}
        # attribute -> text -> the agents whose `agent.<attribute>` is that text, kept once
        # asked for (a condition `agent.<attribute> == "<text>"` is found here)
        self._by_attribute: dict[str, dict[str, set[str]]] = {}
        self._pools: dict[Requirement, _Pool] = {}
        self._prepared: dict[Requirement, None] = {}  # what `prepare` was asked to build
        # agents changed since the last decision, whose new pool entries are not pushed yet
        self._changed: dict[str, AgentRecord] = {}
        # (media, selection) -> the current entry of each agent who can take that media now,
        # kept as agents change: a new pool takes its entries from here, reading no agent
        self._ready: dict[tuple[str, Selection], dict[str, Entry]] = {}
        self._groups: dict[Requirement, _Group] = {}
        self._open_groups: dict[tuple[str, str], set[Requirement]] = {}
        self._timers: list[tuple[datetime, int, str, str, int]] = []
        self._compact_timers_at = 64
        # the last answers of each queue, oldest first: the estimated wait's pace
        self._answers: dict[str, deque[datetime]] = {}
        self._seq = itertools.count()
        # queue -> (when an interaction left it, seconds waited if an agent answered, else None)
        self._left: dict[str, deque[tuple[datetime, float | None]]] = {}
        for queue in self.queues.values():
            self._members.setdefault(queue.name, set()).update(queue.members)
        for profile in agents:
            self.add_agent(profile)

    @classmethod
    def from_deployment(cls, deployment: Deployment | None) -> SkillsAcd:
        """The ACD for a deployment file's queues and agents."""
        if deployment is None:
            return cls()
        queues = [
            queue_settings(name, q, deployment.wrap_up_codes)
            for name, q in deployment.queues.items()
        ]
        member_of: dict[str, set[str]] = {}
        for name, queue in deployment.queues.items():
            for member in queue.members:
                member_of.setdefault(member, set()).add(name)
        agents = [
            AgentProfile(
                agent_id,
                frozenset(member_of.get(agent_id, set()) | set(agent.queues)),
                dict(agent.skills),
                frozenset(agent.languages),
                {str(media): int(n) for media, n in dict(agent.capacity).items()},
                agent.auto_answer,
                agent.state,
                {"name": agent.name, **agent.attributes},
            )
            for agent_id, agent in deployment.agents.items()
        ]
        acd = cls(queues, agents)
        # what a route to a queue without skills, language or step asks: known at load
        acd.prepare(
            Requirement(name, str(media), (), None)
            for name, queue in deployment.queues.items()
            for media in queue.media
        )
        return acd

    # ------------------------------------------------------------------ agents
    def add_agent(self, profile: AgentProfile, now: datetime | None = None) -> list[RoutingNotice]:
        """Add (or replace) an agent; they join the pools of the requirements they meet and,
        when available and `now` is given, take waiting work at once."""
        member_of = {queue for queue, members in self._members.items() if profile.id in members}
        if not member_of <= profile.queues:
            profile = replace(profile, queues=profile.queues | member_of)
        old = self.agents.get(profile.id)
        record = AgentRecord(profile, profile.state, (now or EPOCH).timestamp())
        if old is not None:
            record.holding, record.loads = old.holding, old.loads
            record.direct, record.preferred = old.direct, old.preferred
            record.version = old.version + 1
            for pool in old.pools:
                pool.qualified.discard(profile.id)
        self.agents[profile.id] = record
        self._index(profile, old.profile if old is not None else None)
        for queue in profile.queues:
            self._members.setdefault(queue, set()).add(profile.id)
        for requirement, pool in self._pools.items():
            if requirement.met_by(profile):
                pool.qualified.add(profile.id)
                record.pools.append(pool)
        self._agent_changed(record)
        notices: list[RoutingNotice] = []
        if now is not None:
            self._serve(record, now, notices)
        return notices

    def _index(self, profile: AgentProfile, old: AgentProfile | None) -> None:
        """The agent in the indexes new requirements' pools are found from (`_qualified`),
        in place of their `old` profile."""
        if old is not None:
            for skill, level in old.skills.items():
                self._skilled.get(skill, {}).get(level, set()).discard(profile.id)
            for language in old.languages:
                self._speakers.get(language, set()).discard(profile.id)
        for skill, level in profile.skills.items():
            if level >= 1:
                self._skilled.setdefault(skill, {}).setdefault(level, set()).add(profile.id)
        for language in profile.languages:
            self._speakers.setdefault(language, set()).add(profile.id)
        for (skill, minimum), skilled in self._at_least.items():
            if profile.skills.get(skill, 0) >= max(minimum, 1):
                skilled.add(profile.id)
            else:
                skilled.discard(profile.id)
        for attribute, index in self._by_attribute.items():
            was = _text_of(old, attribute) if old is not None else None
            if was is not None:
                index[was].discard(profile.id)
            text = _text_of(profile, attribute)
            if text is not None:
                index.setdefault(text, set()).add(profile.id)
        for condition, members in self._step_members.items():
            if matches(condition, profile):
                members.add(profile.id)
            else:
                members.discard(profile.id)

    def set_agent_state(self, agent: str, state: str, now: datetime) -> list[RoutingNotice]:
        """available / away / offline. Going available takes waiting work at once; leaving
        gives back offers not yet accepted (what the agent holds stays theirs)."""
        if state not in AGENT_STATES or state == "not_responding":
            raise AcdError(f"an agent state is available, away or offline, not {state!r}")
        record = self.agents.get(agent)
        if record is None:
            raise AcdError(f"unknown agent {agent!r}")
        notices: list[RoutingNotice] = []
        if record.state == state:
            return notices
        record.state = state  # type: ignore[assignment]
        if state == "available":
            if not record.holding:
                record.idle_since = now.timestamp()
            self._agent_changed(record)
            self._serve(record, now, notices)
        else:
            self._agent_changed(record)
            for interaction_id in [
                i for i in record.holding if self.interactions[i].phase == "offered"
            ]:
                interaction = self.interactions[interaction_id]
                self._let_go(interaction, record)
                notices.append(self._notice("requeued", interaction, now, reason=f"agent {state}"))
                self._place(interaction, now, notices)
        return notices

    # ------------------------------------------------------------------ the Acd protocol
    def enqueue(self, request: RoutingRequest, now: datetime) -> list[RoutingNotice]:
        """Route an interaction to a queue. One already waiting in that queue (the flow routes
        it there again) keeps its place in line, its wait and its rings; what it asks for is
        the new request's."""
        queue = self._queue(request.queue)
        previous = self.interactions.get(request.conversation_id)
        again = (
            previous is not None
            and previous.queue == request.queue
            and previous.phase in ("preferred", "waiting", "offered")
        )
        if again and previous is not None and previous.phase == "offered":
            return []  # an agent has it on offer: that offer stays open
        # the best agent for a plain first routing, found once: taken at once, or offered
        # (or none: it waits) by `_place` below without looking again
        best: AgentRecord | None = _UNSET
        if previous is None and _plain(request, queue):
            best = self._best_agent(self.requirement(request), _NO_ONE)
            if best is not None and best.profile.auto_answer:
                return self._taken_at_once(request, best, now)
        interaction = _interaction_for(request, now)
        if previous is not None:  # (most requests are a conversation's first routing)
            notices = self._end_wrap_up_on_return(request.conversation_id, now)
            self._forget(request.conversation_id, now)
        else:
            notices = []
        self.interactions[interaction.id] = interaction
        if again and previous is not None:
            _keep_place(interaction, previous)
        else:
            self._start_episode(interaction, now)
        first = self._requirement(interaction)
        if request.preferred_agents or request.last_agent:  # (most requests name neither)
            scores = {agent: score or 0 for agent, score in request.preferred_agents}
            ordered = sorted(scores, key=lambda a: -scores[a])
            if request.last_agent:
                ordered = [request.last_agent] + [a for a in ordered if a != request.last_agent]
            interaction.candidates = [
                a for a in ordered if a in self.agents and first.met_by(self.agents[a].profile)
            ]
            ready = [
                self.agents[a]
                for a in interaction.candidates
                if self.agents[a].ready_for(request.media)
            ]
            if ready:
                self._offer(interaction, ready[0], now, notices, preferred=True)
                return notices
            reachable = [a for a in interaction.candidates if self.agents[a].state != "offline"]
            if reachable and queue.preferred_agent_wait > timedelta(0) and not again:
                interaction.phase = "preferred"
                for agent in reachable:
                    self.agents[agent].preferred.add(interaction.id)
                self._timer(now + queue.preferred_agent_wait, "preferred_end", interaction)
                notices.append(self._notice("waiting", interaction, now, preferred=reachable))
                return notices
        self._place(interaction, now, notices, announce=True, requirement=first, best=best)
        return notices

    def _taken_at_once(
        self, request: RoutingRequest, record: AgentRecord, now: datetime
    ) -> list[RoutingNotice]:
        """A first routing (`_plain`) that `record`, the best agent free for it, answers at
        once: what `_start_episode`, `_place` and `_offer` do for it, without the steps none
        of them takes here (no ring, window or routing step to time, no waiting group, no
        offer). A property test checks that it decides as they do."""
        interaction = _interaction_for(request, now)
        self.interactions[interaction.id] = interaction
        interaction.episode = next(self._seq)
        interaction.version = next(self._seq)
        interaction.agent = record.id
        record.hold(interaction.id, interaction.media)
        record.direct.discard(interaction.id)
        self._agent_changed(record)
        return self._accepted(interaction, now, auto_answer=True, preferred=False)

    def restore(
        self,
        request: RoutingRequest,
        entered_at: datetime,
        agent: str | None,
        now: datetime,
    ) -> list[RoutingNotice]:
        """Take an interaction back after a restart. Held by `agent` (who is still on the
        deployment): it is theirs again and uses their capacity. Otherwise it waits from
        `entered_at`, keeping its place in line; its rings and window deadlines run from then
        (`tick(now)` acts on those already passed) and an agent who can take it gets it now."""
        interaction = _interaction_for(request, entered_at)
        self._forget(interaction.id, now)
        self.interactions[interaction.id] = interaction
        self._start_episode(interaction, entered_at)
        record = self.agents.get(agent or "")
        if record is not None:
            interaction.phase, interaction.agent = "active", record.id
            interaction.last_customer_activity = now
            record.hold(interaction.id, interaction.media)
            self._agent_changed(record)
            return []
        notices: list[RoutingNotice] = []
        self._place(interaction, now, notices)
        return notices

    def reset(self) -> None:
        """Back to how it started: the same queues and agents (those added since included),
        no interaction, each agent in the deployment's starting state, no queue figures."""
        profiles = [record.profile for record in self.agents.values()]
        fresh = SkillsAcd(self.queues.values(), profiles)
        fresh.prepare(self._prepared)  # the pools built at load, built again
        self.__dict__.update(vars(fresh))

    def request_agent(
        self, conversation_id: str, agent: str, media: str, wait_seconds: int | None, now: datetime
    ) -> list[RoutingNotice]:
        record = self.agents.get(agent)
        ended = self._end_wrap_up_on_return(conversation_id, now)
        self._forget(conversation_id, now)
        interaction = Interaction(conversation_id, None, media, {}, None, 0, now)
        interaction.candidates = [agent]
        if (
            record is None
            or record.state == "offline"
            or (not record.ready_for(media) and not wait_seconds)
        ):
            return [*ended, RoutingNotice("agent_unavailable", conversation_id, agent, None, now)]
        self.interactions[conversation_id] = interaction
        notices = ended
        if record.ready_for(media):
            self._offer(interaction, record, now, notices)
        else:
            interaction.phase = "direct"
            record.direct.add(conversation_id)
            notices.append(self._notice("waiting", interaction, now, for_agent=agent))
        return notices

    def accept(self, conversation_id: str, agent: str, now: datetime) -> list[RoutingNotice]:
        """The agent accepted the offer; nothing when the offer is no longer theirs (its
        `offer_timeout` has passed, even if no `tick` has acted on it yet)."""
        interaction = self._open_offer(conversation_id, agent, now)
        return self._accepted(interaction, now) if interaction is not None else []

    def decline(self, conversation_id: str, agent: str, now: datetime) -> list[RoutingNotice]:
        """The agent declined: the interaction goes to someone else, never back to them."""
        interaction = self._open_offer(conversation_id, agent, now)
        record = self.agents.get(agent)
        if interaction is None or record is None:
            return []
        interaction.declined.add(agent)
        self._let_go(interaction, record)
        notices = [RoutingNotice("declined", conversation_id, agent, interaction.queue, now)]
        self._requeue_or_give_up(interaction, agent, now, notices)
        self._serve(record, now, notices)
        return notices

    def withdraw(self, conversation_id: str, now: datetime) -> list[RoutingNotice]:
        """The customer left (deleted post, closed chat) or the flow stopped waiting."""
        interaction = self.interactions.get(conversation_id)
        if interaction is None:
            return []
        phase = interaction.phase
        if phase in ("active", "wrap_up"):
            left = self._notice("withdrawn", interaction, now, phase=phase)
            return [left, *self._finish_work(interaction, now, reason="customer left")]
        notices = [RoutingNotice("withdrawn", conversation_id, interaction.agent, None, now)]
        notices[0].data["phase"] = phase
        self._left_queue(interaction, now, None)
        self._drop(interaction, now, notices)
        return notices

    def complete(
        self, conversation_id: str, agent: str, wrap_up: str | None, now: datetime
    ) -> list[RoutingNotice]:
        interaction = self.interactions.get(conversation_id)
        if interaction is None or interaction.agent != agent:
            return []
        if interaction.phase == "wrap_up":
            return self.wrap_up(conversation_id, agent, wrap_up, now)
        if interaction.phase != "active":
            return []
        refused = self._refused_code(interaction, wrap_up, now)
        if refused is not None:
            return [refused]
        interaction.wrap_up = wrap_up
        return self._finish_work(interaction, now, reason="completed")

    def wrap_up(
        self, conversation_id: str, agent: str, wrap_up: str | None, now: datetime
    ) -> list[RoutingNotice]:
        """A wrap-up code given during after-call work: it ends the after-call work. A code the
        queue does not declare, or none where one is required and missing, is refused alone
        (`wrap_up_rejected`) and changes nothing."""
        interaction = self.interactions.get(conversation_id)
        if interaction is None or interaction.agent != agent or interaction.phase != "wrap_up":
            return []
        refused = self._refused_code(interaction, wrap_up or interaction.wrap_up, now)
        if refused is not None:
            return [refused]
        interaction.wrap_up = wrap_up or interaction.wrap_up
        notices = [self._notice("wrap_up_ended", interaction, now, wrap_up=interaction.wrap_up)]
        self._release(interaction, now, notices)
        return notices

    def refused_code(
        self, conversation_id: str, queue: str | None, agent: str, code: str | None, now: datetime
    ) -> RoutingNotice | None:
        """Judge a wrap-up code for after-call work this ACD does not hold (it was lost in a
        restart; the store still knows it is `agent`'s): `wrap_up_rejected` as `wrap_up` gives."""
        interaction = Interaction(conversation_id, queue, "", {}, None, 0, now, agent=agent)
        return self._refused_code(interaction, code, now)

    def transfer(
        self, conversation_id: str, queue: str | None, agent: str | None, now: datetime
    ) -> list[RoutingNotice]:
        interaction = self.interactions.get(conversation_id)
        if interaction is None:
            interaction = Interaction(conversation_id, queue, "message", {}, None, 0, now)
            self.interactions[conversation_id] = interaction
        notices: list[RoutingNotice] = []
        previous = self.agents.get(interaction.agent or "")
        self._unplace(interaction)
        if previous is not None:
            self._let_go(interaction, previous)
        interaction.declined = {previous.id} if previous is not None else set()
        if agent is None and queue and queue != interaction.queue:
            # The skills and agent steps the flow asked for belonged to the first queue; the
            # language stays.
            interaction.queue, interaction.skills, interaction.steps = queue, {}, ()
        self._start_episode(interaction, now)
        target = self.agents.get(agent or "")
        if agent is not None:
            if target is None or target.state == "offline":
                notices.append(
                    RoutingNotice("agent_unavailable", conversation_id, agent, None, now)
                )
                if interaction.queue is None:
                    self._drop(interaction, now, notices)
                else:
                    self._place(interaction, now, notices, announce=True)
            elif target.ready_for(interaction.media):
                self._offer(interaction, target, now, notices)
            else:
                interaction.phase = "direct"
                interaction.candidates = [target.id]
                target.direct.add(conversation_id)
                notices.append(self._notice("waiting", interaction, now, for_agent=agent))
        else:
            self._place(interaction, now, notices, announce=True)
        if previous is not None:
            self._serve(previous, now, notices)
        return notices

    def customer_activity(
        self, conversation_id: str, now: datetime, window_closes_at: datetime | None = None
    ) -> None:
        """The customer wrote: their inactivity clock starts again, and the reply window now
        closes at `window_closes_at` (None: as before): the interaction expires, and its
        priority rises, by the window their latest message opened, not the one it was routed
        with. A priority raised already stays raised."""
        interaction = self.interactions.get(conversation_id)
        if interaction is None:
            return
        interaction.last_customer_activity = now
        if window_closes_at is not None and window_closes_at != interaction.window_closes_at:
            interaction.window_closes_at = window_closes_at
            self._window_timers(interaction, now)

    def tick(self, now: datetime) -> list[RoutingNotice]:
        """Act on every deadline that has passed, in time order."""
        notices: list[RoutingNotice] = []
        while self._timers and self._timers[0][0] <= now:
            due, _seq, kind, subject, version = heapq.heappop(self._timers)
            interaction = self.interactions.get(subject)
            if interaction is None or interaction.episode != version:
                continue
            self._fire(kind, interaction, due, notices)
        return notices

    def next_deadline(self) -> datetime | None:
        """When `tick` next has something to do (a simulation jumps there)."""
        while self._timers:
            due, _seq, _kind, subject, version = self._timers[0]
            interaction = self.interactions.get(subject)
            if interaction is not None and interaction.episode == version:
                return due
            heapq.heappop(self._timers)
        return None

    # ------------------------------------------------------------------ views
    def queue_status(
        self, queue: str, now: datetime, conversation_id: str | None = None
    ) -> QueueStatus:
        """The queue at `now` (docs/acd.md, "Queue figures"): waiting, agents on it and free,
        the service level of the last `STATUS_WINDOW`, and the estimated wait of a place in
        line: `conversation_id`'s place when it waits there, else a new interaction's."""
        waiting = self.waiting(queue)
        on_queue = [
            record
            for agent in self._members.get(queue, ())
            if (record := self.agents.get(agent)) is not None and record.state != "offline"
        ]
        free = sum(any(r.ready_for(m) for m in r.profile.capacity) for r in on_queue)
        since = now - STATUS_WINDOW
        recent = [waited for at, waited in self._left.get(queue, ()) if at >= since]
        answered = [waited for waited in recent if waited is not None]
        target = self._queue(queue).answer_within.total_seconds()
        level = 100 * sum(w <= target for w in answered) / len(recent) if recent else None
        asked = self.interactions.get(conversation_id or "")
        position: int | None = None
        if asked is not None and asked.queue == queue and asked.phase in WAITING:
            mine = (asked.rank(), asked.episode)  # equal ranks: the earlier routing first
            position = 1 + sum(1 for other in waiting if (other.rank(), other.episode) < mine)
        if position is None and not waiting and free:
            estimate: timedelta | None = timedelta(0)
        else:
            pace = self._pace(queue, waiting, now)
            place = position if position is not None else len(waiting) + 1
            estimate = None if pace is None else pace * place
        return QueueStatus(len(waiting), len(on_queue), free, estimate, level, position)

    def _pace(self, queue: str, waiting: list[Interaction], now: datetime) -> timedelta | None:
        """How fast the line moves: the mean time between the queue's last `ANSWERS_KEPT`
        answers, and while someone waits at least the time since the later of the last answer
        and the longest-waiting interaction's entry (the line has moved no faster); None with
        fewer than two answers and no such time."""
        answers = self._answers.get(queue) or deque()
        pace = (answers[-1] - answers[0]) / (len(answers) - 1) if len(answers) >= 2 else None
        if waiting:
            since = max(waiting[0].entered_at, answers[-1]) if answers else waiting[0].entered_at
            stalled = now - since
            if stalled > timedelta(0) and (pace is None or stalled > pace):
                pace = stalled
        return pace

    def _left_queue(self, interaction: Interaction, now: datetime, waited: float | None) -> None:
        if interaction.queue is None:
            return
        left = self._left.get(interaction.queue)
        if left is None:
            left = self._left[interaction.queue] = deque(maxlen=1000)
        left.append((now, waited))

    def waiting(self, queue: str | None = None) -> list[Interaction]:
        """Interactions not yet with an agent, longest waiting first."""
        found = [
            i
            for i in self.interactions.values()
            if i.phase in ("preferred", "waiting", "direct", "offered")
            and (queue is None or i.queue == queue)
        ]
        return sorted(found, key=lambda i: i.entered_at)

    def work_of(self, agent: str, now: datetime) -> list[Interaction]:
        """What `agent` has at `now`: offers still open to them (not timed out, even before a
        `tick`), interactions they are in, and their after-call work."""
        record = self.agents.get(agent)
        if record is None:
            return []
        found = []
        for conversation_id in record.holding:
            interaction = self.interactions.get(conversation_id)
            if interaction is None or interaction.agent != agent:
                continue
            if interaction.phase == "offered":
                if self._open_offer(conversation_id, agent, now) is not None:
                    found.append(interaction)
            elif interaction.phase in ("active", "wrap_up"):
                found.append(interaction)
        return found

    # ------------------------------------------------------------------ what a host shows
    def agent_view(self, agent: str) -> AcdAgent | None:
        record = self.agents.get(agent)
        return record.view() if record is not None else None

    def agent_views(self) -> list[AcdAgent]:
        return [self.agents[agent].view() for agent in sorted(self.agents)]

    def interaction_view(self, conversation_id: str) -> AcdInteraction | None:
        interaction = self.interactions.get(conversation_id)
        return interaction.view() if interaction is not None else None

    def work_views(self, agent: str, now: datetime) -> list[AcdInteraction]:
        return [interaction.view() for interaction in self.work_of(agent, now)]

    def waiting_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(self.queues, 0)
        for interaction in self.interactions.values():
            if interaction.phase in WAITING:
                name = interaction.queue or ""
                counts[name] = counts.get(name, 0) + 1
        return counts

    # ------------------------------------------------------------------ deadlines
    def _fire(
        self, kind: str, interaction: Interaction, now: datetime, notices: list[RoutingNotice]
    ) -> None:
        queue = self._queue(interaction.queue)
        if kind.startswith(("ring:", "step:")):
            self._widen(interaction, kind, now, notices)
        elif kind == "preferred_end" and interaction.phase == "preferred":
            self._unplace(interaction)
            self._place(interaction, now, notices)
        elif kind == f"offer_timeout:{interaction.offers}" and interaction.phase == "offered":
            record = self.agents[interaction.agent or ""]
            self._let_go(interaction, record)
            record.state = "not_responding"
            self._agent_changed(record)
            notices.append(RoutingNotice("not_responding", interaction.id, record.id, None, now))
            self._requeue_or_give_up(interaction, record.id, now, notices)
        elif kind in ("urgent", "expire") and not _window_deadline(kind, interaction, queue, now):
            return  # the customer wrote since: the window closes later
        elif kind == "urgent" and interaction.phase in ("waiting", "preferred"):
            was_waiting = interaction.phase == "waiting"
            if was_waiting:
                self._unplace(interaction)
            interaction.boost = queue.urgent_priority
            notices.append(
                self._notice(
                    "priority_raised",
                    interaction,
                    now,
                    priority=interaction.priority + interaction.boost,
                    reason="reply window closing",
                )
            )
            if was_waiting:
                self._place(interaction, now, notices)
        elif kind == "expire" and interaction.phase not in ("active", "wrap_up"):
            notice = self._notice("expired", interaction, now, reason="reply window closed")
            notices.append(notice)
            self._drop(interaction, now, notices)
        elif kind == "acw_end" and interaction.phase == "wrap_up":
            if queue.wrap_up_required and interaction.wrap_up is None:
                extra: dict[str, Any] = {"reason": "wrap-up timed out", "timed_out": True}
            else:
                extra = {"reason": "after-call work ended"}
            notices.append(
                self._notice(
                    "wrap_up_ended", interaction, now, wrap_up=interaction.wrap_up, **extra
                )
            )
            self._release(interaction, now, notices)
        elif kind == "inactivity" and interaction.phase == "active":
            last = interaction.last_customer_activity or interaction.entered_at
            after = queue.inactivity_after or timedelta(0)
            if now < last + after:
                self._timer(last + after, "inactivity", interaction)
            elif queue.inactivity_action == "reroute":
                record = self.agents[interaction.agent or ""]
                self._let_go(interaction, record)
                interaction.declined.add(record.id)
                notices.append(self._notice("requeued", interaction, now, reason="inactive"))
                self._place(interaction, now, notices)
                self._serve(record, now, notices)
            else:
                notices.append(self._notice("disconnected", interaction, now, reason="inactive"))
                notices += self._finish_work(interaction, now, reason="inactive")

    def _widen(
        self, interaction: Interaction, kind: str, now: datetime, notices: list[RoutingNotice]
    ) -> None:
        """A bullseye ring (`ring:N`) or the end of a routing step (`step:N`) is reached: the
        interaction asks for less, and whoever now qualifies may take it. The two are
        independent: the requirement is the ring's skills and the current step's agents."""
        what, number = kind.split(":")
        index = int(number)
        if what == "ring":
            if interaction.phase == "waiting" and index > interaction.ring:
                self._unplace(interaction)
                interaction.ring = index
                notices.append(self._notice("ring_widened", interaction, now, ring=index))
                self._place(interaction, now, notices)
            elif interaction.phase in ("preferred", "offered"):
                # kept for when it waits again (a decline, an offer timing out)
                interaction.ring = max(interaction.ring, index)
        elif interaction.phase == "waiting" and index > interaction.step:
            self._unplace(interaction)
            interaction.step = index
            notices.append(self._notice("target_widened", interaction, now, step=index))
            self._place(interaction, now, notices)
        elif interaction.phase in ("preferred", "offered"):
            interaction.step = max(interaction.step, index)

    def _end_wrap_up_on_return(self, conversation_id: str, now: datetime) -> list[RoutingNotice]:
        """The customer wrote again during the agent's after-call work on their conversation:
        that work ends, as a wrap-up timed out where a required code is still missing."""
        interaction = self.interactions.get(conversation_id)
        if interaction is None or interaction.phase != "wrap_up":
            return []
        extra: dict[str, Any] = {"reason": "customer wrote again"}
        if self._queue(interaction.queue).wrap_up_required and interaction.wrap_up is None:
            extra["timed_out"] = True
        return [
            self._notice("wrap_up_ended", interaction, now, wrap_up=interaction.wrap_up, **extra)
        ]

    def _timer(self, at: datetime, kind: str, interaction: Interaction) -> None:
        heapq.heappush(
            self._timers, (at, next(self._seq), kind, interaction.id, interaction.episode)
        )
        if len(self._timers) > self._compact_timers_at:
            self._compact_timers()

    def _compact_timers(self) -> None:
        """Drop the deadlines of interactions that are gone or routed again since, so a long
        run keeps memory for the interactions it has, not for every one it finished."""
        live = [
            timer
            for timer in self._timers
            if (found := self.interactions.get(timer[3])) is not None and found.episode == timer[4]
        ]
        heapq.heapify(live)
        self._timers = live
        self._compact_timers_at = 2 * len(live) + 64  # amortised: the heap doubles first

    def _start_episode(self, interaction: Interaction, now: datetime) -> None:
        """A new routing of the interaction: its wait, rings and window deadlines start."""
        queue = self._queue(interaction.queue)
        interaction.episode = next(self._seq)
        interaction.entered_at = now
        interaction.ring = 0
        if interaction.window_closes_at is not None:
            if interaction.window_closes_at - queue.urgent_within <= now:
                interaction.boost = queue.urgent_priority
            self._window_timers(interaction, now)
        for index, ring in enumerate(queue.rings, start=1):
            self._timer(now + ring.after, f"ring:{index}", interaction)
        interaction.step = 0
        at = now
        for index, step in enumerate(interaction.steps, start=1):
            if step.seconds is None:
                break
            at += timedelta(seconds=step.seconds)
            self._timer(at, f"step:{index}", interaction)

    def _window_timers(self, interaction: Interaction, now: datetime) -> None:
        """The deadlines of the interaction's reply window: it expires when the window closes,
        its priority rises `urgent_within` before (unless that has passed). A deadline of a
        window the customer has moved since is stale (`_window_deadline`)."""
        closes = interaction.window_closes_at
        if closes is None:
            return
        self._timer(closes, "expire", interaction)
        urgent_at = closes - self._queue(interaction.queue).urgent_within
        if urgent_at > now:
            self._timer(urgent_at, "urgent", interaction)

    # ------------------------------------------------------------------ placing and serving
    def _place(
        self,
        interaction: Interaction,
        now: datetime,
        notices: list[RoutingNotice],
        *,
        announce: bool = False,
        requirement: Requirement | None = None,
        best: AgentRecord | None = _UNSET,
    ) -> None:
        """Give the interaction to the best agent who can take it, or let it wait
        (`requirement`: the interaction's, when the caller has just made it; `best`: that
        requirement's best agent, or None, when the caller has just asked `_best_agent`
        and nothing has changed since)."""
        if requirement is None:
            requirement = self._requirement(interaction)
        record = self._best_agent(requirement, interaction.declined) if best is _UNSET else best
        if record is not None:
            self._offer(interaction, record, now, notices)
            return
        interaction.phase = "waiting"
        interaction.requirement = requirement
        interaction.version = next(self._seq)
        group = self._groups.setdefault(requirement, _Group())
        group.members.add(interaction.id)
        heapq.heappush(
            group.heap,
            (interaction.rank(), next(self._seq), interaction.version, interaction.id),
        )
        self._open_groups.setdefault((requirement.queue, requirement.media), set()).add(requirement)
        if announce:
            notices.append(self._notice("waiting", interaction, now))

    def _unplace(self, interaction: Interaction) -> None:
        """Take the interaction out of whatever it waits in."""
        if interaction.phase == "waiting" and interaction.requirement is not None:
            group = self._groups.get(interaction.requirement)
            if group is not None:
                group.members.discard(interaction.id)
                if not group.members:
                    key = (interaction.requirement.queue, interaction.requirement.media)
                    self._open_groups.get(key, set()).discard(interaction.requirement)
                    group.heap.clear()
        elif interaction.phase == "preferred":
            for agent in interaction.candidates:
                if agent in self.agents:
                    self.agents[agent].preferred.discard(interaction.id)
        elif interaction.phase == "direct":
            for agent in interaction.candidates:
                if agent in self.agents:
                    self.agents[agent].direct.discard(interaction.id)
        interaction.requirement = None

    def _best_agent(self, requirement: Requirement, exclude: Container[str]) -> AgentRecord | None:
        self._refresh()
        pool = self._pool(requirement)
        heap, fifo, qualified = pool.heap, pool.fifo, pool.qualified
        # An entry is current when it is the very one its agent was last given for this media
        # and selection (`_ready`, brought up to date by `_refresh`: an agent who changed since
        # has a newer one, one who cannot take the media now has none) and the agent is still
        # in the pool. Asked of every stale entry a decision meets: no agent record is read.
        current = self._ready_entries(pool.media, pool.selection)
        skipped_heap: list[Entry] = []
        skipped_fifo: list[Entry] = []
        found = None
        while True:
            while heap and not (current.get(heap[0][2]) is heap[0] and heap[0][2] in qualified):
                heapq.heappop(heap)
            while fifo and not (current.get(fifo[0][2]) is fifo[0] and fifo[0][2] in qualified):
                fifo.popleft()
            in_heap = bool(heap) and (not fifo or heap[0] < fifo[0])
            if not in_heap and not fifo:
                break
            entry = heap[0] if in_heap else fifo[0]
            if entry[2] not in exclude:
                found = self.agents[entry[2]]
                break
            if in_heap:
                skipped_heap.append(heapq.heappop(heap))
            else:
                skipped_fifo.append(fifo.popleft())
        for entry in skipped_heap:
            heapq.heappush(heap, entry)
        fifo.extendleft(reversed(skipped_fifo))
        return found

    def _serve(self, record: AgentRecord, now: datetime, notices: list[RoutingNotice]) -> None:
        """Give a freed agent the best waiting work they can take, while they can take more."""
        while record.state == "available":
            best: tuple[tuple[int, float], Interaction] | None = None
            for interaction_id in record.direct | record.preferred:
                interaction = self.interactions.get(interaction_id)
                if interaction is None or not record.ready_for(interaction.media):
                    continue
                if record.id in interaction.declined:
                    continue
                order = (0 if interaction.phase == "direct" else 1, interaction.rank())
                if best is None or order < best[0]:
                    best = (order, interaction)
            for queue in record.profile.queues:
                for media in record.profile.capacity:
                    if not record.ready_for(media):
                        continue
                    for requirement in list(self._open_groups.get((queue, media), ())):
                        if self._pools.get(requirement) not in record.pools:
                            continue
                        head = self._head(requirement, record.id)
                        if head is not None and (best is None or (1, head.rank()) < best[0]):
                            best = ((1, head.rank()), head)
            if best is None:
                return
            interaction = best[1]
            self._unplace(interaction)
            self._offer(interaction, record, now, notices)

    def _head(self, requirement: Requirement, agent: str) -> Interaction | None:
        """The best-ranked interaction of a group that `agent` has not declined."""
        group = self._groups[requirement]
        while group.heap:
            _rank, _seq, version, interaction_id = group.heap[0]
            interaction = self.interactions.get(interaction_id)
            if (
                interaction is None
                or interaction.version != version
                or interaction_id not in group.members
            ):
                heapq.heappop(group.heap)
                continue
            if agent not in interaction.declined:
                return interaction
            break
        # Rare: the head was declined by this agent; look further without disturbing the heap.
        candidates = [
            self.interactions[i]
            for i in group.members
            if agent not in self.interactions[i].declined
        ]
        return min(candidates, key=lambda i: i.rank(), default=None)

    def _offer(
        self,
        interaction: Interaction,
        record: AgentRecord,
        now: datetime,
        notices: list[RoutingNotice],
        *,
        preferred: bool = False,
    ) -> None:
        interaction.version = next(self._seq)
        interaction.agent = record.id
        record.hold(interaction.id, interaction.media)
        record.direct.discard(interaction.id)
        self._agent_changed(record)
        if record.profile.auto_answer:
            notices += self._accepted(interaction, now, auto_answer=True, preferred=preferred)
            return
        interaction.phase = "offered"
        extra: dict[str, Any] = {"preferred": True} if preferred else {}
        notices.append(self._notice("offered", interaction, now, **extra))
        interaction.offers += 1
        interaction.offer_ends_at = now + self._queue(interaction.queue).offer_timeout
        self._timer(interaction.offer_ends_at, f"offer_timeout:{interaction.offers}", interaction)

    def _open_offer(self, conversation_id: str, agent: str, now: datetime) -> Interaction | None:
        """The interaction offered to `agent`, if its offer has not timed out by `now` (even
        when no `tick` has acted on the timeout yet)."""
        interaction = self.interactions.get(conversation_id)
        if interaction is None or interaction.phase != "offered" or interaction.agent != agent:
            return None
        if interaction.offer_ends_at is not None and now >= interaction.offer_ends_at:
            return None
        return interaction

    def _accepted(
        self,
        interaction: Interaction,
        now: datetime,
        auto_answer: bool | None = None,
        preferred: bool = False,
    ) -> list[RoutingNotice]:
        """The agent has it (`auto_answer`: without an offer, the notice says whether it went
        to a preferred agent)."""
        interaction.phase = "active"
        interaction.version = next(self._seq)
        interaction.last_customer_activity = now
        queue = self._queue(interaction.queue)
        if queue.inactivity_after is not None:
            self._timer(now + queue.inactivity_after, "inactivity", interaction)
        waited = (now - interaction.entered_at).total_seconds()
        self._left_queue(interaction, now, waited)
        if interaction.queue is not None:
            answers = self._answers.get(interaction.queue)
            if answers is None:
                answers = self._answers[interaction.queue] = deque(maxlen=ANSWERS_KEPT)
            answers.append(now)
        data: dict[str, Any] = {"waited_seconds": waited}
        if auto_answer is not None:  # (the notice's data made once, not merged from keywords)
            data["auto_answer"], data["preferred"] = auto_answer, preferred
        return [
            RoutingNotice(
                "accepted", interaction.id, interaction.agent, interaction.queue, now, data
            )
        ]

    def _finish_work(
        self, interaction: Interaction, now: datetime, *, reason: str
    ) -> list[RoutingNotice]:
        """The conversation with the agent is over: after-call work, or free the agent."""
        notices: list[RoutingNotice] = []
        queue = self._queue(interaction.queue)
        needs_code = queue.wrap_up_required and interaction.wrap_up is None
        if interaction.phase == "active" and (needs_code or queue.after_call_work > timedelta(0)):
            interaction.phase = "wrap_up"
            interaction.version = next(self._seq)
            # A missing required code holds the agent until given, unless the queue lets it go.
            times_out = queue.after_call_work and (not needs_code or queue.wrap_up_may_time_out)
            until = now + queue.after_call_work if times_out else None
            if until is not None:
                self._timer(until, "acw_end", interaction)
            notices.append(
                self._notice(
                    "after_call_work",
                    interaction,
                    now,
                    until=until,
                    needs_wrap_up=needs_code,
                    reason=reason,
                )
            )
            return notices
        if interaction.phase == "wrap_up":
            return notices
        self._release(interaction, now, notices)
        return notices

    def _release(
        self, interaction: Interaction, now: datetime, notices: list[RoutingNotice]
    ) -> None:
        record = self.agents.get(interaction.agent or "")
        self._forget(interaction.id, now, changed=False)  # the agent changes once, just below
        if record is not None:
            if not record.holding:
                record.idle_since = now.timestamp()
            self._agent_changed(record)
            self._serve(record, now, notices)

    def _drop(self, interaction: Interaction, now: datetime, notices: list[RoutingNotice]) -> None:
        """Remove an interaction that never reached (or no longer needs) an agent."""
        record = self.agents.get(interaction.agent or "")
        self._forget(interaction.id, now)
        if record is not None:
            self._serve(record, now, notices)

    def _forget(self, interaction_id: str, now: datetime, *, changed: bool = True) -> None:
        """Drop the interaction; its agent no longer holds it (`changed`: and gets their new
        pool entries now; False: the caller changes the agent again at once, and an entry per
        pool made in between would only go stale)."""
        interaction = self.interactions.pop(interaction_id, None)
        if interaction is None:
            return
        self._unplace(interaction)
        interaction.version = next(self._seq)
        record = self.agents.get(interaction.agent or "")
        if record is not None and record.release(interaction_id) and changed:
            self._agent_changed(record)

    def _let_go(self, interaction: Interaction, record: AgentRecord) -> None:
        record.release(interaction.id)
        interaction.agent = None
        interaction.version = next(self._seq)
        self._agent_changed(record)

    def _requeue_or_give_up(
        self, interaction: Interaction, agent: str, now: datetime, notices: list[RoutingNotice]
    ) -> None:
        if interaction.queue is None:  # a route to one agent: the flow decides what next
            notices.append(RoutingNotice("agent_unavailable", interaction.id, agent, None, now))
            self._forget(interaction.id, now)
            return
        notices.append(self._notice("requeued", interaction, now))
        self._place(interaction, now, notices)

    def _agent_changed(self, record: AgentRecord) -> None:
        """The agent's state, load or idle time changed: their entries in the pools are stale,
        and they get new ones before the next decision (`_refresh`)."""
        record.version += 1
        self._changed[record.id] = record

    def _refresh(self) -> None:
        """A new entry, in each pool they can take work from now, for every agent changed since
        the last decision: an agent who changes twice in between (an offer, then the end of the
        work) is pushed once, as they are now. Before any pool or entry exists (the agents
        just added) there is nothing to push into."""
        if self._pools or self._ready:
            for record in self._changed.values():
                self._push_entries(record)
        self._changed.clear()

    def _push_entries(self, record: AgentRecord) -> None:
        # (media, selection) -> the agent's entry, None when they cannot take the media now
        made: dict[tuple[str, Selection], Entry | None] = {}
        kind: tuple[str, Selection] | None = None
        entry: Entry | None = None
        for pool in record.pools:  # `_Pool.add` and `_Pool.size` written out: the hot loop
            if pool.kind != kind:  # mostly one media and selection: the same entry
                kind = pool.kind
                entry = made.get(kind, _UNSET)
                if entry is _UNSET:
                    entry = made[kind] = self._entry(record, pool.media, pool.selection)
            if entry is None:
                continue
            fifo, heap = pool.fifo, pool.heap
            if not fifo or entry >= fifo[-1]:
                fifo.append(entry)
            else:
                heapq.heappush(heap, entry)
            if len(heap) + len(fifo) > 2 * len(pool.qualified) + 64:
                self._compact(pool)
        for kind, current in self._ready.items():
            entry = made.get(kind, _UNSET)
            if entry is _UNSET:
                entry = self._entry(record, *kind)
            if entry is None:
                current.pop(record.id, None)
            else:
                current[record.id] = entry

    @staticmethod
    def _entry(record: AgentRecord, media: str, selection: Selection) -> Entry | None:
        """The agent's entry in pools of `media` by `selection`; None: they cannot take it now.
        One tuple for all those pools and `_ready` (`_best_agent` tells current entries by
        identity)."""
        return record.heap_entry(selection) if record.ready_for(media) else None

    def _compact(self, pool: _Pool) -> None:
        """Drop the stale entries of a pool."""
        agents = self.agents

        def current(entry: Entry) -> bool:
            record = agents.get(entry[2])
            return record is not None and record.version == entry[3]

        pool.heap = [entry for entry in pool.heap if current(entry)]
        heapq.heapify(pool.heap)
        pool.fifo = deque(entry for entry in pool.fifo if current(entry))

    # ------------------------------------------------------------------ lookups
    def prepare(self, requirements: Iterable[Requirement]) -> None:
        """Build the pools of `requirements` now, before any decision needs them (eagerly: at
        load, so that decisions pay no build); they are kept current as agents come, change
        and go, like every pool. A pool already built stays as it is."""
        # paused: the pools are tens of thousands of objects that all live on
        with collector_paused():
            self._refresh()
            new: dict[tuple[str, Selection], list[_Pool]] = {}
            declared: dict[str, bool] = {}  # queue -> whether the deployment declares its members
            for requirement in dict.fromkeys(requirements):
                self._prepared[requirement] = None
                if requirement in self._pools:
                    continue
                selection = self._queue(requirement.queue).selection
                pool = self._pools[requirement] = _Pool(requirement.media, selection)
                pool.qualified = self._qualified(requirement)  # within the queue's members
                known = declared.get(requirement.queue)
                if known is None:
                    members = self._members.get(requirement.queue, set())
                    known = declared[requirement.queue] = members <= self.agents.keys()
                if not known:
                    pool.qualified = {a for a in pool.qualified if a in self.agents}
                new.setdefault((requirement.media, selection), []).append(pool)
            for (media, selection), pools in new.items():
                self._fill(pools, self._ready_entries(media, selection))

    def _fill(self, pools: list[_Pool], current: dict[str, Entry]) -> None:
        """Fill new pools of one media and selection together, in one pass over the ready
        agents' entries in order (`current`): no pool sorts its own. Each agent's list of
        pools is appended to as the new pools' agents are listed, and then tells which of
        their pools are new."""
        agents = self.agents
        pools_of = {agent_id: record.pools for agent_id, record in agents.items()}
        for pool in pools:
            pool.filling = True
            for agent_id in pool.qualified:
                pools_of[agent_id].append(pool)
        for entry in sorted(current.values()):
            for pool in pools_of[entry[2]]:
                if pool.filling:
                    pool.fifo.append(entry)  # in order: all in `fifo`
        for pool in pools:
            pool.filling = False

    def requirement(self, request: RoutingRequest) -> Requirement:
        """What an interaction routed by `request` needs when it enters its queue (innermost
        bullseye ring, first routing step): for `prepare`, by a host that knows its flows'
        routing targets. Later rings and steps build their pools when first needed (each pool
        an agent is in costs a push whenever the agent changes)."""
        steps, skills = request.agent_steps, request.skills
        return requirement_at_ring(
            request.queue,
            request.media,
            {skill: level or 1 for skill, level in skills.items()} if skills else {},
            request.language,
            None,
            steps[0].condition if steps else None,
        )

    def _pool(self, requirement: Requirement) -> _Pool:
        pool = self._pools.get(requirement)
        return pool if pool is not None else self._build(requirement)

    def _build(self, requirement: Requirement) -> _Pool:
        """A new requirement's pool, on its first need (read after `_refresh`)."""
        selection = self._queue(requirement.queue).selection
        pool = self._pools[requirement] = _Pool(requirement.media, selection)
        qualified = self._qualified(requirement)
        agents = self.agents
        if not qualified <= agents.keys():  # a queue's member the deployment does not declare
            qualified = {agent_id for agent_id in qualified if agent_id in agents}
        pool.qualified = qualified
        for record in map(agents.__getitem__, qualified):
            record.pools.append(pool)
        current = self._ready_entries(pool.media, selection)
        ready = [e for agent_id in qualified if (e := current.get(agent_id)) is not None]
        ready.sort()  # in order: all in `fifo`
        pool.fifo.extend(ready)
        return pool

    def _ready_entries(self, media: str, selection: Selection) -> dict[str, Entry]:
        """The current entry of each agent ready for `media` (read after `_refresh`), gathered
        once and then kept by `_push_entries`."""
        current = self._ready.get((media, selection))
        if current is None:
            current = self._ready[(media, selection)] = {
                agent_id: record.heap_entry(selection)
                for agent_id, record in self.agents.items()
                if record.ready_for(media)
            }
        return current

    def _qualified(self, requirement: Requirement) -> set[str]:
        """The agents who meet a requirement (`Requirement.met_by`), found by intersecting the
        indexes (queue members, each skill at its level or more, the language, the step's
        condition) smallest first, without reading an agent."""
        indexes = [self._members.get(requirement.queue, set())]
        for skill, minimum in requirement.skills:
            skilled = self._at_least.get((skill, minimum))
            if skilled is None:
                levels = self._skilled.get(skill, {})
                skilled = self._at_least[(skill, minimum)] = set().union(
                    *(agents for level, agents in levels.items() if level >= minimum)
                )
            indexes.append(skilled)
        if requirement.language:
            indexes.append(self._speakers.get(requirement.language, set()))
        if requirement.agents is not None:
            indexes.append(self._meeting(requirement.agents))
        indexes.sort(key=len)
        return indexes[0].intersection(*indexes[1:])

    def _meeting(self, condition: str) -> set[str]:
        """The agents who meet a routing step's condition: every agent tested once per
        condition (then kept as agents come and change), never per routing decision."""
        found = self._step_members.get(condition)
        if found is None:
            equal = attribute_equals(condition)
            if equal is not None:
                found = set(self._attribute_index(equal[0]).get(equal[1], ()))
            else:
                test = matcher(condition)
                found = {
                    agent_id for agent_id, record in self.agents.items() if test(record.profile)
                }
            self._step_members[condition] = found
        return found

    def _attribute_index(self, attribute: str) -> dict[str, set[str]]:
        """The agents by the text of their `agent.<attribute>` (one pass over the agents, then
        kept as agents come and change)."""
        index = self._by_attribute.get(attribute)
        if index is None:
            index = self._by_attribute[attribute] = {}
            for agent_id, record in self.agents.items():
                text = _text_of(record.profile, attribute)
                if text is not None:
                    index.setdefault(text, set()).add(agent_id)
        return index

    def _requirement(self, interaction: Interaction) -> Requirement:
        queue = self._queue(interaction.queue)
        ring: Ring | None = queue.rings[interaction.ring - 1] if interaction.ring else None
        return requirement_at_ring(
            interaction.queue or "",
            interaction.media,
            interaction.skills,
            interaction.language,
            ring,
            interaction.agents_wanted(),
        )

    def settings(self, queue: str | None) -> QueueSettings:
        """A queue's settings (defaults for a queue the deployment does not declare)."""
        return self._queue(queue)

    def _queue(self, name: str | None) -> QueueSettings:
        found = self.queues.get(name or "")
        if found is None:
            found = QueueSettings(name or "")
            if name:
                self.queues[name] = found
        return found

    def _refused_code(
        self, interaction: Interaction, code: str | None, now: datetime
    ) -> RoutingNotice | None:
        """A `wrap_up_rejected` notice when `code` cannot end the agent's work: it is not one
        of the queue's codes, or it is missing where the queue requires one."""
        queue = self._queue(interaction.queue)
        codes = ", ".join(sorted(queue.wrap_up_codes))
        if code is None and queue.wrap_up_required:
            reason = f"{queue.name} requires a wrap-up code" + (f": {codes}" if codes else "")
            problem = "wrap_up_required"
        elif code is not None and queue.wrap_up_codes and code not in queue.wrap_up_codes:
            reason = f"{code!r} is not a wrap-up code of {queue.name}: {codes}"
            problem = "wrap_up_invalid"
        else:
            return None
        return self._notice(
            "wrap_up_rejected", interaction, now, wrap_up=code, code=problem, reason=reason
        )

    def _notice(
        self, kind: str, interaction: Interaction, now: datetime, **data: Any
    ) -> RoutingNotice:
        return RoutingNotice(kind, interaction.id, interaction.agent, interaction.queue, now, data)


def _text_of(profile: AgentProfile, attribute: str) -> str | None:
    """The agent's `agent.<attribute>` when it is a text (what `==` on a text can meet)."""
    value = profile.scope[AGENT].get(attribute)
    return value if type(value) is str else None


def _plain(request: RoutingRequest, queue: QueueSettings) -> bool:
    """A routing with nothing timed from its start (no bullseye ring, reply window or routing
    step) and no preferred or last agent: one a free agent may take at once
    (`SkillsAcd._taken_at_once`)."""
    return not (
        queue.rings
        or request.window_closes_at is not None
        or request.agent_steps
        or request.preferred_agents
        or request.last_agent
    )


def _window_deadline(
    kind: str, interaction: Interaction, queue: QueueSettings, due: datetime
) -> bool:
    """Whether a window deadline (`expire`, `urgent`) due at `due` is one of the interaction's
    window as it is now, not of one a later customer message moved."""
    closes = interaction.window_closes_at
    if closes is None:
        return False
    return due == (closes if kind == "expire" else closes - queue.urgent_within)


def _keep_place(interaction: Interaction, previous: Interaction) -> None:
    """A re-entry into the same queue: the wait, rings, window deadlines, urgency and the
    agents who declined carry over (the episode's timers stay live)."""
    interaction.entered_at = previous.entered_at
    interaction.episode = previous.episode
    interaction.ring = previous.ring
    interaction.boost = previous.boost
    interaction.declined = set(previous.declined)
    interaction.offers = previous.offers
    interaction.step = previous.step


def _interaction_for(request: RoutingRequest, entered_at: datetime) -> Interaction:
    """`Interaction(...)` of the request, without the dataclass's `__init__` (twice the cost;
    a test compares the two): every routing makes one."""
    i = _new(Interaction)
    i.id, i.queue, i.media = request.conversation_id, request.queue, request.media
    skills = request.skills
    i.skills = {skill: level or 1 for skill, level in skills.items()} if skills else {}
    i.language, i.priority = request.language, request.priority
    i.entered_at, i.window_closes_at = entered_at, request.window_closes_at
    i.phase, i.ring, i.requirement, i.agent = "waiting", 0, None, None
    i.declined, i.candidates, i.boost = set(), [], 0.0
    i.version = i.episode = i.offers = 0
    i.offer_ends_at = i.last_customer_activity = i.wrap_up = None
    i.steps, i.step = request.agent_steps, 0
    return i


def queue_settings(name: str, queue: Queue, center_codes: Iterable[str] = ()) -> QueueSettings:
    """Settings from a deployment file's queue (`flowlang.config.models.Queue`); a queue that
    declares no wrap-up codes takes the center's (`center_codes`)."""
    rings = tuple(
        Ring(
            ring.after,
            ring.relax_proficiency,
            frozenset(ring.remove_skills) if isinstance(ring.remove_skills, list) else frozenset(),
            ring.remove_skills == "all",
        )
        for ring in queue.bullseye
    )
    return QueueSettings(
        name=name,
        members=frozenset(queue.members),
        selection=queue.selection,
        offer_timeout=queue.offer_timeout,
        wrap_up_codes=frozenset(queue.wrap_up_codes or center_codes),
        wrap_up_required=queue.wrap_up_required,
        after_call_work=queue.after_call_work,
        wrap_up_may_time_out=queue.wrap_up_may_time_out,
        preferred_agent_wait=queue.preferred_agent_wait,
        rings=rings,
        inactivity_after=queue.inactivity.after if queue.inactivity else None,
        inactivity_action=queue.inactivity.action if queue.inactivity else "disconnect",
        urgent_within=queue.window_urgency.within,
        urgent_priority=queue.window_urgency.add,
        answer_within=queue.service_level.answer_within,
    )
