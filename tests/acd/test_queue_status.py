"""`SkillsAcd.queue_status`: what `queue("Retail Banking").waiting` and its siblings read in a
flow — interactions waiting, agents on the queue and free, the estimated wait, the service level;
and a flow that decides on them through the Engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flowlang.acd import SkillsAcd
from flowlang.acd.distributor import STATUS_WINDOW
from flowlang.acd.model import AgentProfile, QueueSettings
from flowlang.runtime.ports import QueueStatus, RoutingRequest
from tests.runtime.test_engine import agent_at, make_engine, message

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def request(conversation: str, queue: str = "Retail") -> RoutingRequest:
    return RoutingRequest(conversation, queue, "message", {}, None, 0, [], None, None)


def acd(*agents: AgentProfile) -> SkillsAcd:
    return SkillsAcd([QueueSettings("Retail", answer_within=timedelta(minutes=2))], agents)


def agent(name: str, state: str = "available", capacity: int = 1) -> AgentProfile:
    return AgentProfile(
        name,
        frozenset({"Retail"}),
        capacity={"message": capacity},
        auto_answer=True,
        state=state,  # type: ignore[arg-type]
    )


def test_an_idle_queue_with_a_free_agent_has_no_wait() -> None:
    status = acd(agent("ana"), agent("ben", "away"), agent("cy", "offline")).queue_status(
        "Retail", T0
    )
    assert status == QueueStatus(
        waiting=0, agents_on_queue=2, agents_available=1, estimated_wait=timedelta(0)
    )


def test_waiting_interactions_and_the_longest_wait_when_nobody_was_answered_yet() -> None:
    centre = acd(agent("ana", "away"))
    centre.enqueue(request("c1"), T0)
    centre.enqueue(request("c2"), T0 + timedelta(minutes=1))
    status = centre.queue_status("Retail", T0 + timedelta(minutes=4))
    assert (status.waiting, status.agents_available) == (2, 0)
    assert status.estimated_wait == timedelta(minutes=4)  # at least the longest wait so far
    assert status.service_level is None  # nobody answered or left yet


def test_the_estimate_and_service_level_come_from_the_recent_answers() -> None:
    centre = acd(agent("ana", "away", capacity=5))
    for n in range(4):
        centre.enqueue(request(f"c{n}"), T0)
    centre.withdraw("c3", T0 + timedelta(minutes=1))  # left unanswered
    centre.set_agent_state("ana", "available", T0 + timedelta(minutes=3))  # answers c0-c2
    status = centre.queue_status("Retail", T0 + timedelta(minutes=3))
    assert status.waiting == 0
    # three answered after 3 minutes (over the 2-minute target), one left: 0 % within target
    assert status.service_level == 0
    assert status.agents_available == 1 and status.estimated_wait == timedelta(0)
    centre.set_agent_state("ana", "away", T0 + timedelta(minutes=3))
    centre.enqueue(request("c9"), T0 + timedelta(minutes=4))
    busy = centre.queue_status("Retail", T0 + timedelta(minutes=5))
    assert busy.waiting == 1 and busy.estimated_wait == timedelta(minutes=3)  # the answers' mean


def test_answers_older_than_the_window_no_longer_count() -> None:
    centre = acd(agent("ana"))
    centre.enqueue(request("c1"), T0)  # answered at once: within target
    later = T0 + STATUS_WINDOW + timedelta(seconds=1)
    assert centre.queue_status("Retail", T0).service_level == 100
    assert centre.queue_status("Retail", later).service_level is None


def test_a_flow_tells_the_customer_how_busy_the_queue_is() -> None:
    body = """\
    set waiting to queue("Retail").waiting
    if queue("Retail").agents_available == 0 and waiting >= 1:
        reply "We are busy: {{ waiting }} before you"
    else:
        reply "An agent is free"
    route to queue "Retail"
    """
    engine, sent = make_engine(
        body, agents=[agent_at("ana", "Retail", capacity=1)], header="var waiting: number = 0"
    )
    engine.handle(message("hi", sender="447700900001"))  # ana takes it: now busy
    engine.handle(message("hi", sender="447700900002", at=timedelta(seconds=10)))  # waits
    engine.handle(message("hi", sender="447700900003", at=timedelta(seconds=20)))
    assert [m.content["text"] for m in sent.sent] == [
        "An agent is free",
        "An agent is free",  # ana is busy, but nobody waits before this customer
        "We are busy: 1 before you",
    ]
