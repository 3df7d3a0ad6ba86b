"""What the ACD knows: queue settings, agents, interactions, and what an interaction needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

from flowlang.acd import targets
from flowlang.acd.targets import matches
from flowlang.runtime.ports import AcdAgent, AcdInteraction, AgentStep

MEDIA = ("message", "social_dm", "social_public")
Selection = Literal["longest_idle", "least_occupied"]
AgentState = Literal["available", "away", "offline", "not_responding"]
AGENT_STATES: tuple[str, ...] = ("available", "away", "offline", "not_responding")
Phase = Literal["preferred", "waiting", "direct", "offered", "active", "wrap_up"]


@dataclass(frozen=True)
class Ring:
    """A bullseye ring: from `after` of waiting, minimums drop and skills fall away."""

    after: timedelta
    relax_proficiency: int = 0
    remove_skills: frozenset[str] = frozenset()
    remove_all_skills: bool = False


@dataclass(frozen=True)
class QueueSettings:
    """How one queue (workgroup) distributes: from the deployment file's `queues:`."""

    name: str
    members: frozenset[str] = frozenset()
    selection: Selection = "longest_idle"
    offer_timeout: timedelta = timedelta(minutes=2)
    wrap_up_codes: frozenset[str] = frozenset()
    wrap_up_required: bool = False
    after_call_work: timedelta = timedelta(0)
    wrap_up_may_time_out: bool = False
    preferred_agent_wait: timedelta = timedelta(0)
    rings: tuple[Ring, ...] = ()
    inactivity_after: timedelta | None = None
    inactivity_action: Literal["disconnect", "reroute"] = "disconnect"
    urgent_within: timedelta = timedelta(hours=1)
    urgent_priority: float = 60.0
    answer_within: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class AgentProfile:
    """An agent as the deployment file declares them."""

    id: str
    queues: frozenset[str] = frozenset()
    skills: dict[str, int] = field(default_factory=dict)
    languages: frozenset[str] = frozenset()
    capacity: dict[str, int] = field(default_factory=lambda: {"message": 1})
    auto_answer: bool = False
    state: AgentState = "available"
    attributes: dict[str, Any] = field(default_factory=dict)  # the deployment's (`agent.tier`)
    # What a routing step's condition reads (`agent.<attribute>`), made with the profile (a
    # changed agent is a new profile): never rebuilt for each condition tested.
    scope: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scope", {targets.AGENT: targets.agent_view(self)})


class Requirement(NamedTuple):
    """What an interaction needs from an agent at its current bullseye ring and routing step
    (`agents`: the step's condition, `flowlang.acd.targets`; None: any agent). A named tuple:
    made and hashed, as a pool's key, on every decision."""

    queue: str
    media: str
    skills: tuple[tuple[str, int], ...]
    language: str | None
    agents: str | None = None

    def met_by(self, agent: AgentProfile, *, step_checked: bool = False) -> bool:
        """Whether the agent meets it (`step_checked`: the step's condition is known to)."""
        if self.queue not in agent.queues:
            return False
        if self.language and self.language not in agent.languages:
            return False
        if not all(agent.skills.get(skill, 0) >= level for skill, level in self.skills):
            return False
        return step_checked or matches(self.agents, agent)


def requirement_at_ring(
    queue: str,
    media: str,
    skills: dict[str, int],
    language: str | None,
    ring: Ring | None,
    agents: str | None = None,
) -> Requirement:
    """The requirement after `ring` relaxed it (None: the innermost ring, nothing relaxed)."""
    if ring is None:  # most decisions: nothing to relax, nothing to copy
        return Requirement(
            queue, media, tuple(sorted(skills.items())) if skills else (), language, agents
        )
    wanted = dict(skills)
    if ring is not None:
        if ring.remove_all_skills:
            wanted = {}
        for skill in ring.remove_skills:
            wanted.pop(skill, None)
        wanted = {s: max(1, level - ring.relax_proficiency) for s, level in wanted.items()}
    return Requirement(queue, media, tuple(sorted(wanted.items())), language, agents)


@dataclass(slots=True)
class AgentRecord:
    """An agent at run time: state, what they hold, and the indexes they belong to."""

    profile: AgentProfile
    state: AgentState
    idle_since: float  # seconds since the epoch: when they last became free or available
    # interaction id -> media; changed through `hold` and `release`, which keep `loads` current
    holding: dict[str, str] = field(default_factory=dict)
    loads: dict[str, int] = field(default_factory=dict)  # media -> how many held
    version: int = 0
    pools: list[Any] = field(default_factory=list)  # the ACD's pools they are in
    direct: set[str] = field(default_factory=set)  # interactions waiting for this agent only
    preferred: set[str] = field(default_factory=set)  # ... for this agent first

    @property
    def id(self) -> str:
        return self.profile.id

    def hold(self, interaction_id: str, media: str) -> None:
        """The agent has the interaction (on offer, active or in after-call work)."""
        self.release(interaction_id)
        self.holding[interaction_id] = media
        self.loads[media] = self.loads.get(media, 0) + 1

    def release(self, interaction_id: str) -> bool:
        """The agent no longer has the interaction; False when they did not have it."""
        media = self.holding.pop(interaction_id, None)
        if media is None:
            return False
        self.loads[media] -= 1
        return True

    def load(self, media: str) -> int:
        """How many interactions of `media` the agent has (counted as they come and go, so
        an agent with a large capacity costs no more to ask than one with a small one)."""
        return self.loads.get(media, 0)

    def ready_for(self, media: str) -> bool:
        return self.state == "available" and self.loads.get(media, 0) < self.profile.capacity.get(
            media, 0
        )

    def occupancy(self) -> float:
        total = sum(self.profile.capacity.values())
        return len(self.holding) / total if total else 1.0

    def heap_entry(self, selection: Selection) -> tuple[float, float, str, int]:
        """The agent's entry in a pool's heap: smaller is better. Longest idle: agents holding
        nothing first, then the longest since they became free; least occupied: the smallest
        share of capacity in use, then the longest idle. Ties go to the agent id in
        alphabetical order. Last, the version that tells a stale entry (never compared: the
        id before it is unique)."""
        if selection == "least_occupied":
            return (self.occupancy(), self.idle_since, self.profile.id, self.version)
        return (1 if self.holding else 0, self.idle_since, self.profile.id, self.version)

    def view(self) -> AcdAgent:
        """A read-only copy, for the `Acd` port's `agent_view`."""
        profile = self.profile
        return AcdAgent(
            profile.id, self.state, profile.queues, dict(profile.capacity), dict(self.holding)
        )


@dataclass(slots=True)
class Interaction:
    """One conversation the ACD is distributing or has given to an agent."""

    id: str
    queue: str | None
    media: str
    skills: dict[str, int]
    language: str | None
    priority: float
    entered_at: datetime
    window_closes_at: datetime | None = None
    phase: Phase = "waiting"
    ring: int = 0
    requirement: Requirement | None = None
    agent: str | None = None
    declined: set[str] = field(default_factory=set)
    candidates: list[str] = field(default_factory=list)  # preferred (or the one) agents
    boost: float = 0.0
    # a new number of the ACD's sequence whenever it is placed again, never reused (not even
    # by a later interaction of the same conversation): stale heap entries are dropped
    version: int = 0
    episode: int = 0  # one routing (a transfer starts another): stale timers are dropped
    offers: int = 0
    offer_ends_at: datetime | None = None  # when the open offer times out
    last_customer_activity: datetime | None = None
    wrap_up: str | None = None
    steps: tuple[AgentStep, ...] = ()  # ordered routing targets; `step`: the current one
    step: int = 0

    def view(self) -> AcdInteraction:
        """A read-only copy, for the `Acd` port's `interaction_view`."""
        return AcdInteraction(
            self.id,
            self.phase,
            self.queue,
            self.media,
            self.entered_at,
            self.agent,
            dict(self.skills),
            self.offer_ends_at,
            self.wrap_up,
        )

    def agents_wanted(self) -> str | None:
        """The current routing step's condition (None: no step, or past the last)."""
        return self.steps[self.step].condition if self.step < len(self.steps) else None

    def rank(self) -> float:
        """Waiting order: the entry time moved earlier by a minute per priority point."""
        return self.entered_at.timestamp() - 60.0 * (self.priority + self.boost)
