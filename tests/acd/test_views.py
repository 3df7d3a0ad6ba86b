"""What the built-in ACD shows a host through the `Acd` port: read-only copies of its agents
and interactions, an agent's work, and the interactions waiting per queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flowlang.acd import AgentProfile, QueueSettings, SkillsAcd
from flowlang.acd.model import AgentState
from flowlang.runtime.ports import AcdAgent, AcdInteraction, RoutingRequest

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
QUEUES = [QueueSettings("Retail", offer_timeout=timedelta(seconds=30)), QueueSettings("Cards")]


def agent(name: str, state: AgentState = "available") -> AgentProfile:
    return AgentProfile(
        name, frozenset({"Retail"}), {"loans": 2}, capacity={"message": 2}, state=state
    )


def request(conv: str, queue: str = "Retail") -> RoutingRequest:
    return RoutingRequest(conv, queue, "message", {"loans": 1}, None, 0, [], None, None)


def test_an_agent_and_an_interaction_are_shown_as_the_acd_holds_them() -> None:
    acd = SkillsAcd(QUEUES, [agent("al"), agent("bo", "away")])
    acd.enqueue(request("c1"), T0)  # offered to al, who does not answer at once
    assert acd.agent_view("al") == AcdAgent(
        "al", "available", frozenset({"Retail"}), {"message": 2}, {"c1": "message"}
    )
    assert acd.interaction_view("c1") == AcdInteraction(
        "c1",
        "offered",
        "Retail",
        "message",
        T0,
        "al",
        {"loans": 1},
        T0 + timedelta(seconds=30),
    )
    assert [a.id for a in acd.agent_views()] == ["al", "bo"]
    assert acd.agent_views()[1].state == "away"
    assert acd.agent_view("nobody") is None and acd.interaction_view("c9") is None


def test_a_view_is_a_copy_that_changes_nothing_in_the_acd() -> None:
    acd = SkillsAcd(QUEUES, [agent("al")])
    acd.enqueue(request("c1"), T0)
    shown = acd.agent_view("al")
    assert shown is not None
    acd.accept("c1", "al", T0)
    acd.complete("c1", "al", None, T0)  # no after-call work: al holds nothing now
    assert dict(shown.holding) == {"c1": "message"}  # what was shown then
    assert acd.agents["al"].holding == {}


def test_an_agents_work_views_are_their_work() -> None:
    acd = SkillsAcd(QUEUES, [agent("al")])
    acd.enqueue(request("c1"), T0)
    acd.enqueue(request("c2"), T0)
    acd.accept("c1", "al", T0)
    assert [(i.conversation_id, i.phase) for i in acd.work_views("al", T0)] == [
        (i.id, i.phase) for i in acd.work_of("al", T0)
    ]
    assert [i.conversation_id for i in acd.work_views("al", T0 + timedelta(minutes=1))] == ["c1"]


def test_waiting_counts_name_every_queue_and_the_interactions_for_one_agent_alone() -> None:
    acd = SkillsAcd(QUEUES, [agent("al", "away")])
    assert acd.waiting_counts() == {"Retail": 0, "Cards": 0}
    acd.enqueue(request("c1"), T0)
    acd.enqueue(request("c2"), T0)
    acd.request_agent("c3", "al", "message", 60, T0)  # waits for al alone
    assert acd.waiting_counts() == {"Retail": 2, "Cards": 0, "": 1}
    acd.set_agent_state("al", "available", T0)  # offered: still not with an agent
    assert acd.waiting_counts() == {"Retail": 2, "Cards": 0, "": 1}
    acd.accept("c1", "al", T0)
    assert acd.waiting_counts() == {"Retail": 1, "Cards": 0, "": 1}
