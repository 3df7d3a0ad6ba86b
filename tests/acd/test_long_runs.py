"""The ACD and the engine over long runs: an agent's load is counted as work comes and goes
(whatever their capacity), and finished interactions leave nothing behind."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from hypothesis import given, settings
from hypothesis import strategies as st

from flowlang.acd import AgentProfile, QueueSettings, Ring, SkillsAcd
from flowlang.events import AgentAction, AgentEvent, InboundEvent
from flowlang.runtime.memory import MemoryStore
from tests.acd.test_distributor import T0, agent, at, request
from tests.runtime.helpers import NOW, engine_of, program

# (operation, conversation number, agent number, media)
OPS = st.lists(
    st.tuples(
        st.sampled_from(
            ["enqueue", "accept", "decline", "complete", "withdraw", "away", "back", "replace"]
        ),
        st.integers(0, 7),
        st.integers(0, 2),
        st.sampled_from(["message", "social_dm"]),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(OPS)
def test_every_agents_load_is_what_they_hold(ops: list[tuple[str, int, int, str]]) -> None:
    """Whatever happens (offers, declines, completions, withdrawals, state changes, the agent
    replaced by a new profile), each agent's load per media is what they hold, and no agent
    holds more than their capacity."""
    names = ["al", "bo", "cy"]

    def profile(n: int) -> AgentProfile:
        return AgentProfile(
            names[n], frozenset({"Retail"}), {}, frozenset(), {"message": 2, "social_dm": 1}
        )

    acd = SkillsAcd([QueueSettings("Retail")], [profile(n) for n in range(3)])
    for step, (op, conv, who, media) in enumerate(ops):
        now, name, conversation = at(step), names[who], f"c{conv}"
        if op == "enqueue":
            acd.enqueue(request(conversation, media=media), now)
        elif op in ("accept", "decline", "complete"):
            holder = acd.interactions.get(conversation)
            agent_id = holder.agent if holder is not None and holder.agent else name
            if op == "accept":
                acd.accept(conversation, agent_id, now)
            elif op == "decline":
                acd.decline(conversation, agent_id, now)
            else:
                acd.complete(conversation, agent_id, None, now)
        elif op == "withdraw":
            acd.withdraw(conversation, now)
        elif op in ("away", "back"):
            acd.set_agent_state(name, "away" if op == "away" else "available", now)
        else:
            acd.add_agent(profile(who), now)
        for record in acd.agents.values():
            for kind in ("message", "social_dm"):
                held = [i for i, m in record.holding.items() if m == kind]
                assert record.load(kind) == len(held), (record.id, kind, record.holding)
                assert len(held) <= record.profile.capacity[kind]


def test_an_agent_with_a_large_capacity_takes_every_interaction_up_to_it() -> None:
    acd = SkillsAcd([QueueSettings("Retail")], [agent("al", capacity=3000)])
    for n in range(3001):
        notices = acd.enqueue(request(f"c{n}"), at(n / 60))
        expected = "accepted" if n < 3000 else "waiting"
        assert [x.kind for x in notices] == [expected], n
    assert acd.agents["al"].load("message") == 3000
    completed = acd.complete("c0", "al", None, at(60))
    assert [(x.kind, x.conversation_id) for x in completed] == [("accepted", "c3000")]


def test_finished_interactions_leave_no_deadlines_behind() -> None:
    """Each routing sets deadlines (bullseye rings, the reply window); an interaction
    finished long before they are due no longer keeps them in memory."""
    rings = tuple(Ring(timedelta(hours=h), relax_proficiency=1) for h in (1, 2, 3, 4))
    acd = SkillsAcd([QueueSettings("Retail", rings=rings)], [agent("al", capacity=5)])
    for n in range(2000):
        now = T0 + timedelta(seconds=n)
        acd.enqueue(request(f"c{n}", window_closes_at=now + timedelta(hours=24)), now)
        acd.complete(f"c{n}", "al", None, now)
    assert acd.interactions == {}
    assert len(acd._timers) <= 200  # 6 deadlines x 2,000 interactions without the clean-up


def test_cleaning_up_deadlines_keeps_those_of_interactions_still_waiting() -> None:
    rings = (Ring(timedelta(minutes=30), remove_all_skills=True),)
    acd = SkillsAcd([QueueSettings("Retail", rings=rings)], [agent("al", capacity=5)])
    acd.enqueue(request("waits", skills={"Loans": 3}), T0)  # al has no Loans skill
    for n in range(2000):
        acd.enqueue(request(f"c{n}"), at(1))
        acd.complete(f"c{n}", "al", None, at(1))
    assert [x.kind for x in acd.tick(at(31))] == ["ring_widened", "accepted"]


def test_the_engine_keeps_nothing_per_finished_conversation_between_events() -> None:
    """What one event resolved (the customer, who wrote) is not kept once its unit of work
    is over: a long run does not grow with every customer it has seen."""
    acd = SkillsAcd(
        [QueueSettings("Retail")],
        [AgentProfile("ana", frozenset({"Retail"}), {}, frozenset(), {"message": 5}, True)],
    )
    engine = engine_of(program('route to queue "Retail"'), store=MemoryStore(), acd=acd)
    for n in range(300):
        when = NOW + timedelta(seconds=n)
        outcome = engine.handle(
            InboundEvent(
                event_id=f"m{n}",
                channel="whatsapp",
                sender_id=f"4477{n:08d}",
                text="hi",
                timestamp=when,
            )
        )
        conv = outcome.conversation_id or ""
        engine.handle(
            AgentEvent(
                event_id=f"done{n}",
                conversation_id=conv,
                agent_id="ana",
                action=AgentAction.COMPLETE,
                timestamp=when,
            )
        )
        view = engine.store.get_conversation(conv)
        assert view is not None and view.status == "closed"
    context = engine._ctx
    assert (context.customers, context.senders) == ({}, {})
    assert acd.interactions == {}


def test_a_replaced_agent_is_in_the_pools_their_new_skills_qualify_them_for() -> None:
    """Pools are built from who has each skill: an agent given a skill (or losing one) by a
    new profile is found (or not) for a requirement first asked for after the change."""
    acd = SkillsAcd([QueueSettings("Retail")], [agent("al", Cards=3), agent("bo", Loans=2)])
    acd.add_agent(agent("al", Loans=4), at(0))  # al now does loans, no longer cards
    loans = acd.enqueue(request("c1", skills={"Loans": 3}), at(1))
    assert [(n.kind, n.agent) for n in loans] == [("accepted", "al")]
    cards = acd.enqueue(request("c2", skills={"Cards": 1}), at(2))
    assert [n.kind for n in cards] == ["waiting"]
    acd.add_agent(agent("cy", Cards=1), at(3))
    assert [(n.kind, n.agent) for n in acd.tick(at(3))] == []
    assert acd.interactions["c2"].agent == "cy"


def test_a_replaced_agent_below_a_level_asked_for_is_no_longer_found_for_it() -> None:
    """Pools are built from each skill's level: an agent whose new profile lowers a skill
    below what a requirement asks is not found for it, one who raises it is."""
    acd = SkillsAcd([QueueSettings("Retail")], [agent("al", Loans=4), agent("bo", Loans=1)])
    acd.add_agent(agent("al", Loans=2), at(0))
    acd.add_agent(agent("bo", Loans=3), at(0))
    loans = acd.enqueue(request("c1", skills={"Loans": 3}), at(1))
    assert [(n.kind, n.agent) for n in loans] == [("accepted", "bo")]
    again = acd.enqueue(request("c2", skills={"Loans": 3}), at(2))  # bo is busy
    assert [n.kind for n in again] == ["waiting"]


SKILLS = ["Cards", "Loans", "Fees"]
CENTER = st.lists(
    st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 3), max_size=3),
    min_size=1,
    max_size=6,
)
STEPS = st.lists(
    st.tuples(
        st.sampled_from(["enqueue", "enqueue", "complete", "away", "back"]),
        st.integers(0, 5),
        st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 3), max_size=2),
    ),
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(CENTER, STEPS, st.sampled_from(["longest_idle", "least_occupied"]))
def test_an_arriving_interaction_goes_to_the_best_agent_who_can_take_it(
    skills: list[dict[str, int]],
    steps: list[tuple[str, int, dict[str, int]]],
    selection: Literal["longest_idle", "least_occupied"],
) -> None:
    """Whatever came before, an arrival is given to the agent the queue's selection rule
    ranks first among those free to take it who meet what it asks: the same choice as
    looking at every agent."""
    profiles = [
        AgentProfile(f"a{n}", frozenset({"Retail"}), s, frozenset(), {"message": 2}, True)
        for n, s in enumerate(skills)
    ]
    acd = SkillsAcd([QueueSettings("Retail", selection=selection)], profiles)
    held: list[tuple[str, str]] = []
    for number, (op, who, wanted) in enumerate(steps):
        now = at(number)
        name = f"a{who % len(profiles)}"
        if op == "enqueue":
            asked = request(f"c{number}", skills=dict(wanted))
            able = [  # every agent looked at, skills compared here, not by the ACD's code
                r
                for r in acd.agents.values()
                if r.ready_for("message")
                and all(r.profile.skills.get(s, 0) >= level for s, level in wanted.items())
            ]
            best = min(able, key=lambda r: r.heap_entry(selection)[:3], default=None)
            notices = acd.enqueue(asked, now)
            if best is None:
                assert [n.kind for n in notices] == ["waiting"]
            else:
                assert [(n.kind, n.agent) for n in notices] == [("accepted", best.id)]
                held.append((f"c{number}", best.id))
        elif op == "complete" and held:
            conversation, agent_id = held.pop(who % len(held))
            acd.complete(conversation, agent_id, None, now)
        elif op in ("away", "back"):
            acd.set_agent_state(name, "away" if op == "away" else "available", now)
        for conversation in [c for c, i in acd.interactions.items() if i.phase == "active"]:
            if (conversation, acd.interactions[conversation].agent) not in held:
                held.append((conversation, acd.interactions[conversation].agent or ""))


def test_an_agent_freed_after_being_passed_over_busy_is_first_again() -> None:
    """al, busy, is passed over for bo; when al is free again they have waited longest, and
    the next arrival is theirs, not bo's (who was freed after them)."""
    acd = SkillsAcd([QueueSettings("Retail")], [agent("al", capacity=2), agent("bo", capacity=2)])
    assert acd.enqueue(request("c1"), at(0))[0].agent == "al"
    assert acd.enqueue(request("c2"), at(1))[0].agent == "bo"
    acd.complete("c1", "al", None, at(2))
    acd.complete("c2", "bo", None, at(3))
    assert acd.enqueue(request("c3"), at(4))[0].agent == "al"
