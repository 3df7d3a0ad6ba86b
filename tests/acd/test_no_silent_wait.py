"""No interaction waits while an agent who could take it is free (docs/acd.md, "Nobody waits
while an agent is free"): after every arrival, change of presence, offer, acceptance, decline,
offer timeout, completion, wrap-up, withdrawal, transfer and tick, an interaction waiting in a
queue has no agent who is available, meets what it asks for now (its ring and step), has room
for its media and has not declined it, unless it is one of the designed exceptions:

- it waits for its preferred agents (`preferred_agent_wait`): then none of them is free;
- it waits for one agent by name (a transfer to them): then that agent is not free;
- an agent who let an offer time out is `not_responding`, not available, until they set
  themselves available again.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from flowlang.acd import AgentProfile, QueueSettings, Ring, SkillsAcd
from flowlang.acd.model import Interaction
from tests.acd.test_distributor import T0, at, request

QUEUES = [
    QueueSettings("Retail", offer_timeout=timedelta(minutes=2)),
    QueueSettings(
        "Overflow",
        offer_timeout=timedelta(minutes=3),  # offers outlast the ring
        after_call_work=timedelta(minutes=1),
        rings=(Ring(timedelta(minutes=2), relax_proficiency=2),),
    ),
    QueueSettings(
        "Loans",
        preferred_agent_wait=timedelta(minutes=2),
        rings=(Ring(timedelta(minutes=2), remove_all_skills=True),),
        wrap_up_codes=frozenset({"Resolved"}),
        wrap_up_required=True,
        after_call_work=timedelta(minutes=2),
        wrap_up_may_time_out=True,
    ),
]
NAMES = [q.name for q in QUEUES]
MEDIA = ["message", "social_dm"]
AGENTS = st.lists(
    st.tuples(
        st.sets(st.sampled_from(NAMES), min_size=1),
        st.dictionaries(st.sampled_from(["Cards", "Loans"]), st.integers(1, 4), max_size=2),
        st.sets(st.sampled_from(["en", "es"]), min_size=1),
        st.dictionaries(st.sampled_from(MEDIA), st.integers(0, 2), min_size=1),
        st.booleans(),  # auto-answer
        st.sampled_from(["available", "away", "offline"]),
    ),
    min_size=1,
    max_size=4,
)
STEP = st.tuples(
    st.sampled_from(
        [
            "arrive",
            "arrive",
            "presence",
            "accept",
            "accept",
            "decline",
            "complete",
            "wrap_up",
            "withdraw",
            "transfer",
            "again",
            "wait",
            "wait",
        ]
    ),
    st.integers(0, 50),  # which agent, interaction or queue
    st.sampled_from(["available", "away", "offline"]),
    st.dictionaries(st.sampled_from(["Cards", "Loans"]), st.integers(1, 4), max_size=2),
    st.sampled_from([None, "en", "es"]),
    st.sampled_from(MEDIA),
    st.integers(0, 200),  # seconds that pass before the step
)


# an agent's queues, skills, languages, capacity, auto-answer and starting state
Spec = tuple[set[str], dict[str, int], set[str], dict[str, int], bool, str]
Step = tuple[str, int, str, dict[str, int], str | None, str, int]


def _acd(specs: list[Spec]) -> SkillsAcd:
    agents = [
        AgentProfile(
            f"a{n}",
            frozenset(queues),
            dict(skills),
            frozenset(languages),
            dict(capacity),
            auto,
            state,  # type: ignore[arg-type]
        )
        for n, (queues, skills, languages, capacity, auto, state) in enumerate(specs)
    ]
    return SkillsAcd(QUEUES, agents)


def _silent_waits(acd: SkillsAcd) -> list[str]:
    """Interactions that wait while an agent who may take them is free, each with that agent."""
    found = []
    for interaction in acd.interactions.values():
        for agent in _free_for(acd, interaction):
            found.append(f"{interaction.id} ({interaction.phase}) waits while {agent} is free")
    return found


def _free_for(acd: SkillsAcd, interaction: Interaction) -> list[str]:
    """The agents free to take `interaction` now, as the designed rules allow."""
    if interaction.phase in ("preferred", "direct"):
        allowed = set(interaction.candidates)  # only they may take it for now
    elif interaction.phase == "waiting":
        requirement = acd._requirement(interaction)  # its ring and step as they are now
        allowed = {a for a, r in acd.agents.items() if requirement.met_by(r.profile)}
    else:
        return []  # offered, with an agent or in after-call work
    return sorted(
        agent
        for agent in allowed - interaction.declined
        if agent in acd.agents and acd.agents[agent].ready_for(interaction.media)
    )


def _pick(items: list[str], index: int) -> str | None:
    return sorted(items)[index % len(items)] if items else None


def _ringed() -> SkillsAcd:
    """Cards 4 asked; after 2 minutes a ring lowers it to 2. ann (Cards 4) answers by hand,
    bea (Cards 2) at once."""
    queue = QueueSettings(
        "Retail",
        offer_timeout=timedelta(minutes=3),
        rings=(Ring(timedelta(minutes=2), relax_proficiency=2),),
    )
    ann = AgentProfile("ann", frozenset({"Retail"}), {"Cards": 4}, frozenset(), {"message": 1})
    bea = AgentProfile(
        "bea", frozenset({"Retail"}), {"Cards": 2}, frozenset(), {"message": 1}, True
    )
    return SkillsAcd([queue], [ann, bea])


def test_a_ring_reached_while_on_offer_counts_when_the_offer_times_out() -> None:
    acd = _ringed()
    assert [(n.kind, n.agent) for n in acd.enqueue(request("c1", skills={"Cards": 4}), at(0))] == [
        ("offered", "ann")
    ]
    assert acd.tick(at(2)) == []  # the ring is reached while ann has it on offer
    timed_out = [(n.kind, n.agent) for n in acd.tick(at(3))]
    assert timed_out == [("not_responding", "ann"), ("requeued", None), ("accepted", "bea")]


def test_a_ring_reached_while_on_offer_counts_when_the_offer_is_declined() -> None:
    acd = _ringed()
    acd.enqueue(request("c1", skills={"Cards": 4}), at(0))
    acd.tick(at(2.5))
    declined = [(n.kind, n.agent) for n in acd.decline("c1", "ann", at(2.5))]
    assert declined == [("declined", "ann"), ("requeued", None), ("accepted", "bea")]
    assert _silent_waits(acd) == []


def test_an_agent_not_responding_is_offered_nothing_until_they_are_available_again() -> None:
    """The designed exception: frank let an offer time out; the interaction waits, and the
    waiting is no silent one: frank is not available."""
    frank = AgentProfile("frank", frozenset({"Overflow"}), {}, frozenset(), {"message": 5})
    acd = SkillsAcd(QUEUES, [frank])
    acd.enqueue(request("c1", "Overflow"), at(0))
    assert [n.kind for n in acd.tick(at(3))] == ["not_responding", "requeued"]
    assert acd.agents["frank"].state == "not_responding"
    acd.enqueue(request("c2", "Overflow"), at(3))
    assert {i.phase for i in acd.interactions.values()} == {"waiting"}
    assert _silent_waits(acd) == []
    back = acd.set_agent_state("frank", "available", at(28))
    assert [(n.kind, n.conversation_id) for n in back] == [("offered", "c1"), ("offered", "c2")]


@settings(max_examples=200, deadline=None)
@given(AGENTS, st.lists(STEP, max_size=40))
def test_no_interaction_waits_while_an_agent_who_may_take_it_is_free(
    specs: list[Spec], steps: list[Step]
) -> None:
    acd = _acd(specs)
    agents = sorted(acd.agents)
    clock = 0.0
    for number, (kind, index, state, skills, language, media, seconds) in enumerate(steps):
        clock += seconds / 60
        now = at(clock)
        acd.tick(now)
        assert _silent_waits(acd) == [], f"after the deadlines due at {now - T0}"
        phases = {i.id: (i.phase, i.agent) for i in acd.interactions.values()}
        offered = [c for c, (p, _a) in phases.items() if p == "offered"]
        active = [c for c, (p, _a) in phases.items() if p == "active"]
        if kind == "arrive":
            preferred: list[tuple[str, int | None]] | None = (
                [(agents[index % len(agents)], 10)] if index % 3 == 0 else None
            )
            acd.enqueue(
                request(
                    f"c{number}",
                    NAMES[index % len(NAMES)],
                    skills=dict(skills),
                    language=language,
                    preferred=preferred,
                    media=media,
                ),
                now,
            )
        elif kind == "presence":
            acd.set_agent_state(agents[index % len(agents)], state, now)
        elif kind in ("accept", "decline") and (conv := _pick(offered, index)):
            agent = phases[conv][1] or ""
            (acd.accept if kind == "accept" else acd.decline)(conv, agent, now)
        elif kind == "complete" and (conv := _pick(active, index)):
            acd.complete(conv, phases[conv][1] or "", "Resolved" if index % 2 else None, now)
        elif kind == "wrap_up":
            wrapping = [c for c, (p, _a) in phases.items() if p == "wrap_up"]
            if conv := _pick(wrapping, index):
                acd.wrap_up(conv, phases[conv][1] or "", "Resolved", now)
        elif kind == "withdraw" and (conv := _pick(list(phases), index)):
            acd.withdraw(conv, now)
        elif kind == "transfer" and (conv := _pick(active, index)):
            if index % 2:
                acd.transfer(conv, NAMES[index % len(NAMES)], None, now)
            else:
                acd.transfer(conv, None, agents[index % len(agents)], now)
        elif kind == "again":
            waiting = [c for c, (p, _a) in phases.items() if p in ("waiting", "offered")]
            conv = _pick(waiting, index)
            found = acd.interactions[conv] if conv else None
            if found is not None and found.queue:
                again = request(found.id, found.queue, skills=dict(skills), media=found.media)
                acd.enqueue(again, now)
        assert _silent_waits(acd) == [], f"after step {number} ({kind}) at {now - T0}"
