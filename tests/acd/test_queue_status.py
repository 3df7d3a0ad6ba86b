"""`SkillsAcd.queue_status`: what `queue("Retail Banking").waiting` and its siblings read in a
flow — interactions waiting, agents on the queue and free, the estimated wait, the service level;
and a flow that decides on them through the Engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_before_any_answer_the_line_moves_no_faster_than_its_longest_wait() -> None:
    centre = acd(agent("ana", "away"))
    centre.enqueue(request("c1"), T0)
    centre.enqueue(request("c2"), T0 + timedelta(minutes=1))
    status = centre.queue_status("Retail", T0 + timedelta(minutes=4))
    assert (status.waiting, status.agents_available, status.position) == (2, 0, None)
    # nobody answered in the 4 minutes c1 has waited: 4 minutes a place, a new one is third
    assert status.estimated_wait == timedelta(minutes=12)
    assert status.service_level is None  # nobody answered or left yet
    mine = centre.queue_status("Retail", T0 + timedelta(minutes=4), "c2")
    assert (mine.position, mine.estimated_wait) == (2, timedelta(minutes=8))


def test_with_nobody_waiting_and_nobody_free_and_no_answers_the_wait_is_not_known() -> None:
    assert acd(agent("ana", "away")).queue_status("Retail", T0).estimated_wait is None


def paced_centre() -> SkillsAcd:
    """Answers at 0, 2 and 4 minutes (a pace of 2 minutes); then nobody is free, and c9 waits
    from 5:30."""
    centre = acd(agent("ana", capacity=9))
    for n, minute in enumerate((0, 2, 4)):
        centre.enqueue(request(f"c{n}"), T0 + timedelta(minutes=minute))
    centre.set_agent_state("ana", "away", T0 + timedelta(minutes=5))
    centre.enqueue(request("c9"), T0 + timedelta(minutes=5, seconds=30))
    return centre


def test_the_estimate_is_the_pace_of_the_recent_answers_times_the_place() -> None:
    centre = paced_centre()
    status = centre.queue_status("Retail", T0 + timedelta(minutes=6))
    assert status.service_level == 100  # the three were answered at once
    assert (status.waiting, status.estimated_wait) == (1, timedelta(minutes=4))  # 2nd place
    mine = centre.queue_status("Retail", T0 + timedelta(minutes=6), "c9")
    assert (mine.position, mine.estimated_wait) == (1, timedelta(minutes=2))


def test_a_line_that_stopped_moving_slows_the_pace_down() -> None:
    centre = paced_centre()
    # c9 has waited 14:30 (it came after the last answer): the line moves no faster than that
    mine = centre.queue_status("Retail", T0 + timedelta(minutes=20), "c9")
    assert mine.estimated_wait == timedelta(minutes=14, seconds=30)


def test_a_conversation_not_waiting_in_the_queue_has_no_place() -> None:
    centre = paced_centre()
    later = T0 + timedelta(minutes=6)
    assert centre.queue_status("Retail", later, "c0").position is None  # with ana
    assert centre.queue_status("Other", later, "c9").position is None  # waits elsewhere
    assert centre.queue_status("Retail", later, "nobody").position is None


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=600), max_size=6),
    st.lists(st.integers(min_value=1, max_value=600), max_size=4),
    st.integers(min_value=0, max_value=3600),
)
def test_a_new_interaction_is_told_the_wait_the_queue_told_before_it_came(
    answered_gaps: list[int], waiting_gaps: list[int], later: int
) -> None:
    """`queue("Retail").estimated_wait` read before routing is what `in_queue.estimated_wait`
    says of the conversation once it waits there, at the same moment: one definition."""
    centre = acd(agent("ana", capacity=99))
    at = T0
    for n, gap in enumerate(answered_gaps):
        at += timedelta(seconds=gap)
        centre.enqueue(request(f"a{n}"), at)
    centre.set_agent_state("ana", "away", at)
    for n, gap in enumerate(waiting_gaps):
        at += timedelta(seconds=gap)
        centre.enqueue(request(f"w{n}"), at)
    now = at + timedelta(seconds=later)
    before = centre.queue_status("Retail", now)
    centre.enqueue(request("new"), now)
    after = centre.queue_status("Retail", now, "new")
    assert after.position == before.waiting + 1
    assert after.estimated_wait == before.estimated_wait


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
