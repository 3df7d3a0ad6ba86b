"""The Engine end to end with in-memory parts: threading, last agent, bots, timers, agents."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import pytest

from flowlang.acd import AgentProfile, SkillsAcd
from flowlang.assembly import assemble_engine
from flowlang.config import Deployment, load_deployment_text
from flowlang.errors import FlowError, InputError
from flowlang.events import AgentAction, AgentEvent, BotEvent, EventKind, InboundEvent
from flowlang.runtime import effects as fx
from flowlang.runtime.engine import Engine
from flowlang.runtime.memory import (
    AllowAll,
    MemoryStore,
    RecordingAdapter,
    ScriptedDataActions,
)
from flowlang.runtime.ports import DataResult
from tests.runtime.helpers import NOW, engine_of, program

FLOW = """\
recognize customer by platform id, phone
if conversation.ongoing and conversation.last_agent is set:
    route to last agent wait 5m
match keywords:
    when "fee*":
        add skill "Billing"
route to queue "Retail"
"""


def make_engine(
    body: str = FLOW, agents: list[AgentProfile] | None = None, header: str = "", **parts: Any
) -> tuple[Engine, RecordingAdapter]:
    sent = RecordingAdapter()
    acd = SkillsAcd(agents=agents if agents is not None else [agent_at("ana", "Retail", Billing=4)])
    return engine_of(program(body, header), adapters=[sent], acd=acd, **parts), sent


def agent_at(name: str, queue: str, capacity: int = 3, **skills: int) -> AgentProfile:
    """An agent who answers at once (auto-answer), so the tests see `accepted` directly."""
    return AgentProfile(
        name, frozenset({queue}), skills, capacity={"message": capacity}, auto_answer=True
    )


counter = iter(range(1, 10_000))


def message(
    text: str,
    at: timedelta = timedelta(0),
    sender: str = "447700900123",
    channel: str = "whatsapp",
    kind: EventKind = EventKind.MESSAGE,
    event_id: str | None = None,
    phone: str | None = None,
) -> InboundEvent:
    return InboundEvent(
        event_id=event_id or f"m{next(counter)}",
        channel=channel,
        kind=kind,
        sender_id=sender,
        sender_phone=phone,
        text=text,
        timestamp=NOW + at,
    )


def agent(conversation_id: str, action: AgentAction, at: timedelta, **extra: Any) -> AgentEvent:
    return AgentEvent(
        event_id=f"a{next(counter)}",
        conversation_id=conversation_id,
        agent_id=extra.pop("agent_id", "ana"),
        action=action,
        timestamp=NOW + at,
        **extra,
    )


def test_a_new_message_is_routed_to_an_available_skilled_agent() -> None:
    engine, _sent = make_engine()
    outcome = engine.handle(message("why these fees?"))
    (route,) = [e for e in outcome.effects if isinstance(e, fx.RouteToQueue)]
    assert route.skills == [{"skill": "Billing", "min": None}]
    assert [(n.kind, n.agent) for n in outcome.notices] == [("accepted", "ana")]
    conv = engine.store.get_conversation(outcome.conversation_id or "")
    assert conv is not None and conv.status == "with_agent" and conv.agent == "ana"


def test_a_webhook_retry_is_not_processed_twice() -> None:
    engine, _sent = make_engine()
    first = engine.handle(message("hello", event_id="wamid.1"))
    again = engine.handle(message("hello", event_id="wamid.1"))
    assert not first.duplicate and again.duplicate
    assert again.effects == []


def test_messages_while_an_agent_holds_the_conversation_go_to_the_agent() -> None:
    engine, _sent = make_engine()
    first = engine.handle(message("fees?"))
    second = engine.handle(message("hello?", at=timedelta(minutes=1)))
    assert second.conversation_id == first.conversation_id
    assert second.effects == [] and "delivered to agent ana" in second.note


def _complete_first_conversation(engine: Engine) -> str:
    first = engine.handle(message("fees?"))
    conv_id = first.conversation_id or ""
    engine.handle(agent(conv_id, AgentAction.COMPLETE, timedelta(minutes=10), wrap_up="Resolved"))
    return conv_id


def test_within_72_hours_the_thread_continues_and_goes_back_to_the_last_agent() -> None:
    engine, _sent = make_engine()
    conv_id = _complete_first_conversation(engine)
    later = engine.handle(message("one more thing", at=timedelta(hours=72, minutes=9, seconds=59)))
    assert later.conversation_id == conv_id
    assert [e.agent for e in later.effects if isinstance(e, fx.RouteToAgent)] == ["ana"]
    assert [(n.kind, n.agent) for n in later.notices] == [("accepted", "ana")]


def test_after_72_hours_of_inactivity_a_new_conversation_starts() -> None:
    engine, _sent = make_engine()
    conv_id = _complete_first_conversation(engine)
    later = engine.handle(message("hello again", at=timedelta(hours=72, minutes=10)))
    assert later.conversation_id != conv_id
    assert not any(isinstance(e, fx.RouteToAgent) for e in later.effects)


def test_last_agent_busy_waits_then_falls_back_to_the_queue() -> None:
    ana = agent_at("ana", "Retail", Billing=4)
    ben = agent_at("ben", "Retail", Billing=2)
    engine, _sent = make_engine(agents=[ana, ben])
    conv_id = _complete_first_conversation(engine)
    engine.set_agent_state("ana", "away", NOW)
    later = engine.handle(message("back again", at=timedelta(hours=1)))
    assert later.conversation_id == conv_id
    assert [(n.kind, n.data) for n in later.notices] == [("waiting", {"for_agent": "ana"})]
    (timed_out,) = engine.advance(NOW + timedelta(hours=1, minutes=5))
    assert [(n.kind, n.agent) for n in timed_out.notices] == [
        ("withdrawn", None),  # no longer waiting for ana
        ("accepted", "ben"),
    ]


def test_nobody_qualifies_so_the_interaction_waits_then_an_agent_frees_up() -> None:
    engine, _sent = make_engine(agents=[agent_at("ana", "Retail", capacity=1, Billing=4)])
    first = engine.handle(message("fees?"))
    second = engine.handle(message("fees too", sender="447700900999"))
    assert [n.kind for n in second.notices] == ["waiting"]
    done = engine.handle(
        agent(
            first.conversation_id or "",
            AgentAction.COMPLETE,
            timedelta(minutes=5),
            wrap_up="Resolved",
        )
    )
    assert ("accepted", second.conversation_id) in [
        (n.kind, n.conversation_id) for n in done.notices
    ]


def test_phone_numbers_meet_across_whatsapp_and_sms() -> None:
    engine, _sent = make_engine("""\
        recognize customer by phone:
            on known:
                reply "welcome back"
            on unknown:
                reply "hello"
        """)
    engine.handle(message("hi", sender="447700900123", phone="447700900123"))
    sms = engine.handle(
        message("hi", sender="+44 7700 900123", channel="sms", phone="+44 7700 900123")
    )
    assert [d.message.content["text"] for d in sms.deliveries] == ["welcome back"]


def test_bot_outcome_resumes_the_flow() -> None:
    engine, _sent = make_engine("""\
        hand off to bot "FAQ Bot" wait 10m:
            on resolved:
                end "resolved by bot"
            on escalate:
                add skill "Billing"
        route to queue "Retail"
        """)
    first = engine.handle(message("hi"))
    assert [e.bot for e in first.effects if isinstance(e, fx.HandOffToBot)] == ["FAQ Bot"]
    escalated = engine.handle(
        BotEvent(
            event_id="b1",
            conversation_id=first.conversation_id or "",
            outcome="escalate",
            intent="fees",
            timestamp=NOW + timedelta(minutes=2),
        )
    )
    assert [(n.kind, n.agent) for n in escalated.notices] == [("accepted", "ana")]


def test_data_actions_answer_at_once_and_the_flow_goes_on() -> None:
    actions = ScriptedDataActions({"CRM Lookup": DataResult("success", {"segment": "gold"})})
    engine, sent = make_engine(
        """\
        call data action "CRM Lookup" with phone = customer.phone into crm:
            on success:
                reply "segment {{ crm.segment }}"
        end
        """,
        data_actions=actions,
    )
    engine.handle(message("hi"))
    assert [m.content["text"] for m in sent.sent] == ["segment gold"]
    assert actions.calls == [("CRM Lookup", {"phone": None})]


def test_deleting_a_public_post_withdraws_it_from_the_queue() -> None:
    engine, _sent = make_engine(agents=[])
    post = engine.handle(message("fees!", channel="whatsapp"))
    deleted = engine.handle(message("", kind=EventKind.DELETE, at=timedelta(minutes=1)))
    assert deleted.conversation_id == post.conversation_id
    assert [n.kind for n in deleted.notices] == ["withdrawn"]
    assert isinstance(engine.store, MemoryStore)
    assert engine.store.events[-1]["kind"] == "abandoned"


def test_a_failing_flow_is_recorded_and_other_conversations_continue() -> None:
    sent = RecordingAdapter()
    failing = program(
        'if message.text contains "boom":\n    set n to 1 / 0\nreply "ok"',
        header="var n: number = 0",
    )
    store = MemoryStore()
    engine = engine_of(failing, adapters=[sent], store=store)
    bad = engine.handle(message("boom", sender="1"))
    good = engine.handle(message("fine", sender="2"))
    assert [e.message for e in bad.effects if isinstance(e, fx.FlowFailed)] == ["division by zero"]
    assert [d.message.content["text"] for d in good.deliveries] == ["ok"]
    assert [(e["kind"], e["line"]) for e in store.events if e["kind"] == "flow_error"] == [
        ("flow_error", 6)
    ]
    assert [m.content["text"] for m in sent.sent] == ["ok"]


def test_an_internal_error_is_a_dead_letter_with_its_traceback_not_the_flows_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A part the host plugged in that raises (here its schedules) is not FL900: the flow's
    `on error` does not run (no apology is sent), the event is kept as a dead letter with the
    traceback in the log, and once the part is fixed the letter replays as a normal event."""
    hours = {"broken": True}

    def schedule(name: str, _now: datetime) -> str:
        if hours["broken"]:
            raise KeyError(name)
        return "open"

    flow = program(
        'check schedule "Hours":\n    on open:\n        reply "We are open"',
        header='on error:\n    reply "Sorry, something went wrong"',
    )
    sent, store = RecordingAdapter(), MemoryStore()
    engine = engine_of(flow, adapters=[sent], store=store, schedule_state=schedule)
    with caplog.at_level(logging.ERROR, logger="flowlang.engine"):
        failed = engine.handle(message("Hello"))
    assert failed.dead_lettered and failed.note == "kept in the dead letters: KeyError: 'Hours'"
    assert sent.sent == [] and not any(e["kind"] == "flow_error" for e in store.events)
    (letter,) = store.dead_letters()
    assert letter["source"] == "inbound:whatsapp" and letter["reason"] == "KeyError: 'Hours'"
    assert "Traceback" in caplog.text and "in schedule" in caplog.text

    hours["broken"] = False
    replayed = engine.process_inbound(InboundEvent.model_validate(letter["payload"]))
    assert not replayed.dead_lettered
    assert [m.content["text"] for m in sent.sent] == ["We are open"]


def test_a_bot_outcome_that_meets_a_failing_part_is_a_dead_letter_and_on_error_does_not_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The same for events that are not a customer's: the bot's outcome resumes the flow, the
    CRM the flow then calls raises, and the outcome is kept as a `bot:` dead letter with the
    traceback logged, and `on error` does not run."""

    class DownCrm:
        def call(self, action: str, inputs: dict[str, Any], timeout: int | None) -> DataResult:
            raise ConnectionError("the CRM is down")

    flow = program(
        'hand off to bot "B" wait 5m:\n    on escalate:\n'
        '        call data action "Lookup" with id = "1" into crm:\n'
        '            on success:\n                reply "found"',
        header='on error:\n    reply "Sorry, something went wrong"',
    )
    sent, store = RecordingAdapter(), MemoryStore()
    engine = engine_of(flow, adapters=[sent], store=store, data_actions=DownCrm())
    first = engine.handle(message("Hello"))
    assert first.conversation_id is not None
    escalate = BotEvent(
        event_id="b1",
        conversation_id=first.conversation_id,
        outcome="escalate",
        timestamp=NOW + timedelta(minutes=1),
    )
    with caplog.at_level(logging.ERROR, logger="flowlang.engine"):
        failed = engine.handle(escalate)
    assert failed.dead_lettered and "ConnectionError: the CRM is down" in failed.note
    assert sent.sent == []
    (letter,) = store.dead_letters()
    assert letter["source"] == f"bot:{first.conversation_id}"
    assert "Traceback" in caplog.text and "the CRM is down" in caplog.text


def test_agent_transfer_requeues_to_another_queue() -> None:
    agents = [agent_at("ana", "Retail", Billing=4), agent_at("kai", "Loans")]
    engine, _sent = make_engine(agents=agents)
    first = engine.handle(message("fees?"))
    moved = engine.handle(
        agent(
            first.conversation_id or "",
            AgentAction.TRANSFER,
            timedelta(minutes=3),
            transfer_queue="Loans",
        )
    )
    assert [(n.kind, n.agent) for n in moved.notices] == [("accepted", "kai")]


def test_conversations_in_flight_keep_the_graph_version_they_started_on() -> None:
    old = program('ask "Old question?" into a wait 10m:\n    on answer:\n        reply "old"')
    new = program('ask "New question?" into a wait 10m:\n    on answer:\n        reply "new"')
    assert old.graph.version != new.graph.version
    engine = engine_of(old, acd=SkillsAcd())
    first = engine.handle(message("hi", sender="a"))
    engine.publish(new)
    answered = engine.handle(message("42", sender="a", at=timedelta(minutes=1)))
    assert [d.message.content["text"] for d in answered.deliveries] == ["old"]
    fresh = engine.handle(message("hi", sender="b", at=timedelta(minutes=2)))
    assert [d.message.content["text"] for d in fresh.deliveries] == ["New question?"]
    assert first.conversation_id == answered.conversation_id


def test_an_edited_post_updates_the_history_without_running_the_flow_again() -> None:
    engine, _sent = make_engine(agents=[])
    engine.handle(message("fees!", channel="x_public", kind=EventKind.POST))
    edited = engine.handle(
        message(
            "fees!!! #nothappy", channel="x_public", kind=EventKind.EDIT, at=timedelta(minutes=2)
        )
    )
    assert edited.effects == [] and "edited" in edited.note
    assert isinstance(engine.store, MemoryStore)
    assert engine.store.history[-1]["content"]["text"] == "fees!!! #nothappy"


def test_keywords_after_an_ask_and_a_bot_still_read_the_message_that_started_the_run() -> None:
    engine, _sent = make_engine(
        'ask "Your account number?" into answer wait 10m:\n'
        "    on answer:\n"
        '        log "answered"\n'
        "    on timeout:\n"
        '        log "no answer"\n'
        'hand off to bot "FAQ":\n'
        "    on escalate:\n"
        '        log "escalated"\n'
        "match keywords in message.text:\n"
        '    when "loan*":\n'
        '        add skill "Loans"\n'
        'route to queue "Retail"',
        header="var answer: text = not set",
        agents=[agent_at("ana", "Retail", Loans=3)],
    )
    first = engine.handle(message("A question about my loan"))
    engine.handle(message("12345678", timedelta(minutes=1)))
    routed = engine.handle(
        BotEvent(
            event_id="b-loan",
            conversation_id=first.conversation_id or "",
            outcome="escalate",
            timestamp=NOW + timedelta(minutes=2),
        )
    )
    (route,) = [e for e in routed.effects if isinstance(e, fx.RouteToQueue)]
    assert route.skills == [{"skill": "Loans", "min": None}]


def test_a_timer_whose_wait_is_over_does_not_fire() -> None:
    engine, _sent = make_engine(
        'ask "Your account number?" into answer wait 10m:\n'
        "    on answer:\n"
        '        log "answered"\n'
        "    on timeout:\n"
        '        log "no answer"\n'
        'route to queue "Retail"',
        header="var answer: text = not set",
    )
    engine.handle(message("Hello"))
    engine.handle(message("12345678", timedelta(minutes=1)))
    assert engine.advance(NOW + timedelta(minutes=30)) == []


def test_advance_uses_the_engines_clock_when_no_time_is_given() -> None:
    class Clock:
        def __init__(self) -> None:
            self.at = NOW

        def now(self) -> datetime:
            return self.at

    clock = Clock()
    engine, _sent = make_engine(
        'ask "Your account number?" into answer wait 10m:\n'
        "    on timeout:\n"
        '        log "no answer"\n'
        'route to queue "Retail"',
        header="var answer: text = not set",
        clock=clock,
    )
    engine.handle(message("Hello"))
    assert engine.advance() == []
    clock.at = NOW + timedelta(minutes=11)
    (fired,) = engine.advance()
    assert any(t.op == "ask" and "timeout" in t.detail for t in fired.trace)


def test_a_time_without_a_zone_from_the_host_is_refused_saying_how_to_fix_it() -> None:
    """A flowlang error (`InputError`, a `FlowError`), not a bare ValueError, and nothing
    is changed: the host can catch flowlang's errors as one."""
    engine, _sent = make_engine('route to queue "Retail"')
    naive = datetime(2026, 3, 2, 10, 0)
    for call in (
        lambda: engine.advance(naive),
        lambda: engine.set_agent_state("ana", "away", naive),
        lambda: engine.recover(naive),
        lambda: engine.deliver_pending(naive),
        lambda: engine.due_timers(naive),
        lambda: engine.resend({}, naive),
        lambda: engine.initiate("whatsapp", "acme", "+447700900123", "t", naive),
    ):
        with pytest.raises(InputError, match=r"has no time zone; pass an aware time, e\.g\."):
            call()
    assert engine.store.iter_events() is not None and list(engine.store.iter_events()) == []


def test_advance_without_a_time_or_a_clock_is_refused_as_a_flowlang_error() -> None:
    engine, _sent = make_engine('route to queue "Retail"')
    with pytest.raises(FlowError, match=r"advance\(\) needs `now` when the engine has no clock"):
        engine.advance()


def _deployment_with_window(window: str) -> Deployment:
    deployment, problems = load_deployment_text(f"threading_window: {window}\n", "deployment.yaml")
    assert deployment is not None, problems
    return deployment


@pytest.mark.parametrize(
    ("window", "header", "gap", "same"),
    [
        ("1h", "", timedelta(minutes=70), False),  # the deployment's window, not 72 hours
        ("1h", "", timedelta(minutes=50), True),
        ("72h", "threading window 30m", timedelta(minutes=40), False),  # the flow's, shorter
        ("2h", "threading window 24h", timedelta(hours=3), False),  # the deployment's, shorter
        ("0s", "", timedelta(minutes=1), False),  # every message after a completion is new
    ],
)
def test_the_deployments_threading_window_holds_unless_the_flow_says_shorter(
    window: str, header: str, gap: timedelta, same: bool
) -> None:
    prog = program(FLOW, header)
    acd = SkillsAcd(agents=[agent_at("ana", "Retail", Billing=4)])
    engine = assemble_engine(
        prog, _deployment_with_window(window), acd=acd, policy=AllowAll(), adapters=[]
    )
    conv_id = _complete_first_conversation(engine)
    later = engine.handle(message("hello again", at=timedelta(minutes=10) + gap))
    assert (later.conversation_id == conv_id) is same
