"""`flowlang simulate`: the real ACD on a simulated clock, with random traffic.

A simulation file gives the traffic (arrivals per hour, handle-time and patience
distributions, required skills) and, unless a deployment file gives them, the queues and
agents. Arrivals are Poisson; every decision is the built-in `SkillsAcd`'s. The result has
service level, average speed of answer, occupancy and abandonment per queue, and the queue
length over time for a chart.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from flowlang.acd.distributor import SkillsAcd, queue_settings
from flowlang.acd.model import AgentProfile, QueueSettings
from flowlang.config.fields import Duration, Name, Proficiency
from flowlang.config.models import Deployment, Queue
from flowlang.runtime.ports import AgentStep, RoutingNotice, RoutingRequest

START = datetime(2026, 1, 5, tzinfo=UTC)
MediaName = Literal["message", "social_dm", "social_public"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Distribution(_Model):
    """A random duration: `{exponential: 4m}`, `{fixed: 3m}` or `{lognormal: 4m, sd: 2m}`."""

    exponential: Duration | None = None
    fixed: Duration | None = None
    lognormal: Duration | None = None
    sd: Duration | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Distribution:
        given = [k for k in ("exponential", "fixed", "lognormal") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of exponential, fixed or lognormal (with sd)")
        if self.lognormal is not None and self.sd is None:
            raise ValueError("a lognormal distribution needs `sd`")
        return self

    def sample(self, rng: random.Random) -> float:
        """Seconds."""
        if self.exponential is not None:
            return rng.expovariate(1 / self.exponential.total_seconds())
        if self.fixed is not None:
            return self.fixed.total_seconds()
        mean = (self.lognormal or timedelta(0)).total_seconds()
        sd = (self.sd or timedelta(0)).total_seconds()
        if mean <= 0:
            return 0.0
        sigma2 = math.log(1 + (sd / mean) ** 2)
        return rng.lognormvariate(math.log(mean) - sigma2 / 2, math.sqrt(sigma2))


class PreferAgents(_Model):
    """An ordered routing step: agents whose attributes equal `where`'s, for `for` (None:
    until the interaction is answered or gives up); `prefer agents where ...` in a flow."""

    where: dict[Name, str | int | float | bool] = Field(min_length=1)
    for_: Duration | None = Field(default=None, alias="for")

    def step(self) -> AgentStep:
        tests: list[dict[str, Any]] = [
            {"bin": "==", "l": {"path": ["agent", name]}, "r": {"lit": value}}
            for name, value in sorted(self.where.items())
        ]
        tree = tests[0]
        for test in tests[1:]:
            tree = {"bin": "and", "l": tree, "r": test}
        seconds = int(self.for_.total_seconds()) if self.for_ is not None else None
        # the key the engine gives the same condition (runtime/agent_steps.canonical)
        key = json.dumps(tree, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return AgentStep(key, seconds)


class Traffic(_Model):
    """One stream of interactions into a queue."""

    queue: Name
    per_hour: float = Field(gt=0)
    handle_time: Distribution
    patience: Distribution | None = None  # customers who give up waiting
    media: MediaName = "message"
    skills: dict[Name, Proficiency] = Field(default_factory=dict)
    language: Name | None = None
    priority: float = 0
    reply_window: Duration | None = None  # expire when the channel's window closes
    prefer_agents: list[PreferAgents] = Field(default_factory=list)  # ordered routing steps


class AgentGroup(_Model):
    """`count` identical agents named `<name>-001`, `<name>-002`, ..."""

    name: Name = "agent"
    count: int = Field(default=1, ge=1, le=100_000)
    queues: list[Name]
    skills: dict[Name, Proficiency] = Field(default_factory=dict)
    languages: list[Name] = Field(default_factory=list)
    capacity: dict[MediaName, int] = Field(default_factory=lambda: {"message": 1})  # type: ignore[arg-type]
    attributes: dict[Name, str | int | float | bool | list[str]] = Field(default_factory=dict)


class SimulationSpec(_Model):
    """A simulation file (YAML)."""

    duration: Duration
    warmup: Duration = timedelta(0)
    seed: int = 1
    answer_within: Duration | None = None  # default: each queue's service_level
    queues: dict[Name, Queue] = Field(default_factory=dict)
    agents: list[AgentGroup] = Field(default_factory=list)
    traffic: list[Traffic] = Field(min_length=1)


@dataclass
class QueueStats:
    """Figures for one queue, over arrivals after the warm-up."""

    name: str
    answer_within: float
    offered: int = 0
    answered: int = 0
    answered_within: int = 0
    abandoned: int = 0
    expired: int = 0
    total_wait: float = 0.0
    longest_wait: float = 0.0
    total_handle: float = 0.0

    @property
    def service_level(self) -> float:
        """Share of offered interactions answered within `answer_within`."""
        return self.answered_within / self.offered if self.offered else 1.0

    @property
    def average_speed_of_answer(self) -> float:
        return self.total_wait / self.answered if self.answered else 0.0

    @property
    def abandonment(self) -> float:
        return self.abandoned / self.offered if self.offered else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "queue": self.name,
            "offered": self.offered,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "expired": self.expired,
            "service_level": round(self.service_level, 4),
            "answer_within_seconds": self.answer_within,
            "average_speed_of_answer_seconds": round(self.average_speed_of_answer, 2),
            "longest_wait_seconds": round(self.longest_wait, 2),
            "abandonment": round(self.abandonment, 4),
        }


@dataclass
class SimulationResult:
    duration: float
    warmup: float
    seed: int
    agents: int
    queues: dict[str, QueueStats]
    occupancy: float
    waiting_over_time: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "duration_seconds": self.duration,
            "warmup_seconds": self.warmup,
            "seed": self.seed,
            "agents": self.agents,
            "occupancy": round(self.occupancy, 4),
            "queues": [q.as_dict() for q in self.queues.values()],
        }


@dataclass
class _Call:
    id: str
    queue: str
    arrived: float
    handle: float
    counted: bool
    waiting: bool = True
    accepted: float | None = None


def build_acd(spec: SimulationSpec, deployment: Deployment | None) -> SkillsAcd:
    """The ACD for the simulation: the deployment's queues and agents unless the file gives
    its own. Simulated agents answer at once (auto-answer)."""
    queues: dict[str, QueueSettings] = {}
    center_codes = deployment.wrap_up_codes if deployment is not None else []
    if deployment is not None:
        queues = {
            name: queue_settings(name, q, center_codes) for name, q in deployment.queues.items()
        }
    queues.update({name: queue_settings(name, q, center_codes) for name, q in spec.queues.items()})
    profiles: list[AgentProfile] = []
    if spec.agents:
        for group in spec.agents:
            for n in range(1, group.count + 1):
                profiles.append(
                    AgentProfile(
                        f"{group.name}-{n:03d}",
                        frozenset(group.queues),
                        dict(group.skills),
                        frozenset(group.languages),
                        {str(k): v for k, v in group.capacity.items()},
                        auto_answer=True,
                        attributes=dict(group.attributes),
                    )
                )
    elif deployment is not None:
        from_file = SkillsAcd.from_deployment(deployment)
        profiles = [
            AgentProfile(
                r.id,
                r.profile.queues,
                r.profile.skills,
                r.profile.languages,
                r.profile.capacity,
                auto_answer=True,
                attributes=r.profile.attributes,
            )
            for r in from_file.agents.values()
        ]
    return SkillsAcd(queues.values(), profiles)


# Too complex (C901): to split.
def simulate(  # noqa: C901
    spec: SimulationSpec, deployment: Deployment | None = None
) -> SimulationResult:
    """Run the simulation to the end of its arrivals, then until the queues are empty."""
    rng = random.Random(spec.seed)
    acd = build_acd(spec, deployment)
    seq = itertools.count()
    duration = spec.duration.total_seconds()
    warmup = spec.warmup.total_seconds()
    events: list[tuple[float, int, str, Any]] = []
    for index, stream in enumerate(spec.traffic):
        first = rng.expovariate(stream.per_hour / 3600)
        heapq.heappush(events, (first, next(seq), "arrival", index))
    calls: dict[str, _Call] = {}
    stats: dict[str, QueueStats] = {}
    for stream in spec.traffic:
        if stream.queue not in stats:
            within = spec.answer_within
            if within is None:  # 0s is a target too: answered without waiting
                within = acd.settings(stream.queue).answer_within
            stats[stream.queue] = QueueStats(stream.queue, within.total_seconds())
    waiting = dict.fromkeys(stats, 0)
    series: dict[str, list[tuple[float, float]]] = {q: [(0.0, 0.0)] for q in stats}
    busy = 0.0
    capacity = sum(sum(r.profile.capacity.values()) for r in acd.agents.values())
    numbers = itertools.count(1)

    def at(seconds: float) -> datetime:
        return START + timedelta(seconds=seconds)

    def note_waiting(queue: str, change: int, now: float) -> None:
        waiting[queue] += change
        series[queue].append((now / 60, float(waiting[queue])))

    def release(call: _Call, now: float) -> None:
        nonlocal busy
        if call.accepted is not None:
            busy += max(0.0, min(now, duration) - max(call.accepted, warmup))

    def apply(notices: list[RoutingNotice], now: float) -> None:
        for notice in notices:
            call = calls.get(notice.conversation_id)
            if call is None:
                continue
            queue = stats[call.queue]
            if notice.kind == "accepted":
                if call.waiting:
                    call.waiting = False
                    note_waiting(call.queue, -1, now)
                call.accepted = now
                wait = now - call.arrived
                if call.counted:
                    queue.answered += 1
                    queue.total_wait += wait
                    queue.longest_wait = max(queue.longest_wait, wait)
                    queue.answered_within += wait <= queue.answer_within
                    queue.total_handle += call.handle
                heapq.heappush(events, (now + call.handle, next(seq), "complete", call.id))
            elif notice.kind == "expired":
                if call.waiting:
                    call.waiting = False
                    note_waiting(call.queue, -1, now)
                queue.expired += call.counted
                del calls[call.id]
            elif notice.kind == "wrap_up_ended":
                release(call, now)
                del calls[call.id]

    now = 0.0
    while True:
        deadline = acd.next_deadline()
        next_event = events[0][0] if events else None
        if deadline is not None and (
            next_event is None or (deadline - START).total_seconds() <= next_event
        ):
            now = max(now, (deadline - START).total_seconds())
            apply(acd.tick(at(now)), now)
            continue
        if next_event is None:
            break
        now, _seq, kind, payload = heapq.heappop(events)
        if kind == "arrival":
            stream = spec.traffic[payload]
            gap = rng.expovariate(stream.per_hour / 3600)
            if now + gap < duration:
                heapq.heappush(events, (now + gap, next(seq), "arrival", payload))
            call = _Call(
                f"sim-{next(numbers)}",
                stream.queue,
                now,
                stream.handle_time.sample(rng),
                counted=now >= warmup,
            )
            calls[call.id] = call
            stats[call.queue].offered += call.counted
            note_waiting(call.queue, +1, now)
            window = at(now) + stream.reply_window if stream.reply_window else None
            request = RoutingRequest(
                call.id,
                stream.queue,
                stream.media,
                dict(stream.skills),
                stream.language,
                stream.priority,
                [],
                None,
                None,
                window,
                tuple(p.step() for p in stream.prefer_agents),
            )
            if stream.patience is not None:
                patience = stream.patience.sample(rng)
                heapq.heappush(events, (now + patience, next(seq), "abandon", call.id))
            apply(acd.enqueue(request, at(now)), now)
        elif kind == "abandon":
            gone = calls.get(payload)
            if gone is not None and gone.waiting:
                acd.withdraw(gone.id, at(now))
                gone.waiting = False
                note_waiting(gone.queue, -1, now)
                stats[gone.queue].abandoned += gone.counted
                del calls[gone.id]
        elif kind == "complete":
            call = calls[payload]
            settings = acd.settings(call.queue)
            # Simulated agents give a code the queue accepts (any, where none is declared).
            code = min(settings.wrap_up_codes, default=None)
            if code is None and settings.wrap_up_required:
                code = "simulated"
            interaction = acd.interactions.get(call.id)
            agent = interaction.agent if interaction is not None else None
            notices = acd.complete(call.id, agent or "", code, at(now))
            if not any(
                n.kind == "after_call_work" for n in notices if n.conversation_id == call.id
            ):
                release(call, now)
                del calls[call.id]
            apply(notices, now)
    occupancy = busy / (capacity * (duration - warmup)) if capacity and duration > warmup else 0.0
    return SimulationResult(
        duration,
        warmup,
        spec.seed,
        len(acd.agents),
        stats,
        occupancy,
        {q: _thin(points) for q, points in series.items()},
    )


def _thin(points: Sequence[tuple[float, float]], limit: int = 1500) -> list[tuple[float, float]]:
    """At most `limit` points, keeping each bucket's highest value (peaks stay visible)."""
    if len(points) <= limit:
        return list(points)
    size = len(points) / limit
    out = []
    for bucket in range(limit):
        chunk = points[int(bucket * size) : int((bucket + 1) * size)]
        if chunk:
            out.append((chunk[0][0], max(y for _, y in chunk)))
    return out
