"""`detect(message.text, ...)`: the customer's language among the flow's, through the
interpreter and the Engine; its threshold, its fallback, and what it refuses to guess."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowlang.errors import FlowRuntimeError
from flowlang.runtime import effects as fx
from flowlang.runtime.detect import detect_language
from flowlang.runtime.interpreter import RunResult, run
from flowlang.runtime.program import Program
from flowlang.runtime.state import FlowState, Trigger
from tests.runtime.helpers import facts, program


def start(prog: Program, text: str) -> RunResult:
    return run(prog, FlowState(), Trigger(kind="message", text=text), facts(text))


def replies(result: RunResult) -> list[str]:
    return [str(e.content.get("text")) for e in result.effects if isinstance(e, fx.SendReply)]


ROUTE_BY_LANGUAGE = """\
set language to detect(message.text, among ["en", "es", "ja"], fallback "en")
reply "language {{ interaction.language }}"
"""


def test_the_customers_language_is_set_from_their_text() -> None:
    prog = program(ROUTE_BY_LANGUAGE)
    assert replies(start(prog, "Hola, he perdido mi tarjeta de crédito")) == ["language es"]
    assert replies(start(prog, "Hello, I lost my credit card")) == ["language en"]
    assert replies(start(prog, "クレジットカードをなくしました")) == ["language ja"]


def test_text_without_a_language_takes_the_fallback() -> None:
    prog = program(ROUTE_BY_LANGUAGE)
    assert replies(start(prog, "")) == ["language en"]
    assert replies(start(prog, "12345 !!!")) == ["language en"]


def test_below_the_confidence_without_a_fallback_the_language_is_not_set() -> None:
    prog = program(
        """\
        set guess to detect(message.text, among ["es", "pt"], confidence 0.9)
        if guess is not set:
            reply "not sure"
        else:
            reply "{{ guess }}"
        """,
        header="var guess: text = not set",
    )
    # Spanish and Portuguese share these words: neither is 90 % likely
    assert replies(start(prog, "o carro")) == ["not sure"]
    spanish = "Hola, perdí mi tarjeta ayer por la mañana y necesito bloquearla"
    assert replies(start(prog, spanish)) == ["es"]


def test_only_the_candidates_are_ever_answered() -> None:
    prog = program(
        """\
        set language to detect(message.text, among ["en", "ja"])
        reply "language {{ interaction.language }}"
        """
    )
    # French is not a candidate: the closer of the two is answered, never "fr"
    assert replies(start(prog, "Bonjour, j'ai perdu ma carte bancaire")) == ["language en"]


def test_data_that_is_not_text_takes_the_flows_on_error_not_a_crash() -> None:
    prog = program(
        """\
        set language to detect(message.data.note, among ["en", "es"])
        reply "detected"
        """,
        header='on error:\n    reply "error: {{ error.message }}"',
    )
    form = {"text": "", "channel": "web", "kind": "message", "data": {"note": 3}}
    result = run(prog, FlowState(), Trigger(kind="message", text=""), facts("", message=form))
    assert replies(result) == ["error: detect() needs a text, got int"]
    with pytest.raises(FlowRuntimeError, match="needs a text"):
        detect_language(3, ("en", "es"), None, 0.5)


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=200))
def test_detection_is_deterministic_and_answers_a_candidate_or_the_fallback(text: str) -> None:
    among = ("en", "es", "ja")
    first = detect_language(text, among, "en", 0.5)
    assert first in among
    assert detect_language(text, among, "en", 0.5) == first
    assert detect_language(text, among, None, 0.5) in (*among, None)
