"""A run records the trace lines whose detail is not fixed as (node, describe, value), and
writes the detail only when the trace is read: what it reads is what writing it at once gave,
whatever happened after the run (the conversation went on, its state was changed)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from flowlang.runtime.interpreter import RunResult, run
from flowlang.runtime.state import FlowState, Trigger
from tests.runtime.helpers import facts, program

_WORDS = st.text(alphabet="abcXYZ é", min_size=1, max_size=8)
_NUMBERS = st.one_of(st.integers(0, 50), st.floats(0, 99).map(lambda x: round(x, 2)))
_SKILLS = st.sampled_from(["Loans", "Cards", "Billing"])
# (flow line, the trace detail it gives when written at once)
_LINES = st.one_of(
    _NUMBERS.map(lambda n: (f"set priority to {n}", f"priority {float(n):g}")),
    _WORDS.map(lambda w: (f'set note to "{w}"', f"note = {w!r}")),
    _NUMBERS.map(lambda n: (f"set count to {n}", f"count = {str(int(n) if n == int(n) else n)!r}")),
    _WORDS.map(
        lambda w: (f'set conversation data "topic" to "{w}"', f"conversation data topic = {w!r}")
    ),
    _WORDS.map(lambda w: (f'reply "Hi {{{{ customer.name }}}} {w}"', repr(f"Hi Ana {w}"))),
    _SKILLS.map(lambda s: (f'add skill "{s}"', f"skill {s}")),
)
_HEADER = "var note: text = not set\nvar count: number = 0"
_MATCH = (
    'match keywords in message.text:\n    when "loan*":\n        add skill "Loans"\n'
    '    when "card", "tarjeta":\n        add skill "Cards"'
)
_MATCHED = {
    "a loan": ["matched loan*", "skill Loans"],
    "my card": ["matched card/tarjeta", "skill Cards"],
    "hi": ["no keyword matched"],
}


def _read_now(result: RunResult) -> list[str]:
    return [line.detail for line in result.trace]


def _expected(lines: list[tuple[str, str]], text: str) -> list[str]:
    """The details as written at once: the match, each line, then the route's summary."""
    skills = dict.fromkeys(["Loans"] if "loan" in text else ["Cards"] if "card" in text else [])
    priority = 0.0
    for line, _ in lines:
        if line.startswith("add skill"):
            skills[line.split('"')[1]] = None
        if line.startswith("set priority"):
            priority = float(line.split()[-1])
    route = f"queue Retail ({', '.join(skills) or 'no skills'}; priority {priority:g})"
    return [*_MATCHED[text], *(detail for _, detail in lines), route]


@settings(max_examples=60, deadline=None)
@given(st.lists(_LINES, min_size=1, max_size=6), st.sampled_from(list(_MATCHED)))
def test_the_details_are_those_written_at_once_whatever_happens_after_the_run(
    lines: list[tuple[str, str]], text: str
) -> None:
    body = "\n".join(
        [_MATCH, *(line for line, _ in lines), 'route to queue "Retail":', "    timeout 5m"]
    )
    prog = program(body, header=_HEADER)
    first = run(prog, FlowState(), Trigger(kind="message", text=text), facts(text))
    expected = _expected(lines, text)
    assert _read_now(first) == expected
    # the same run again, its state then changed and the conversation gone on before reading
    again = run(prog, FlowState(), Trigger(kind="message", text=text), facts(text))
    state = again.state
    state.interaction.skills["Changed"] = None
    state.interaction.priority = 1234.0
    state.interaction.conversation_data["topic"] = "changed"
    state.variables["note"] = "changed"
    for found in state.matches.values():
        found.append(99)
    run(prog, state, Trigger(kind="queue", outcome="timeout"), facts(text))
    assert _read_now(again) == expected


@settings(max_examples=60, deadline=None)
@given(st.lists(_LINES, min_size=1, max_size=6))
def test_each_detail_is_what_writing_it_at_once_gives(lines: list[tuple[str, str]]) -> None:
    prog = program("\n".join(line for line, _ in lines), header=_HEADER)
    result = run(prog, FlowState(), Trigger(kind="message", text="hi"), facts("hi"))
    assert _read_now(result)[: len(lines)] == [expected for _, expected in lines]
