"""The protocol-free parts of the language server: the name a did-you-mean hint offers, and the
text a quick fix writes for it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from flowlang import codes
from flowlang.diagnostics import Span, error, suggest, suggested_name
from flowlang.lsp.analysis import replacement, token_at

names = st.text(
    # names as deployments have them (letters of many scripts, digits, spaces, punctuation)
    alphabet=st.sampled_from("abcXYZ019 _-.&éñø文字한글"),
    min_size=3,
    max_size=20,
)


@given(names)
def test_the_suggested_name_is_read_back_from_the_hint(declared: str) -> None:
    written = declared[:-1] + ("x" if declared[-1] != "x" else "y")  # one letter off
    for show in (lambda s: f"'{s}'", lambda s: f'"{s}"'):
        hint = suggest(written, [declared], "otherwise", show=show)
        assert suggested_name(hint) == declared
    assert suggested_name("declare it in deployment.yaml") is None


def test_a_fix_keeps_the_quotes_of_a_quoted_name_and_refuses_a_span_that_is_not_one_name() -> None:
    lines = ['    route to queue "Retial Banking"', "    go to state routng"]
    queue = error(codes.UNKNOWN_QUEUE, "unknown queue", Span("f.flow", 1, 20, 1, 36))
    state = error(codes.UNKNOWN_STATE, "unknown state", Span("f.flow", 2, 17, 2, 23))
    statement = error(codes.UNKNOWN_STATE, "x", Span("f.flow", 2, 5, 2, 23))
    assert replacement(queue, lines, 'Retail "Banking"') == '"Retail \\"Banking\\""'
    assert replacement(state, lines, "routing") == "routing"
    assert replacement(statement, lines, "routing") is None  # would overwrite `go to state`
    assert replacement(state, lines, "two words") is None


def test_the_token_under_the_cursor() -> None:
    line = '    route to queue "Retail Banking"'
    assert token_at(line, line.index("Banking") + 1) == ("Retail Banking", 20, 36)
    assert token_at(line, line.index("queue") + 2) == ("queue", 14, 19)
    assert token_at("    ", 2) is None
