"""A first routing that a free agent answers at once is decided without the general path's
steps (`SkillsAcd._taken_at_once`): whatever the roster, capacities, priorities, bullseye
rings, reply windows, routing steps and preferred or last agents, and whatever happened
before, the ACD decides, answers and keeps exactly what the general path does."""

from __future__ import annotations

from dataclasses import fields
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import flowlang.acd.distributor as distributor
from flowlang.acd import AgentProfile, QueueSettings, Ring, SkillsAcd
from flowlang.acd.model import AgentRecord, Interaction
from flowlang.runtime.ports import AgentStep, RoutingNotice
from tests.acd.test_distributor import at, request

AGENTS = st.lists(
    st.tuples(
        st.dictionaries(st.sampled_from(["Cards", "Loans"]), st.integers(1, 4), max_size=2),
        st.integers(1, 3),  # capacity
        st.booleans(),  # answers at once
        st.sampled_from(["Retail", "Loans"]),
    ),
    min_size=1,
    max_size=5,
)
# (operation, conversation or agent number, skills asked, priority, preferred agent, with a
# reply window, with a routing step)
OPS = st.lists(
    st.tuples(
        st.sampled_from(["enqueue", "enqueue", "enqueue", "complete", "accept", "away", "back"]),
        st.integers(0, 9),
        st.dictionaries(st.sampled_from(["Cards", "Loans"]), st.integers(1, 4), max_size=1),
        st.sampled_from([0, 0, 5]),
        st.sampled_from([None, None, "preferred", "last"]),
        st.booleans(),
        st.booleans(),
    ),
    max_size=40,
)


def _acd(roster: list[Any], rings: bool) -> SkillsAcd:
    queues = [
        QueueSettings(
            "Retail",
            rings=(Ring(timedelta(minutes=2), relax_proficiency=2),) if rings else (),
            inactivity_after=timedelta(minutes=30),
        ),
        QueueSettings("Loans", selection="least_occupied"),
    ]
    agents = [
        AgentProfile(
            f"a{n}", frozenset({queue}), dict(skills), frozenset({"en"}), {"message": cap}, auto
        )
        for n, (skills, cap, auto, queue) in enumerate(roster)
    ]
    return SkillsAcd(queues, agents)


def _kept(acd: SkillsAcd) -> tuple[Any, ...]:
    """What the ACD keeps that a later decision reads: interactions, agents, deadlines."""
    interactions = {
        i: tuple(getattr(x, f.name) for f in fields(Interaction))
        for i, x in acd.interactions.items()
    }
    agents = {
        a: tuple(getattr(r, f.name) for f in fields(AgentRecord) if f.name != "pools")
        for a, r in acd.agents.items()
    }
    return interactions, agents, sorted(acd._timers), acd.next_deadline()


def _notices(notices: list[RoutingNotice]) -> list[tuple[Any, ...]]:
    return [(n.kind, n.conversation_id, n.agent, n.queue, n.at, n.data) for n in notices]


@settings(max_examples=200, deadline=None)
@given(AGENTS, OPS, st.booleans())
def test_a_first_routing_taken_at_once_is_decided_as_the_general_path_decides(
    roster: list[Any], ops: list[tuple[Any, ...]], rings: bool
) -> None:
    fast, general = _acd(roster, rings), _acd(roster, rings)
    for number, (op, who, skills, priority, preferring, window, step) in enumerate(ops):
        now = at(number)
        conv, agent = f"c{who}", f"a{who % len(roster)}"
        answers = []
        for acd, shortcut in ((fast, True), (general, False)):
            with pytest.MonkeyPatch.context() as patch:
                if not shortcut:
                    patch.setattr(distributor, "_plain", lambda _request, _queue: False)
                if op == "enqueue":
                    asked = request(
                        conv,
                        "Loans" if who == 9 else "Retail",
                        skills=dict(skills),
                        priority=priority,
                        preferred=[(agent, 5)] if preferring == "preferred" else None,
                        last_agent=agent if preferring == "last" else None,
                        window_closes_at=now + timedelta(hours=1) if window else None,
                    )
                    if step:
                        asked.agent_steps = (AgentStep(None, 60),)
                    answers.append(acd.enqueue(asked, now))
                elif op == "complete":
                    held = acd.interactions.get(conv)
                    answers.append(acd.complete(conv, held.agent or "", None, now) if held else [])
                elif op == "accept":
                    answers.append(acd.accept(conv, agent, now))
                else:
                    state = "away" if op == "away" else "available"
                    answers.append(acd.set_agent_state(agent, state, now))
        assert _notices(answers[0]) == _notices(answers[1]), (number, op)
        assert _kept(fast) == _kept(general), (number, op)


def test_the_shortcut_is_taken_for_a_plain_first_routing_and_not_for_a_timed_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """(So that the test above compares the shortcut, not the general path twice.)"""
    taken: list[str] = []
    original = SkillsAcd._taken_at_once

    def counted(self: SkillsAcd, *args: Any) -> list[RoutingNotice]:
        taken.append(args[0].conversation_id)
        return original(self, *args)

    monkeypatch.setattr(SkillsAcd, "_taken_at_once", counted)
    acd = _acd([({}, 3, True, "Retail")], rings=False)
    assert [n.kind for n in acd.enqueue(request("c1"), at(0))] == ["accepted"]
    windowed = request("c2", window_closes_at=at(60))
    assert [n.kind for n in acd.enqueue(windowed, at(0))] == ["accepted"]
    assert [n.kind for n in acd.enqueue(request("c3", last_agent="a0"), at(0))] == ["accepted"]
    assert taken == ["c1"]


@pytest.mark.parametrize("roster", [[({}, 3, False, "Retail")], [({}, 0, True, "Retail")]])
def test_a_plain_first_routing_looks_for_its_best_agent_once(
    roster: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offered to an agent who does not answer at once, or left waiting with nobody free: the
    agent found for the shortcut is the one `_place` uses, not looked for again."""
    looked: list[str] = []
    original = SkillsAcd._best_agent

    def counted(self: SkillsAcd, *args: Any) -> AgentRecord | None:
        looked.append(args[0].queue)
        return original(self, *args)

    monkeypatch.setattr(SkillsAcd, "_best_agent", counted)
    acd = _acd(roster, rings=False)
    kinds = [n.kind for n in acd.enqueue(request("c1"), at(0))]
    assert kinds == (["offered"] if roster[0][1] else ["waiting"])
    assert looked == ["Retail"]
