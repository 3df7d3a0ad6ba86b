"""The engine driving the built-in ACD: offers accepted through agent events, windows that
expire in the queue, wrap-up codes, agent states — and what the store's event log records."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from flowlang.acd import AgentProfile, QueueSettings, SkillsAcd
from flowlang.events import AgentAction, AgentEvent, EventKind, InboundEvent
from flowlang.reporting import (
    InteractionLog,
    Scope,
    agent_performance,
    interaction_details,
    queue_performance,
)
from flowlang.runtime.engine import Engine
from flowlang.runtime.memory import AllowAll, MemoryStore
from flowlang.runtime.ports import ConversationStore, ConversationView
from flowlang.store import SqliteStore
from tests.runtime.helpers import NOW, engine_of, program

FLOW = """\
route to queue "Retail":
    timeout 30h
    on timeout:
        reply "Sorry, nobody is free."
"""


class TwentyFourHours(AllowAll):
    """Free-form replies for 24 hours after the customer's last message."""

    def window_closes_at(self, conversation: ConversationView) -> datetime | None:
        last = conversation.last_inbound_at or conversation.started_at
        return last + timedelta(hours=24)


def engine_on(
    store: ConversationStore, *agents: AgentProfile, queue: QueueSettings | None = None
) -> Engine:
    acd = SkillsAcd([queue or QueueSettings("Retail")], agents)
    return engine_of(program(FLOW), store=store, acd=acd, policy=TwentyFourHours())


def make(*agents: AgentProfile, queue: QueueSettings | None = None) -> tuple[Engine, MemoryStore]:
    store = MemoryStore()
    return engine_on(store, *agents, queue=queue), store


def message(text: str, minutes: float = 0, event_id: str = "m1") -> InboundEvent:
    return InboundEvent(
        event_id=event_id,
        channel="whatsapp",
        sender_id="447700900123",
        text=text,
        timestamp=NOW + timedelta(minutes=minutes),
    )


def agent_event(conv: str, action: AgentAction, minutes: float, **extra: str) -> AgentEvent:
    return AgentEvent(
        event_id=f"{action}-{minutes}",
        conversation_id=conv,
        agent_id=extra.pop("agent_id", "ana"),
        action=action,
        timestamp=NOW + timedelta(minutes=minutes),
        **extra,
    )


def ana(auto: bool = False) -> AgentProfile:
    return AgentProfile("ana", frozenset({"Retail"}), {}, frozenset(), {"message": 2}, auto)


def kinds(store: MemoryStore) -> list[str]:
    return [
        e["kind"]
        for e in store.events
        if e["kind"] not in ("message_in", "message_out", "flow_path")
    ]


def test_an_offer_accepted_by_the_agent_resumes_the_flow() -> None:
    engine, store = make(ana())
    first = engine.handle(message("hi"))
    conv = first.conversation_id or ""
    assert [n.kind for n in first.notices] == ["offered"]
    assert first.deliveries == []
    accepted = engine.handle(agent_event(conv, AgentAction.ACCEPT, 1))
    assert [(n.kind, n.agent) for n in accepted.notices] == [("accepted", "ana")]
    view = store.get_conversation(conv)
    assert view is not None and (view.status, view.agent) == ("with_agent", "ana")
    assert kinds(store) == ["queued", "offered", "accepted"]


def test_a_late_accept_is_refused_with_a_note() -> None:
    engine, _store = make(ana())
    conv = engine.handle(message("hi")).conversation_id or ""
    engine.advance(NOW + timedelta(minutes=3))  # offer timeout: 2 minutes
    late = engine.handle(agent_event(conv, AgentAction.ACCEPT, 3))
    assert late.refusal is not None and late.refusal.code == "offer_not_open"
    assert late.note == (
        f"ana's accept refused: the offer of {conv} is not open to ana: it is waiting in Retail"
    )


def test_the_window_closing_in_the_queue_expires_it_and_ends_the_flow() -> None:
    engine, store = make(queue=QueueSettings("Retail"))  # nobody in the queue
    conv = engine.handle(message("hi")).conversation_id or ""
    engine.advance(NOW + timedelta(hours=24))
    view = store.get_conversation(conv)
    assert view is not None and view.status == "closed"
    assert kinds(store)[-2:] == ["priority_raised", "expired"]
    # The flow's queue timeout (30 h) no longer applies: nothing is sent when it passes.
    engine.advance(NOW + timedelta(hours=31))
    assert [e["kind"] for e in store.events if e["kind"] == "message_out"] == []


def test_a_required_wrap_up_code_is_enforced_by_the_engine() -> None:
    """`complete` without a code (or with one the queue does not declare) is refused: the
    conversation stays with the agent, nothing is logged, and no code-less close happens."""
    queue = QueueSettings(
        "Retail",
        wrap_up_required=True,
        wrap_up_codes=frozenset({"Resolved", "Follow-up"}),
        after_call_work=timedelta(minutes=2),
    )
    engine, store = make(ana(auto=True), queue=queue)
    conv = engine.handle(message("hi")).conversation_id or ""
    logged = len(store.events)
    for code, problem in ((None, "wrap_up_required"), ("Sorted", "wrap_up_invalid")):
        extra = {"wrap_up": code} if code else {}
        refused = engine.handle(agent_event(conv, AgentAction.COMPLETE, 5, **extra))
        assert refused.refusal is not None and refused.refusal.code == problem
        assert refused.notices == []
        view = store.get_conversation(conv)
        assert view is not None and (view.status, view.agent, view.wrap_up) == (
            "with_agent",
            "ana",
            None,
        )
        assert len(store.events) == logged  # no completed, no wrap-up, no notice
    assert refused.note == (
        "ana's complete refused: 'Sorted' is not a wrap-up code of Retail: Follow-up, Resolved"
    )
    done = engine.handle(agent_event(conv, AgentAction.COMPLETE, 6, wrap_up="Resolved"))
    assert done.refusal is None and [n.kind for n in done.notices] == ["after_call_work"]
    view = store.get_conversation(conv)
    assert view is not None and (view.status, view.wrap_up, view.wrap_up_agent) == (
        "closed",
        "Resolved",
        "ana",
    )
    assert kinds(store)[-2:] == ["completed", "after_call_work"]


def test_a_customer_who_leaves_leaves_the_agent_a_wrap_up_to_give() -> None:
    queue = QueueSettings("Retail", wrap_up_required=True, wrap_up_codes=frozenset({"Resolved"}))
    engine, store = make(ana(auto=True), queue=queue)
    conv = engine.handle(web("v1", "hello", 0)).conversation_id or ""
    engine.handle(web("v1", "", 3, EventKind.CLOSE))
    view = store.get_conversation(conv)
    assert view is not None and (view.status, view.wrap_up_agent) == ("closed", "ana")
    missing = engine.handle(agent_event(conv, AgentAction.WRAP_UP, 4))
    assert missing.refusal is not None and missing.refusal.code == "wrap_up_required"
    code = engine.handle(agent_event(conv, AgentAction.WRAP_UP, 6, wrap_up="Resolved"))
    assert code.refusal is None and [n.kind for n in code.notices] == ["wrap_up_ended"]
    view = store.get_conversation(conv)
    assert view is not None and (view.wrap_up, view.wrap_up_agent) == ("Resolved", None)
    assert kinds(store)[-2:] == ["wrap_up", "wrap_up_ended"]


def test_agent_states_go_through_the_engine_and_are_logged() -> None:
    engine, store = make(ana(auto=True))
    engine.set_agent_state("ana", "away", NOW)
    conv = engine.handle(message("hi", 1)).conversation_id or ""
    back = engine.set_agent_state("ana", "available", NOW + timedelta(minutes=4))
    assert [(n.kind, n.conversation_id) for n in back.notices] == [("accepted", conv)]
    view = store.get_conversation(conv)
    assert view is not None and view.status == "with_agent"
    states = [(e["agent"], e["state"]) for e in store.events if e["kind"] == "agent_state"]
    assert states == [("ana", "away"), ("ana", "available")]


def test_a_closed_chat_frees_its_agent_for_the_next_customer_waiting() -> None:
    one_at_a_time = AgentProfile(
        "ana", frozenset({"Retail"}), {}, frozenset(), {"message": 1}, True
    )
    engine, store = make(one_at_a_time)
    first = engine.handle(web("v1", "hello", 0)).conversation_id
    second = engine.handle(web("v2", "hi there", 1)).conversation_id
    assert first and second
    assert store.get_conversation(second).status == "queued"  # type: ignore[union-attr]
    closed = engine.handle(web("v1", "", 5, EventKind.CLOSE))
    assert closed.note == "the customer closed the chat; the interaction is withdrawn"
    # The agent's other customer gets her at once: the notice about them was applied.
    assert [(n.kind, n.conversation_id) for n in closed.notices] == [
        ("withdrawn", first),
        ("accepted", second),
    ]
    assert store.get_conversation(second).status == "with_agent"  # type: ignore[union-attr]
    assert store.get_conversation(first).status == "closed"  # type: ignore[union-attr]
    logged = [
        (e["kind"], e["conversation_id"])
        for e in store.events
        if e["at"] == NOW + timedelta(minutes=5)
    ]
    assert ("abandoned", first) in logged and ("accepted", second) in logged


def test_closing_the_chat_while_waiting_is_an_abandon() -> None:
    engine, store = make()  # nobody to answer
    conv = engine.handle(web("v1", "hello", 0)).conversation_id
    engine.handle(web("v1", "", 3, EventKind.CLOSE))
    assert [(e["kind"], e.get("phase"), e.get("reason")) for e in store.events[-2:]] == [
        ("withdrawn", "waiting", None),
        ("abandoned", None, "chat closed"),
    ]
    assert store.get_conversation(conv).status == "closed"  # type: ignore[arg-type, union-attr]
    assert engine.acd.waiting() == []  # type: ignore[attr-defined]


def web(
    sender: str, text: str, minutes: float, kind: EventKind = EventKind.MESSAGE
) -> InboundEvent:
    return InboundEvent(
        event_id=f"{sender}-{minutes}",
        channel="web",
        kind=kind,
        sender_id=sender,
        text=text,
        timestamp=NOW + timedelta(minutes=minutes),
    )


def test_after_a_restart_the_acd_takes_back_queued_and_assigned_conversations(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cc.sqlite"
    single = AgentProfile("ana", frozenset({"Retail"}), {}, frozenset(), {"message": 1}, True)
    with SqliteStore(path) as store:
        engine = engine_on(store, single)
        held = engine.handle(web("v1", "hello", 0)).conversation_id
        waiting = engine.handle(web("v2", "hi", 1)).conversation_id
        assert held and waiting
        assert store.get_conversation(held).agent == "ana"  # type: ignore[union-attr]
    # The process stops; a new one starts with a fresh ACD on the same store.
    with SqliteStore(path) as store:
        engine = engine_on(store, single)
        acd = engine.acd
        assert isinstance(acd, SkillsAcd)
        (recovered,) = engine.recover(NOW + timedelta(minutes=10))
        assert recovered.note == "2 routed conversation(s) given back to the ACD"
        assert recovered.notices == []  # ana still holds v1: v2 keeps waiting
        assert [i.id for i in acd.waiting()] == [waiting]
        assert acd.agents["ana"].holding == {held: "message"}
        # When ana completes v1, v2 is hers, having waited since before the restart.
        done = engine.handle(agent_event(held, AgentAction.COMPLETE, 12))
        accepted = [n for n in done.notices if n.kind == "accepted"]
        assert [(n.conversation_id, n.data["waited_seconds"]) for n in accepted] == [
            (waiting, 11 * 60)
        ]
        assert store.get_conversation(waiting).status == "with_agent"  # type: ignore[union-attr]


def test_after_a_restart_what_an_agent_holds_is_theirs_before_the_queue_is_offered() -> None:
    # An agent's conversation routed after one still waiting (a transfer to them, say): the
    # ACD takes it back first, so the waiting one is not offered on top of it.
    single = AgentProfile("ana", frozenset({"Retail"}), {}, frozenset(), {"message": 1}, True)
    engine, store = make(single)
    held = engine.handle(web("v1", "hello", 0)).conversation_id or ""
    waiting = engine.handle(web("v2", "hi", 1)).conversation_id or ""
    conv = store.get_conversation(held)
    assert conv is not None and conv.routing and conv.agent == "ana"
    conv.routing["entered_at"] = (NOW + timedelta(minutes=2)).isoformat()
    store.save_conversation(conv)
    restarted = engine_on(store, single)
    (recovered,) = restarted.recover(NOW + timedelta(minutes=5))
    acd = restarted.acd
    assert isinstance(acd, SkillsAcd)
    assert recovered.notices == []
    assert acd.agents["ana"].holding == {held: "message"}
    assert [i.id for i in acd.waiting()] == [waiting]


def test_after_a_restart_an_agent_keeps_their_presence_and_the_queue_its_wait(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cc.sqlite"
    with SqliteStore(path) as store:
        engine = engine_on(store, ana(auto=True))
        engine.set_agent_state("ana", "away", NOW)
        conv = engine.handle(web("v1", "hello", 0)).conversation_id
        assert store.get_conversation(conv).status == "queued"  # type: ignore[arg-type, union-attr]
    with SqliteStore(path) as store:
        engine = engine_on(store, ana(auto=True))  # the deployment says available
        (recovered,) = engine.recover(NOW + timedelta(minutes=7))
        assert recovered.notices == []  # ana is still away: nothing offered to her
        acd = engine.acd
        assert isinstance(acd, SkillsAcd) and acd.agents["ana"].state == "away"
        back = engine.set_agent_state("ana", "available", NOW + timedelta(minutes=8))
        assert [(n.kind, n.agent, n.data.get("waited_seconds")) for n in back.notices] == [
            ("accepted", "ana", 8 * 60)  # the wait counts from before the restart
        ]
        assert store.get_conversation(conv).status == "with_agent"  # type: ignore[arg-type, union-attr]


def test_a_wrap_up_that_times_out_where_allowed_is_reported_apart() -> None:
    """Retail lets after-call work end without its required code after 2 minutes: the agent is
    freed, the interaction has no code, and every report says the wrap-up timed out."""
    queue = QueueSettings(
        "Retail",
        wrap_up_required=True,
        wrap_up_codes=frozenset({"Resolved"}),
        after_call_work=timedelta(minutes=2),
        wrap_up_may_time_out=True,
    )
    engine, store = make(ana(auto=True), queue=queue)
    conv = engine.handle(web("v1", "hello", 0)).conversation_id or ""
    engine.handle(web("v1", "", 3, EventKind.CLOSE))  # the customer leaves ana's chat
    (tick,) = engine.advance(NOW + timedelta(minutes=5))
    assert [(n.kind, n.data.get("timed_out")) for n in tick.notices] == [("wrap_up_ended", True)]
    view = store.get_conversation(conv)
    assert view is not None and (view.wrap_up, view.wrap_up_agent) == (None, None)
    late = engine.handle(agent_event(conv, AgentAction.WRAP_UP, 6, wrap_up="Resolved"))
    assert late.refusal is not None and late.refusal.code == "not_in_after_call_work"

    log = InteractionLog.from_events(store.events)
    (detail,) = interaction_details(log, Scope()).rows
    assert detail["wrap_up"] == "(timed out)"
    (agent_row,) = agent_performance(log, Scope()).rows
    assert (agent_row["agent"], agent_row["handled"], agent_row["wrap_up_timed_out"]) == (
        "ana",
        1,
        1,
    )
    (queue_row,) = queue_performance(log, Scope()).rows
    assert (queue_row["queue"], queue_row["wrap_up_timed_out"]) == ("Retail", 1)


def test_without_leave_to_time_out_the_agent_stays_in_after_call_work() -> None:
    queue = QueueSettings(
        "Retail",
        wrap_up_required=True,
        wrap_up_codes=frozenset({"Resolved"}),
        after_call_work=timedelta(minutes=2),
    )
    single = AgentProfile("ana", frozenset({"Retail"}), {}, frozenset(), {"message": 1}, True)
    engine, store = make(single, queue=queue)
    conv = engine.handle(web("v1", "hello", 0)).conversation_id or ""
    engine.handle(web("v1", "", 3, EventKind.CLOSE))
    waiting = engine.handle(web("v2", "hi", 4)).conversation_id or ""
    assert engine.advance(NOW + timedelta(hours=2)) == []  # no time-out, nobody freed
    assert store.get_conversation(waiting).status == "queued"  # type: ignore[union-attr]
    coded = engine.handle(agent_event(conv, AgentAction.WRAP_UP, 121, wrap_up="Resolved"))
    assert [(n.kind, n.conversation_id) for n in coded.notices] == [
        ("wrap_up_ended", conv),
        ("accepted", waiting),
    ]
    log = InteractionLog.from_events(store.events)
    assert [r["wrap_up"] for r in interaction_details(log, Scope()).rows] == ["Resolved", ""]
    assert [r["wrap_up_timed_out"] for r in agent_performance(log, Scope()).rows] == [0]


def test_after_a_restart_the_after_call_work_agent_can_still_give_the_code(
    tmp_path: Path,
) -> None:
    queue = QueueSettings("Retail", wrap_up_required=True, wrap_up_codes=frozenset({"Resolved"}))
    path = tmp_path / "cc.sqlite"
    with SqliteStore(path) as store:
        engine = engine_on(store, ana(auto=True), queue=queue)
        conv = engine.handle(web("v1", "hello", 0)).conversation_id or ""
        engine.handle(web("v1", "", 3, EventKind.CLOSE))  # ana must now give a code
    with SqliteStore(path) as store:
        engine = engine_on(store, ana(auto=True), queue=queue)
        engine.recover(NOW + timedelta(minutes=5))
        other = engine.handle(
            agent_event(conv, AgentAction.WRAP_UP, 6, wrap_up="Resolved", agent_id="bob")
        )
        assert other.refusal is not None and other.refusal.code == "not_in_after_call_work"
        coded = engine.handle(agent_event(conv, AgentAction.WRAP_UP, 7, wrap_up="Resolved"))
        assert coded.refusal is None
        view = store.get_conversation(conv)
        assert view is not None and (view.wrap_up, view.wrap_up_agent) == ("Resolved", None)


def test_after_a_restart_a_required_code_is_still_enforced(tmp_path: Path) -> None:
    queue = QueueSettings("Retail", wrap_up_required=True, wrap_up_codes=frozenset({"Resolved"}))
    path = tmp_path / "cc.sqlite"
    with SqliteStore(path) as store:
        engine = engine_on(store, ana(auto=True), queue=queue)
        conv = engine.handle(web("v1", "hello", 0)).conversation_id or ""
        engine.handle(web("v1", "", 3, EventKind.CLOSE))  # ana must now give a code
    with SqliteStore(path) as store:
        engine = engine_on(store, ana(auto=True), queue=queue)
        engine.recover(NOW + timedelta(minutes=5))
        none = engine.handle(agent_event(conv, AgentAction.WRAP_UP, 6))
        assert none.refusal is not None and none.refusal.code == "wrap_up_required"
        bogus = engine.handle(agent_event(conv, AgentAction.COMPLETE, 7, wrap_up="Bogus"))
        assert bogus.refusal is not None and bogus.refusal.code == "wrap_up_invalid"
        assert "Resolved" in bogus.refusal.reason
        view = store.get_conversation(conv)
        assert view is not None and (view.wrap_up, view.wrap_up_agent) == (None, "ana")
        coded = engine.handle(agent_event(conv, AgentAction.WRAP_UP, 8, wrap_up="Resolved"))
        assert coded.refusal is None


def test_the_customer_writing_again_ends_after_call_work_as_a_wrap_up_timed_out() -> None:
    """ana still owes Retail's required code when the customer comes back: her after-call work
    ends (told, not dropped silently), the store no longer holds it as hers, and the reports count
    a wrap-up timed out."""
    queue = QueueSettings("Retail", wrap_up_required=True, wrap_up_codes=frozenset({"Resolved"}))
    engine, store = make(ana(auto=True), queue=queue)
    conv = engine.handle(web("v1", "hello", 0)).conversation_id or ""
    engine.handle(web("v1", "", 3, EventKind.CLOSE))  # ana must now give a code
    again = engine.handle(web("v1", "one more thing", 4))
    assert again.conversation_id == conv
    ended = [n for n in again.notices if n.kind == "wrap_up_ended"]
    assert [(n.agent, n.data.get("reason"), n.data.get("timed_out")) for n in ended] == [
        ("ana", "customer wrote again", True)
    ]
    view = store.get_conversation(conv)
    assert view is not None and (view.wrap_up, view.wrap_up_agent) == (None, None)
    log = InteractionLog.from_events(store.events)
    assert [r["wrap_up_timed_out"] for r in agent_performance(log, Scope()).rows] == [1]
    assert [r["wrap_up_timed_out"] for r in queue_performance(log, Scope()).rows] == [1]


def test_a_code_given_before_the_customer_writes_again_is_kept_not_timed_out() -> None:
    queue = QueueSettings(
        "Retail",
        wrap_up_required=True,
        wrap_up_codes=frozenset({"Resolved"}),
        after_call_work=timedelta(minutes=2),
    )
    engine, store = make(ana(auto=True), queue=queue)
    conv = engine.handle(web("v1", "hello", 0)).conversation_id or ""
    engine.handle(agent_event(conv, AgentAction.COMPLETE, 3, wrap_up="Resolved"))
    again = engine.handle(web("v1", "one more thing", 4))
    ended = [n for n in again.notices if n.kind == "wrap_up_ended"]
    assert [(n.data.get("reason"), n.data.get("timed_out")) for n in ended] == [
        ("customer wrote again", None)
    ]
    log = InteractionLog.from_events(store.events)
    assert [r["wrap_up_timed_out"] for r in agent_performance(log, Scope()).rows] == [0]
    assert "Resolved" in [r["wrap_up"] for r in interaction_details(log, Scope()).rows]
