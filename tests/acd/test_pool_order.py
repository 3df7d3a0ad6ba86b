"""The ACD's pools (docs/acd.md, "How a decision stays flat"): agents freed one after the
other queue in order at no cost that grows with the center, the rest in a heap; a new
requirement's agents are found by intersecting indexes. Whatever the order things happen in,
an arrival goes to the agent that looking at every agent would pick."""

from __future__ import annotations

import heapq
import random
from datetime import timedelta
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import flowlang.acd.distributor as distributor
import flowlang.acd.targets as flowlang_targets
from flowlang.acd import AgentProfile, QueueSettings, SkillsAcd
from flowlang.acd.model import AgentRecord
from flowlang.runtime.agent_steps import canonical
from flowlang.runtime.ports import AgentStep
from tests.acd.test_distributor import T0, at, request

SKILLS = ["Cards", "Loans", "Fees"]
TIERS = ["gold", "silver"]
AGENTS = st.lists(
    st.tuples(
        st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 4), max_size=3),
        st.sets(st.sampled_from(["en", "es"]), max_size=2),
        st.sampled_from(TIERS),
        st.integers(1, 3),
        st.sampled_from(["Retail", "Retail", "Loans"]),
    ),
    min_size=1,
    max_size=8,
)
# (operation, agent or held interaction number, skills asked, language, tier asked, minutes
# before the first arrival a replaced agent has been idle since)
OPS = st.lists(
    st.tuples(
        st.sampled_from(["enqueue", "enqueue", "complete", "complete", "away", "back", "replace"]),
        st.integers(0, 7),
        st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 4), max_size=1),
        st.sampled_from([None, None, "en", "es"]),
        st.sampled_from([None, None, *TIERS]),
        st.integers(0, 90),
    ),
    max_size=70,
)


def _profile(n: int, spec: tuple[dict[str, int], set[str], str, int, str]) -> AgentProfile:
    skills, languages, tier, capacity, queue = spec
    return AgentProfile(
        f"a{n}",
        frozenset({queue}),
        dict(skills),
        frozenset(languages),
        {"message": capacity},
        auto_answer=True,
        attributes={"tier": tier},
    )


def _condition(tier: str) -> str:
    return canonical({"bin": "==", "l": {"path": ["agent", "tier"]}, "r": {"lit": tier}})


def _best_by_looking(
    acd: SkillsAcd,
    queue: str,
    skills: dict[str, int],
    language: str | None,
    tier: str | None,
    selection: Literal["longest_idle", "least_occupied"],
) -> AgentRecord | None:
    """Every agent looked at; what they must meet compared here, not by the ACD's code."""
    able = [
        r
        for r in acd.agents.values()
        if r.ready_for("message")
        and queue in r.profile.queues
        and all(r.profile.skills.get(s, 0) >= level for s, level in skills.items())
        and (language is None or language in r.profile.languages)
        and (tier is None or r.profile.attributes.get("tier") == tier)
    ]
    return min(able, key=lambda r: r.heap_entry(selection)[:3], default=None)


@settings(max_examples=300, deadline=None)
@given(AGENTS, OPS, st.sampled_from(["longest_idle", "least_occupied"]))
def test_an_arrival_goes_to_the_agent_a_look_at_every_agent_picks(
    roster: list[Any],
    ops: list[tuple[str, int, dict[str, int], str | None, str | None, int]],
    selection: Literal["longest_idle", "least_occupied"],
) -> None:
    """Random rosters (skills, languages, a tier, capacities, two queues) and random events:
    arrivals asking for skills, a language and a tier of agents first; completions; agents
    going away and back; agents replaced by a new profile whose idle time starts earlier than
    others' (out of order: the heap's side of a pool, where freed agents queue in order), and
    in another tier when the event names one (the condition reads the new profile's view)."""
    queues = [QueueSettings(name, selection=selection) for name in ("Retail", "Loans")]
    acd = SkillsAcd(queues, [_profile(n, spec) for n, spec in enumerate(roster)])
    held: list[tuple[str, str]] = []
    for number, (op, who, skills, language, tier, back) in enumerate(ops):
        now = at(number + 60)
        name = f"a{who % len(roster)}"
        if op == "enqueue":
            queue = "Loans" if who == 7 else "Retail"
            wanted: dict[str, int | None] = dict(skills)
            asked = request(f"c{number}", queue, skills=wanted, language=language)
            if tier is not None:
                asked.agent_steps = (AgentStep(_condition(tier), None),)
            best = _best_by_looking(acd, queue, skills, language, tier, selection)
            notices = acd.enqueue(asked, now)
            if best is None:
                assert [n.kind for n in notices] == ["waiting"]
                acd.withdraw(f"c{number}", now)
            else:
                assert [(n.kind, n.agent) for n in notices] == [("accepted", best.id)]
                held.append((f"c{number}", best.id))
        elif op == "complete" and held:
            conversation, agent_id = held.pop(who % len(held))
            acd.complete(conversation, agent_id, None, now)
        elif op in ("away", "back"):
            acd.set_agent_state(name, "away" if op == "away" else "available", now)
        elif op == "replace":
            skills_of, languages, old_tier, capacity, home = roster[who % len(roster)]
            spec = (skills_of, languages, tier or old_tier, capacity, home)
            roster[who % len(roster)] = spec
            # idle since before every completion so far: out of order
            acd.add_agent(_profile(who % len(roster), spec), at(60 - back))


def test_an_agent_idle_since_before_those_freed_since_is_picked_first() -> None:
    """al and bo are freed one after the other (queued in order); cy then comes back with an
    idle time from before both (a new profile, out of order): the next arrival is cy's, then
    al's, then bo's."""
    names = ("al", "bo", "cy")
    acd = SkillsAcd(
        [QueueSettings("Retail")],
        [AgentProfile(n, frozenset({"Retail"}), {"Loans": 2}) for n in names],
    )
    for n in names:
        acd.add_agent(AgentProfile(n, frozenset({"Retail"}), {"Loans": 2}, auto_answer=True))
    for number, n in enumerate(names):
        acd.set_agent_state(n, "away", at(0))
        acd.set_agent_state(n, "available", at(10 * number + 10))  # al 10, bo 20, cy 30
    first = acd.enqueue(request("c0", skills={"Loans": 1}), at(40))
    assert [n.agent for n in first] == ["al"]
    acd.complete("c0", "al", None, at(41))  # al: idle from 41, after bo and cy
    acd.add_agent(AgentProfile("cy", frozenset({"Retail"}), {"Loans": 2}, auto_answer=True), at(5))
    picked = []
    for number in range(1, 4):
        (notice,) = acd.enqueue(request(f"c{number}", skills={"Loans": 1}), at(50 + number))
        picked.append(notice.agent)
    assert picked == ["cy", "bo", "al"]


def _center(agents: int) -> SkillsAcd:
    rng = random.Random(5)
    return SkillsAcd(
        agents=[
            AgentProfile(
                f"a{n:05d}",
                frozenset({"Q"}),
                {str(skill): rng.randint(1, 5) for skill in rng.sample(range(20), 3)},
                frozenset({"en"}),
                {"message": 4},
                auto_answer=True,
            )
            for n in range(agents)
        ]
    )


def test_freed_agents_are_found_again_without_heap_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """2,000 agents, 60 requirements, each arrival answered and completed at once (the
    bench's arrival pattern): after the pools are built, a decision neither pushes onto nor
    pops from a heap (before: about 15 pushes and 20 pops a decision, each growing with the
    log of the pool, most of them for entries gone stale)."""
    acd = _center(2_000)
    rng = random.Random(1)
    requests = []
    for number in range(6_000):
        wanted: dict[str, int | None] = {str(rng.randrange(20)): rng.randint(1, 3)}
        requests.append(request(f"c{number}", "Q", skills=wanted))
    counted = {"heap operations": 0}

    class Counting:
        def __getattr__(self, name: str) -> Any:
            operation = getattr(heapq, name)

            def counted_operation(*args: Any) -> Any:
                counted["heap operations"] += 1
                return operation(*args)

            return counted_operation

    for number, asked in enumerate(requests):
        if number == 3_000:  # every requirement's pool built by now
            monkeypatch.setattr(distributor, "heapq", Counting())
        now = T0 + timedelta(seconds=number)
        notices = acd.enqueue(asked, now)
        assert notices and notices[0].kind == "accepted", notices
        acd.complete(asked.conversation_id, notices[0].agent or "", None, now)
    assert counted["heap operations"] == 0


def test_a_new_condition_reads_the_views_kept_with_the_agents(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each agent's view (what `agent.<attribute>` reads) is made with their profile; the
    first arrivals asking for each tier test every agent against it and build no view (before:
    one view built per agent and condition, 3,000 here). A replaced agent is tested on their
    new profile's view."""
    acd = SkillsAcd(
        [QueueSettings("Q")],
        [_profile(n, ({"Cards": 2}, {"en"}, TIERS[n % 2], 1, "Q")) for n in range(1_000)],
    )
    built = {"views": 0}
    original = flowlang_targets.agent_view

    def counting(profile: AgentProfile) -> dict[str, Any]:
        built["views"] += 1
        return original(profile)

    monkeypatch.setattr(flowlang_targets, "agent_view", counting)
    for number, tier in enumerate([*TIERS, "bronze"]):
        asked = request(f"c{number}", "Q", skills={"Cards": 1})
        asked.agent_steps = (AgentStep(_condition(tier), None),)
        notices = acd.enqueue(asked, at(number))
        expected = "accepted" if tier in TIERS else "waiting"
        assert notices[0].kind == expected
        if tier in TIERS:
            assert acd.agents[notices[0].agent or ""].profile.attributes["tier"] == tier
    assert built["views"] == 0
    acd.add_agent(_profile(7, ({"Cards": 2}, {"en"}, "bronze", 1, "Q")), at(0))
    assert built["views"] == 1  # the new profile's, once
    acd.withdraw("c2", at(9))
    asked = request("c10", "Q", skills={"Cards": 1})
    asked.agent_steps = (AgentStep(_condition("bronze"), None),)
    assert [(n.kind, n.agent) for n in acd.enqueue(asked, at(10))] == [("accepted", "a7")]


def test_a_new_pool_takes_its_agents_entries_without_reading_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The entries of the agents who can take work now are kept as agents change: a new
    requirement's pool takes them from there, asking no agent whether they are ready (before:
    each qualified agent asked, about 300 of them for each new requirement here); the decision
    asks only the head of the pool."""
    acd = _center(2_000)
    acd.enqueue(request("c0", "Q", skills={"0": 1}), T0)  # the entries gathered once
    asked_ready = {"agents": 0}
    ready_for = AgentRecord.ready_for

    def counting(record: AgentRecord, media: str) -> bool:
        asked_ready["agents"] += 1
        return ready_for(record, media)

    monkeypatch.setattr(AgentRecord, "ready_for", counting)
    for skill in range(1, 20):
        asked_ready["agents"] = 0
        asked = request(f"c{skill}", "Q", skills={str(skill): 3})
        notices = acd.enqueue(asked, T0 + timedelta(seconds=skill))
        assert notices[0].kind == "accepted"
        pool = next(p for r, p in acd._pools.items() if r.skills == ((str(skill), 3),))
        assert len(pool.qualified) > 100
        assert asked_ready["agents"] <= 3, (skill, asked_ready)


class _CountingAgents(dict[str, AgentRecord]):
    """The ACD's agents, counting each record read."""

    reads = 0

    def get(self, key: str, default: Any = None) -> Any:
        type(self).reads += 1
        return super().get(key, default)

    def __getitem__(self, key: str) -> AgentRecord:
        type(self).reads += 1
        return super().__getitem__(key)


def test_a_decision_drops_stale_pool_entries_without_reading_their_agents() -> None:
    """The 30 agents longest idle in a pool go away and come back: their entries at the head of
    the pool are stale (each has a newer one at the tail). The next decision drops them and
    picks the 31st, telling each stale entry by the entry alone (before: each one's agent
    record read, a cache miss apiece in a large center)."""
    acd = _center(2_000)
    acd.prepare(acd.requirement(request("p", "Q", skills={str(s): 1})) for s in range(20))
    pool = next(p for r, p in acd._pools.items() if r.skills == (("0", 1),))
    order = [entry[2] for entry in pool.fifo]
    for agent in order[:30]:
        acd.set_agent_state(agent, "away", T0)
        acd.set_agent_state(agent, "available", T0 + timedelta(seconds=1))
    acd.agents = _CountingAgents(acd.agents)
    _CountingAgents.reads = 0
    notices = acd.enqueue(request("c0", "Q", skills={"0": 1}), T0 + timedelta(seconds=2))
    assert [(n.kind, n.agent) for n in notices] == [("accepted", order[30])]
    assert _CountingAgents.reads <= 3, _CountingAgents.reads
    assert [entry[2] for entry in pool.fifo][:1] == [order[30]]  # the 30 stale ones dropped
