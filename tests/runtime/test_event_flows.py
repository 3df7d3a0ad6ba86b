"""Flows on events other than a customer's message: `on wrap up` (a CSAT survey), `on customer
closed`, `on agent disconnected`; the survey's answers, re-asks and outcomes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flowlang.acd import QueueSettings, SkillsAcd
from flowlang.compiler.compile import compile_flow
from flowlang.events import AgentAction, EventKind
from flowlang.language.checker import check
from flowlang.language.context import FlowContext
from flowlang.language.parser import parse_text
from flowlang.reporting.interactions import InteractionLog
from flowlang.reporting.reports import (
    Scope,
    agent_performance,
    interaction_details,
    queue_performance,
)
from flowlang.runtime.engine import Engine
from flowlang.runtime.memory import MemoryStore, RecordingAdapter
from flowlang.runtime.program import Program
from tests.runtime.helpers import NOW, engine_of, program
from tests.runtime.test_engine import agent, agent_at, make_engine, message

CSAT = """\
on wrap up:
    if event.wrap_up != "Spam":
        survey "CSAT" wait 1h:
            rating "How did {{ event.agent }} do?" from 1 to 5 into score retry "{{ retry }}"
            comment "Thank you! Anything you would like to add?" into remark
            on answered:
                reply "Thanks, your rating was {{ score }}."
            on invalid:
                reply "No problem, thank you for contacting us."
            on timeout:
                log "no answer to the survey"

on customer closed:
    set conversation data "left" to "yes"
"""


def _engine() -> tuple[Engine, RecordingAdapter]:
    """Agent ana in Retail, with five minutes of after-call work to give a code in."""
    sent = RecordingAdapter()
    retail = QueueSettings(
        "Retail",
        after_call_work=timedelta(minutes=5),
        wrap_up_codes=frozenset({"Resolved", "Sales", "Spam"}),
    )
    acd = SkillsAcd(queues=[retail], agents=[agent_at("ana", "Retail")])
    retry = 'param retry: text = "Please answer with a number from 1 to 5."\n'
    prog = program('route to queue "Retail"', retry + CSAT)
    return engine_of(prog, adapters=[sent], acd=acd), sent


def _compiled(text: str) -> Program:
    parsed = parse_text(text, "events.flow")
    assert parsed.flow is not None, parsed.diagnostics
    result = check(parsed.flow, FlowContext())
    assert result.checked is not None, [d.message for d in result.diagnostics]
    return Program(compile_flow(result.checked))


def _texts(sent: RecordingAdapter) -> list[str]:
    return [m.content.get("text", "") for m in sent.sent]


def _served_and_completed(engine: Engine, code: str | None = "Resolved") -> str:
    first = engine.handle(message("hello"))
    conv_id = first.conversation_id or ""
    extra: dict[str, Any] = {"wrap_up": code} if code else {}
    engine.handle(agent(conv_id, AgentAction.COMPLETE, timedelta(minutes=5), **extra))
    return conv_id


def _log(engine: Engine, kind: str) -> list[dict[str, Any]]:
    return [e for e in _events(engine) if e["kind"] == kind]


def _events(engine: Engine) -> list[dict[str, Any]]:
    store = engine.store
    assert isinstance(store, MemoryStore)
    return list(store.iter_events())


def test_a_wrap_up_code_starts_the_survey_and_its_answers_are_stored() -> None:
    engine, sent = _engine()
    conv_id = _served_and_completed(engine)
    assert _texts(sent)[-1] == "How did ana do?"
    engine.handle(message("4", at=timedelta(minutes=6)))
    assert _texts(sent)[-1] == "Thank you! Anything you would like to add?"
    engine.handle(message("Quick and friendly", at=timedelta(minutes=7)))
    assert _texts(sent)[-1] == "Thanks, your rating was 4."
    conv = engine.store.get_conversation(conv_id)
    assert conv is not None
    assert conv.data["survey.CSAT.score"] == {"kind": "rating", "value": 4, "low": 1, "high": 5}
    assert conv.data["survey.CSAT.remark"] == {"kind": "comment", "value": "Quick and friendly"}
    answers = _log(engine, "survey_answer")
    assert [(a["question"], a["value"], a["agent"]) for a in answers] == [
        ("score", 4, "ana"),
        ("remark", "Quick and friendly", "ana"),
    ]


def test_a_rating_out_of_scale_is_asked_again_then_takes_the_invalid_path() -> None:
    engine, sent = _engine()
    conv_id = _served_and_completed(engine)
    engine.handle(message("7", at=timedelta(minutes=6)))
    assert _texts(sent)[-1] == "Please answer with a number from 1 to 5."
    engine.handle(message("great", at=timedelta(minutes=7)))
    assert _texts(sent)[-1] == "No problem, thank you for contacting us."
    conv = engine.store.get_conversation(conv_id)
    assert conv is not None and not any(k.startswith("survey.") for k in conv.data)
    assert _log(engine, "survey_answer") == []


def test_a_valid_answer_after_the_re_ask_is_kept() -> None:
    engine, sent = _engine()
    _served_and_completed(engine)
    engine.handle(message("great", at=timedelta(minutes=6)))
    engine.handle(message("5", at=timedelta(minutes=7)))
    assert _texts(sent)[-1] == "Thank you! Anything you would like to add?"
    assert [a["value"] for a in _log(engine, "survey_answer")] == [5]


def test_no_code_at_completion_waits_for_the_code_given_in_after_call_work() -> None:
    engine, sent = _engine()
    conv_id = _served_and_completed(engine, code=None)
    assert not any("How did" in t for t in _texts(sent))
    engine.handle(agent(conv_id, AgentAction.WRAP_UP, timedelta(minutes=6), wrap_up="Resolved"))
    assert _texts(sent)[-1] == "How did ana do?"
    # a changed code does not start the survey again
    before = len(sent.sent)
    engine.handle(agent(conv_id, AgentAction.WRAP_UP, timedelta(minutes=7), wrap_up="Sales"))
    assert len(sent.sent) == before


def test_the_flow_decides_from_the_code_no_survey_for_spam() -> None:
    engine, sent = _engine()
    _served_and_completed(engine, code="Spam")
    assert not any("How did" in t for t in _texts(sent))
    assert [e["event"] for e in _log(engine, "flow_event")] == ["wrap up"]


def test_an_unanswered_survey_times_out_on_its_branch() -> None:
    engine, sent = _engine()
    _served_and_completed(engine)
    outcomes = engine.advance(NOW + timedelta(minutes=66))
    assert any("no answer to the survey" in str(o.trace) for o in outcomes)
    assert not any("Thanks" in t for t in _texts(sent))


def test_the_customer_closing_the_chat_runs_on_customer_closed() -> None:
    engine, _sent = _engine()
    first = engine.handle(message("hello", channel="web", sender="visitor-1"))
    engine.handle(
        message(
            "", at=timedelta(minutes=1), channel="web", sender="visitor-1", kind=EventKind.CLOSE
        )
    )
    conv = engine.store.get_conversation(first.conversation_id or "")
    assert conv is not None and conv.status == "closed"
    assert conv.data["conversation.left"] == "yes"


def test_a_flow_without_on_wrap_up_sends_nothing_at_completion() -> None:
    engine, sent = make_engine('route to queue "Retail"')
    _served_and_completed(engine)
    assert _texts(sent) == []
    assert _log(engine, "flow_event") == []


NO_RETRY = """\
flow "No retry"
serve messages on whatsapp

state start:
    route to queue "Retail"

on wrap up:
    survey "CSAT":
        rating "From 1 to 5?" from 1 to 5 into score
        on invalid:
            go to state served_again

state served_again:
    reply "About '{{ message.text }}': an agent will be with you."
"""


def test_without_retry_another_message_takes_the_invalid_path_at_once_and_is_served() -> None:
    sent = RecordingAdapter()
    retail = QueueSettings("Retail", wrap_up_codes=frozenset({"Resolved"}))
    acd = SkillsAcd(queues=[retail], agents=[agent_at("ana", "Retail")])
    engine = engine_of(_compiled(NO_RETRY), adapters=[sent], acd=acd)
    _served_and_completed(engine)
    engine.handle(message("My card was declined again", at=timedelta(minutes=6)))
    assert _texts(sent)[-2:] == [
        "From 1 to 5?",
        "About 'My card was declined again': an agent will be with you.",
    ]
    assert _log(engine, "survey_answer") == []


def test_the_reports_count_satisfaction_and_the_answers_do_not_reopen_the_interaction() -> None:
    engine, _sent = _engine()
    conv_id = _served_and_completed(engine)
    engine.handle(message("5", at=timedelta(minutes=6)))
    engine.handle(message("Great", at=timedelta(minutes=7)))
    second = engine.handle(message("hello", at=timedelta(days=5), sender="447700900999"))
    second_id = second.conversation_id or ""
    done = timedelta(days=5, minutes=5)
    engine.handle(agent(second_id, AgentAction.COMPLETE, done, wrap_up="Sales"))
    engine.handle(message("2", at=timedelta(days=5, minutes=6), sender="447700900999"))
    engine.advance(NOW + timedelta(days=6))  # the second survey's comment times out

    log = InteractionLog.from_events(_events(engine))
    item = log.interactions[conv_id]
    assert (item.outcome, item.state) == ("completed", "ended")
    assert log.active["message"] == {}
    assert item.survey == {"CSAT.score": 5, "CSAT.remark": "Great"}
    everything = Scope()
    rows = interaction_details(log, everything).rows
    (details,) = [r for r in rows if r["conversation"] == conv_id]
    assert details["survey"] == ["CSAT.score = 5", "CSAT.remark = Great"]
    assert details["outcome"] == "completed"
    (ana,) = agent_performance(log, everything).rows
    assert (ana["rated"], ana["satisfaction"]) == (2, 0.5)  # a 5 (satisfied) and a 2
    retail = {r["queue"]: r for r in queue_performance(log, everything).rows}["Retail"]
    assert (retail["rated"], retail["satisfaction"]) == (2, 0.5)
    # counted in the period the rating was given
    first_day = Scope(end=NOW + timedelta(days=1))
    (ana,) = agent_performance(log, first_day).rows
    assert (ana["rated"], ana["satisfaction"]) == (1, 1.0)
