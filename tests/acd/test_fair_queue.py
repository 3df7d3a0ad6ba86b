"""A fair queue: a conversation routed again to the queue it waits in keeps its place and its
wait; timers fire in the order they are due; a wait for one agent reads as waiting."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from flowlang.acd import AgentProfile, QueueSettings, SkillsAcd
from flowlang.events import AgentAction
from flowlang.reporting import InteractionLog, Scope, queue_performance
from flowlang.runtime.engine import Engine
from flowlang.runtime.memory import MemoryStore
from tests.acd.test_distributor import T0, at, request, seen
from tests.acd.test_engine_with_acd import NOW, TwentyFourHours, agent_event, web
from tests.runtime.helpers import engine_of, program

STILL_WAITING = """\
route to queue "Retail":
    timeout 10m
    on timeout:
        reply "Still waiting: you keep your place."
        route to queue "Retail"
"""


# ---------------------------------------------------------------- the ACD


def solo(name: str = "ann") -> AgentProfile:
    """An auto-answer agent of Retail who takes one conversation at a time."""
    return AgentProfile(name, frozenset({"Retail"}), {}, frozenset(), {"message": 1}, True)


def test_routing_again_to_the_same_queue_keeps_the_place_and_the_wait() -> None:
    acd = SkillsAcd(agents=[solo()])
    acd.set_agent_state("ann", "away", T0)
    acd.enqueue(request("first"), at(0))
    acd.enqueue(request("second"), at(5))
    assert seen(acd.enqueue(request("first"), at(10))) == [("waiting", "first", None)]
    assert [i.id for i in acd.waiting()] == ["first", "second"]
    notices = acd.set_agent_state("ann", "available", at(11))
    assert [(n.conversation_id, n.data["waited_seconds"]) for n in notices] == [("first", 660)]


def test_a_new_arrival_of_a_withdrawn_conversation_queues_behind_those_already_waiting() -> None:
    acd = SkillsAcd(agents=[solo()])
    acd.set_agent_state("ann", "away", T0)
    acd.enqueue(request("left"), at(0))
    acd.enqueue(request("stayed"), at(5))
    acd.withdraw("left", at(6))
    acd.enqueue(request("left"), at(10))  # back later: a new arrival, its old entry is stale
    notices = acd.set_agent_state("ann", "available", at(11))
    assert [n.conversation_id for n in notices] == ["stayed"]


# ---------------------------------------------------------------- through the engine


def engine_for(flow: str, *agents: AgentProfile) -> tuple[Engine, MemoryStore]:
    store = MemoryStore()
    acd = SkillsAcd([QueueSettings("Retail")], agents)
    return engine_of(program(flow), store=store, acd=acd, policy=TwentyFourHours()), store


def test_a_still_waiting_reply_keeps_the_conversation_in_line_and_its_wait_counts_on() -> None:
    engine, store = engine_for(STILL_WAITING, solo("ana"))
    engine.set_agent_state("ana", "away", NOW)
    first = engine.handle(web("v1", "hello", 0)).conversation_id
    second = engine.handle(web("v2", "hello", 5)).conversation_id
    engine.advance(NOW + timedelta(minutes=11))  # v1's timeout: "still waiting", same queue
    sent = [e for e in store.events if e["kind"] == "message_out"]
    assert [e["conversation_id"] for e in sent] == [first]
    assert [e["kind"] for e in store.events if e["kind"] in ("queue_timeout", "withdrawn")] == []
    moved = engine.set_agent_state("ana", "available", NOW + timedelta(minutes=11, seconds=30))
    accepted = [n for n in moved.notices if n.kind == "accepted"]
    assert [(n.conversation_id, n.data["waited_seconds"]) for n in accepted] == [(first, 690)]
    view = store.get_conversation(second)
    assert view is not None and view.status == "queued"
    # The report measures the whole wait, 11m30s: outside a 5-minute service level.
    report = queue_performance(InteractionLog.from_events(store.events), Scope())
    (row,) = report.rows
    assert (row["routed"], row["answered"], row["wait_longest"]) == (2, 1, 690)
    assert row["service_level"] == 0


def test_a_late_advance_fires_the_window_expiry_before_a_later_queue_timeout() -> None:
    flow = 'route to queue "Retail":\n    timeout 25h\n    on timeout:\n        reply "Sorry."\n'
    engine, store = engine_for(flow)  # nobody to answer
    conv = engine.handle(web("v1", "hello", 0)).conversation_id
    engine.advance(NOW + timedelta(hours=26))
    kinds = [e["kind"] for e in store.events]
    assert "expired" in kinds and "queue_timeout" not in kinds
    assert "message_out" not in kinds  # the flow ended at 24 h: its 25-hour timeout is void
    view = store.get_conversation(conv)
    assert view is not None and view.status == "closed"


def test_timers_due_by_a_late_advance_fire_in_the_order_they_are_due() -> None:
    flow = 'route to queue "Retail":\n    timeout 23h\n    on timeout:\n        reply "Sorry."\n'
    engine, store = engine_for(flow)
    engine.handle(web("v1", "hello", 0))
    engine.advance(NOW + timedelta(hours=26))
    order = [e["kind"] for e in store.events if e["kind"] in ("queue_timeout", "expired")]
    assert order == ["queue_timeout"]  # at 23 h it left the queue: nothing expires at 24 h
    assert [e["kind"] for e in store.events].count("message_out") == 1


LAST_AGENT = """\
if conversation.last_agent is set:
    route to last agent wait 5m
route to queue "Retail"
"""


def test_waiting_for_the_last_agent_reads_as_queued_with_no_agent() -> None:
    engine, store = engine_for(LAST_AGENT, solo("ana"))
    conv = engine.handle(web("v1", "hello", 0)).conversation_id or ""
    engine.handle(agent_event(conv, AgentAction.COMPLETE, 2))
    engine.set_agent_state("ana", "away", NOW + timedelta(minutes=3))
    engine.handle(web("v1", "me again", 4))
    view = store.get_conversation(conv)
    assert view is not None and (view.status, view.agent) == ("queued", None)
    assert view.last_agent == "ana"
    # ana comes back within the wait: the conversation is hers again.
    engine.set_agent_state("ana", "available", NOW + timedelta(minutes=6))
    view = store.get_conversation(conv)
    assert view is not None and (view.status, view.agent) == ("with_agent", "ana")


KEEP_WAITING = """\
route to queue "Retail":
    priority 5
    timeout 10m
    on timeout:
        reply "Thanks for waiting: you keep your place in line."
        keep waiting
"""


def test_keep_waiting_replies_every_timeout_and_never_leaves_the_queue() -> None:
    engine, store = engine_for(KEEP_WAITING, solo("ana"))
    engine.set_agent_state("ana", "away", NOW)
    first = engine.handle(web("v1", "hello", 0)).conversation_id
    engine.handle(web("v2", "hello", 5))
    engine.advance(NOW + timedelta(minutes=24))  # v1 at 10 and 20 minutes, v2 at 15
    sent = [e["conversation_id"] for e in store.events if e["kind"] == "message_out"]
    assert sent.count(first) == 2 and len(sent) == 3
    left = [e["kind"] for e in store.events if e["kind"] in ("queue_timeout", "withdrawn")]
    assert left == []
    view = store.get_conversation(first or "")
    assert view is not None and view.status == "queued"
    moved = engine.set_agent_state("ana", "available", NOW + timedelta(minutes=26))
    accepted = [n for n in moved.notices if n.kind == "accepted"]
    assert [(n.conversation_id, n.data["waited_seconds"]) for n in accepted] == [(first, 26 * 60)]
    # v1's flow went on past the route: no more "thanks for waiting" for it; v2 still hears.
    engine.advance(NOW + timedelta(minutes=40))
    sent = [e["conversation_id"] for e in store.events if e["kind"] == "message_out"]
    assert sent.count(first) == 2 and len(sent) == 5


def test_routing_again_while_an_agent_has_it_on_offer_leaves_the_offer_open() -> None:
    manual = AgentProfile("ann", frozenset({"Retail"}), {}, frozenset(), {"message": 1}, False)
    acd = SkillsAcd(agents=[manual])
    assert seen(acd.enqueue(request("c1"), at(0))) == [("offered", "c1", "ann")]
    assert acd.enqueue(request("c1"), at(1)) == []
    accepted = acd.accept("c1", "ann", at(1.5))
    assert [(n.kind, n.data["waited_seconds"]) for n in accepted] == [("accepted", 90)]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=30), min_size=1, max_size=8),
    st.lists(st.tuples(st.integers(0, 7), st.integers(1, 60)), max_size=12),
)
def test_whatever_re_entries_happen_agents_serve_in_order_of_first_arrival(
    gaps: list[int], re_entries: list[tuple[int, int]]
) -> None:
    acd = SkillsAcd(agents=[solo()])
    acd.set_agent_state("ann", "away", T0)
    arrivals: dict[str, float] = {}
    clock = 0.0
    for index, gap in enumerate(gaps):
        clock += gap
        arrivals[f"c{index}"] = clock
        acd.enqueue(request(f"c{index}"), at(clock))
    for who, later in sorted(re_entries, key=lambda r: r[1]):
        conv = f"c{who % len(gaps)}"
        acd.enqueue(request(conv), at(clock + later))  # "still waiting": routed again
    end = clock + 61
    served: list[tuple[str, float]] = []
    notices = acd.set_agent_state("ann", "available", at(end))
    while notices:
        (accepted,) = [n for n in notices if n.kind == "accepted"]
        served.append((accepted.conversation_id, accepted.data["waited_seconds"]))
        notices = acd.complete(accepted.conversation_id, "ann", None, at(end))
        notices = [n for n in notices if n.kind == "accepted"]
    assert [c for c, _ in served] == list(arrivals)  # first come, first served
    assert [w for _, w in served] == [(end - arrivals[c]) * 60 for c in arrivals]
