"""In-queue flows (`while queued`): periodic messages with the position and estimated wait
from the ACD, a priority change after a while, the customer writing while waiting (and leaving
a message); they stop when an agent accepts, and their timers survive a restart."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from flowlang.acd import AgentProfile, QueueSettings, SkillsAcd
from flowlang.events import AgentAction
from flowlang.runtime.engine import Engine
from flowlang.runtime.memory import MemoryStore, RecordingAdapter
from flowlang.runtime.ports import ConversationStore, RoutingRequest
from flowlang.store import SqliteStore
from tests.runtime.helpers import NOW, engine_of, program
from tests.runtime.test_engine import agent, message

IN_QUEUE = """\
while queued in "Retail":
    every 2m:
        reply "You are number {{ in_queue.position }} in line."
    after 5m:
        set priority to 50
        reply "Sorry for the wait ({{ in_queue.waited_minutes }} min). Reply MESSAGE to leave one."
    when customer writes:
        if lower(trim(message.text)) == "message":
            set conversation data "callback" to "yes"
            reply "We will get back to you."
            end "left a message"
        reply "Thanks, the agent will see this."
"""


def _engine(store: ConversationStore | None = None) -> tuple[Engine, RecordingAdapter]:
    sent = RecordingAdapter()
    ana = AgentProfile("ana", frozenset({"Retail"}), {}, capacity={"message": 3}, auto_answer=True)
    acd = SkillsAcd(queues=[QueueSettings("Retail")], agents=[ana])
    acd.set_agent_state("ana", "away", NOW)
    prog = program('route to queue "Retail"', IN_QUEUE)
    return engine_of(prog, adapters=[sent], acd=acd, store=store or MemoryStore()), sent


def _texts(sent: RecordingAdapter, who: str | None = None) -> list[str]:
    return [str(m.content.get("text")) for m in sent.sent if who is None or m.recipient == who]


def _at(minutes: float) -> Any:
    return NOW + timedelta(minutes=minutes)


def test_a_waiting_customer_is_told_their_place_in_line_every_two_minutes() -> None:
    engine, sent = _engine()
    engine.handle(message("hello", sender="447700900001"))
    engine.handle(message("hi", at=timedelta(minutes=1), sender="447700900002"))
    engine.advance(_at(4.5))
    assert _texts(sent, "447700900001") == ["You are number 1 in line."] * 2
    assert _texts(sent, "447700900002") == ["You are number 2 in line."]


def test_after_five_minutes_the_priority_rises_and_the_wait_goes_on() -> None:
    engine, sent = _engine()
    first = engine.handle(message("hello"))
    engine.advance(_at(5))
    assert _texts(sent)[-1] == "Sorry for the wait (5 min). Reply MESSAGE to leave one."
    acd = engine.acd
    assert isinstance(acd, SkillsAcd)
    waiting = acd.interactions[first.conversation_id or ""]
    assert (waiting.priority, waiting.entered_at, waiting.phase) == (50, NOW, "waiting")
    store = engine.store
    assert isinstance(store, MemoryStore)
    assert [e["priority"] for e in store.events if e["kind"] == "queued"] == [0, 50]


def test_the_messages_stop_when_an_agent_accepts() -> None:
    engine, sent = _engine()
    engine.handle(message("hello"))
    engine.advance(_at(2))
    engine.set_agent_state("ana", "available", _at(3))
    engine.advance(_at(30))
    assert _texts(sent) == ["You are number 1 in line."]


def test_the_customer_who_writes_while_waiting_gets_the_blocks_answer_and_stays() -> None:
    engine, sent = _engine()
    first = engine.handle(message("hello"))
    engine.handle(message("are you there?", at=timedelta(minutes=1)))
    assert _texts(sent) == ["Thanks, the agent will see this."]
    conv = engine.store.get_conversation(first.conversation_id or "")
    assert conv is not None and conv.status == "queued"


def test_leaving_a_message_takes_the_customer_out_of_the_queue() -> None:
    engine, sent = _engine()
    first = engine.handle(message("hello"))
    engine.handle(message(" Message ", at=timedelta(minutes=1)))
    conv = engine.store.get_conversation(first.conversation_id or "")
    assert conv is not None and conv.status == "closed"
    assert conv.data["conversation.callback"] == "yes"
    acd = engine.acd
    assert isinstance(acd, SkillsAcd) and acd.waiting("Retail") == []
    engine.advance(_at(30))  # no more in-queue messages
    assert _texts(sent) == ["We will get back to you."]


def test_the_in_queue_timers_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "cc.sqlite"
    with SqliteStore(path) as store:
        engine, _sent = _engine(store)
        engine.handle(message("hello"))
        engine.advance(_at(2))
    with SqliteStore(path) as store:  # a new process
        engine, sent = _engine(store)
        engine.recover(_at(3))
        engine.advance(_at(6.5))
    assert _texts(sent) == [
        "You are number 1 in line.",
        "Sorry for the wait (5 min). Reply MESSAGE to leave one.",
        "You are number 1 in line.",
    ]


def test_the_acd_estimates_the_wait_from_its_recent_answers() -> None:
    ana = AgentProfile("ana", frozenset({"Retail"}), {}, capacity={"message": 9}, auto_answer=True)
    acd = SkillsAcd(queues=[QueueSettings("Retail")], agents=[ana])

    def enqueue(conv: str, minutes: float) -> None:
        request = RoutingRequest(conv, "Retail", "message", {}, None, 0, [], None, None)
        acd.enqueue(request, _at(minutes))

    enqueue("c1", 0)
    enqueue("c2", 4)  # answered 4 minutes after c1: the pace
    acd.set_agent_state("ana", "away", _at(5))
    enqueue("c3", 5)
    enqueue("c4", 6)
    assert acd.queue_status("Retail", _at(7), "c1").position is None  # with the agent
    found = acd.queue_status("Retail", _at(7), "c4")
    assert (found.waiting, found.position, found.estimated_wait) == (2, 2, timedelta(minutes=8))


TRANSFER_FLOW = """\
while queued:
    every 2m:
        reply "In {{ in_queue.queue }}: number {{ in_queue.position }}."
    after 3m:
        reply "Still in {{ in_queue.queue }} after {{ in_queue.waited_minutes }} min."
"""


def test_after_a_transfer_to_another_queue_the_block_starts_again_there() -> None:
    """The block restarts for the new wait: its `every` and `after` count from the transfer,
    in the new queue (its own block, or the one for every queue)."""
    sent = RecordingAdapter()
    ana = AgentProfile("ana", frozenset({"Retail"}), {}, capacity={"message": 3}, auto_answer=True)
    kai = AgentProfile("kai", frozenset({"Loans"}), {}, capacity={"message": 3}, auto_answer=True)
    acd = SkillsAcd(queues=[QueueSettings("Retail"), QueueSettings("Loans")], agents=[ana, kai])
    acd.set_agent_state("kai", "away", NOW)
    prog = program('route to queue "Retail"', TRANSFER_FLOW)
    engine = engine_of(prog, adapters=[sent], acd=acd, store=MemoryStore())
    conversation = engine.handle(message("hello")).conversation_id or ""  # ana takes it
    engine.advance(_at(9))
    assert _texts(sent) == []  # with an agent: no in-queue messages
    engine.handle(
        agent(
            conversation,
            AgentAction.TRANSFER,
            timedelta(minutes=10),
            agent_id="ana",
            transfer_queue="Loans",
        )
    )
    engine.advance(_at(14.5))
    assert _texts(sent) == [
        "In Loans: number 1.",
        "Still in Loans after 3 min.",
        "In Loans: number 1.",
    ]


class _Clock:
    def __init__(self, at: Any) -> None:
        self.at = at

    def now(self) -> Any:
        return self.at


def test_what_fell_due_while_the_engine_was_down_runs_once_at_the_time_it_runs() -> None:
    """Nothing advanced the engine for an hour (it was down): the `every 2m` repeats missed are
    not sent one after another as if on time; the one due runs once, at the real time, and the
    next comes 2 minutes after that. The `after 5m` runs once, knowing how long they waited."""
    clock = _Clock(NOW)
    sent = RecordingAdapter()
    ana = AgentProfile("ana", frozenset({"Retail"}), {}, capacity={"message": 3}, auto_answer=True)
    acd = SkillsAcd(queues=[QueueSettings("Retail")], agents=[ana])
    acd.set_agent_state("ana", "away", NOW)
    store = MemoryStore()
    prog = program('route to queue "Retail"', IN_QUEUE)
    engine = engine_of(prog, adapters=[sent], acd=acd, store=store, clock=clock)
    engine.handle(message("hello"))
    clock.at = _at(61)
    outcomes = engine.advance(_at(61))
    assert _texts(sent) == [
        "You are number 1 in line.",
        "Sorry for the wait (61 min). Reply MESSAGE to leave one.",
    ]
    assert [o.note for o in outcomes if o.note and "late" in o.note] == [
        f"ran 59 min 0 s late (due {_at(2).isoformat()})",
        f"ran 56 min 0 s late (due {_at(5).isoformat()})",
    ]
    ran = [e["at"] for e in store.events if e["kind"] == "flow_path"]
    assert ran[-2:] == [_at(61), _at(61)]  # logged when they ran, not when they were due
    clock.at = _at(62.5)
    engine.advance(_at(62.5))  # the next repeat keeps the 2-minute rhythm: due at 62 min
    assert _texts(sent)[2:] == ["You are number 1 in line."]


def test_a_dry_run_without_a_clock_runs_each_repeat_on_time() -> None:
    """Stepping time on (a dry-run, a simulation: no clock) is not being late."""
    engine, sent = _engine()
    engine.handle(message("hello"))
    outcomes = engine.advance(_at(61))
    assert _texts(sent).count("You are number 1 in line.") == 30
    assert not any("late" in (o.note or "") for o in outcomes)


def test_a_timer_run_a_moment_after_it_was_due_does_not_say_it_was_late() -> None:
    """The service wakes a few milliseconds after a timer is due: that is on time, and the
    outcome's note says nothing of lateness; a second or more late is said."""
    clock = _Clock(NOW)
    ana = AgentProfile("ana", frozenset({"Retail"}), {}, capacity={"message": 3}, auto_answer=True)
    acd = SkillsAcd(queues=[QueueSettings("Retail")], agents=[ana])
    acd.set_agent_state("ana", "away", NOW)
    prog = program('route to queue "Retail"', IN_QUEUE)
    engine = engine_of(prog, adapters=[RecordingAdapter()], acd=acd, clock=clock)
    engine.handle(message("hello"))
    clock.at = _at(2) + timedelta(milliseconds=7)
    on_time = engine.advance(clock.at)
    clock.at = _at(4) + timedelta(seconds=3)
    late = engine.advance(clock.at)
    assert [o.note for o in on_time if o.note and "late" in o.note] == []
    assert [o.note for o in late if o.note and "late" in o.note] == [
        f"ran 0 min 3 s late (due {_at(4).isoformat()})"
    ]
