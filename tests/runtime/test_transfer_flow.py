"""`transfer to flow "Name"`: the conversation goes on in another loaded flow, keeping what
routing asks for and the data stored; an unknown flow or a loop takes the flow's `on error`."""

from __future__ import annotations

import logging
from textwrap import dedent

import pytest

from flowlang.compiler.compile import compile_flow
from flowlang.language.checker import check
from flowlang.language.context import FlowContext
from flowlang.language.parser import parse_text
from flowlang.runtime import effects as fx
from flowlang.runtime.engine import Engine
from flowlang.runtime.memory import RecordingAdapter
from flowlang.runtime.program import Program
from tests.runtime.helpers import engine_of
from tests.runtime.test_engine import message

SALES = """\
flow "Sales"
serve messages on whatsapp

on error:
    reply "sales error: {{ error.message }}"
    end "error"

state start:
    set priority to 20
    set language to "es"
    set participant data "segment" to "gold"
    reply "Sales here"
    if message.text contains "support":
        transfer to flow "Support"
    reply "still in sales"
"""

SUPPORT = """\
flow "Support"
serve messages on web

on error:
    reply "support error: {{ error.message }}"
    end "error"

var answer: text = not set

state start:
    reply "Support: '{{ message.text }}' {{ interaction.language }} {{ participant_data.segment }}"
    if message.text contains "back":
        transfer to flow "Sales"
    ask "What is your order number?" into answer:
        on answer:
            reply "Support got {{ answer }}"
            route to queue "Retail"
"""


def _program(text: str, flows: frozenset[str] = frozenset()) -> Program:
    parsed = parse_text(dedent(text), "x.flow")
    assert parsed.flow is not None, parsed.diagnostics
    result = check(parsed.flow, FlowContext(flows=flows))
    assert result.checked is not None, [d.message for d in result.diagnostics]
    return Program(compile_flow(result.checked))


def _engine(*texts: str) -> tuple[Engine, RecordingAdapter]:
    sent = RecordingAdapter()
    first, *others = (_program(t) for t in texts)
    return engine_of(first, adapters=[sent], flows=others, choose_flow=None), sent


def _texts(sent: RecordingAdapter) -> list[str]:
    return [str(m.content["text"]) for m in sent.sent]


def test_the_named_flow_goes_on_with_the_same_message_and_the_routing_data() -> None:
    engine, sent = _engine(SALES, SUPPORT)
    outcome = engine.handle(message("I need support"))
    assert _texts(sent) == [
        "Sales here",
        "Support: 'I need support' es gold",
        "What is your order number?",
    ]
    transfers = [e for e in outcome.effects if isinstance(e, fx.TransferToFlow)]
    assert [(t.source, t.flow) for t in transfers] == [("Sales", "Support")]
    # the conversation now waits in Support's ask: the customer's answer resumes it there
    answered = engine.handle(message("A-42"))
    assert _texts(sent)[-1] == "Support got A-42"
    route = next(e for e in answered.effects if isinstance(e, fx.RouteToQueue))
    assert (route.priority, route.language) == (20, "es")  # what Sales set for routing
    conv = engine.store.get_conversation(outcome.conversation_id or "")
    assert conv is not None and conv.queue == "Retail"
    assert conv.data["participant.segment"] == "gold"


def test_a_transfer_that_comes_back_takes_the_on_error_of_the_flow_that_would_loop() -> None:
    engine, sent = _engine(SALES, SUPPORT)
    engine.handle(message("support, then back"))
    assert _texts(sent) == [
        "Sales here",
        "Support: 'support, then back' es gold",
        "support error: transfer loop: Sales -> Support -> Sales; "
        "the conversation stays in 'Support'",
    ]


def test_a_flow_not_loaded_takes_on_error_with_a_log_line_never_a_crash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine, sent = _engine(SALES)  # Support is not loaded
    with caplog.at_level(logging.INFO, logger="flowlang.flow"):
        outcome = engine.handle(message("support please"))
    assert _texts(sent) == [
        "Sales here",
        "sales error: cannot transfer to flow 'Support': no flow of that name is loaded "
        "(loaded: Sales)",
    ]
    assert outcome.conversation_id is not None
    assert not any(isinstance(e, fx.TransferToFlow) for e in outcome.effects)
    assert any("cannot transfer to flow 'Support'" in r.getMessage() for r in caplog.records)


def test_without_a_transfer_the_flow_goes_on_as_before() -> None:
    engine, sent = _engine(SALES, SUPPORT)
    engine.handle(message("hello"))
    assert _texts(sent) == ["Sales here", "still in sales"]
