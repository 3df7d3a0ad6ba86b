"""The common syntax mistakes get their own message (FL026-FL031, docs/errors.md), and recovery
reads the line as it was meant, so the rest of the file is checked as if it had been written so.
The golden cases in tests/cases/check/ (210-215) show the full text a user sees."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowlang import codes
from flowlang.language import ast
from flowlang.language.ast_compare import same_structure
from flowlang.language.checker import check
from flowlang.language.context import FlowContext
from flowlang.language.mistakes import INSTEAD_OF, QUOTE_PAIRS
from flowlang.language.parser import parse_text

HEAD = 'flow "T"\nserve messages on web\n\nvar tries: number = 0\n\nstate start:\n'


def _parsed(body: str) -> tuple[list[str], ast.Flow | None]:
    result = parse_text(HEAD + body, "t.flow")
    return [d.code for d in result.diagnostics], result.partial or result.flow


@pytest.mark.parametrize(
    ("broken", "meant", "code"),
    [
        ("    reply 'Hello'\n", '    reply "Hello"\n', codes.WRONG_QUOTES),
        ("    reply \u201cHello\u201d\n", '    reply "Hello"\n', codes.WRONG_QUOTES),
        ("    reply \u201eHallo\u201c\n", '    reply "Hallo"\n', codes.WRONG_QUOTES),
        ("    reply 'He said \"hi\"'\n", '    reply "He said \\"hi\\""\n', codes.WRONG_QUOTES),
        ("    set tries = tries + 1\n", "    set tries to tries + 1\n", codes.SET_WITH_EQUALS),
        (
            "    if tries > 1:\n        end\n    else if tries > 0:\n        end\n",
            "    if tries > 1:\n        end\n    elif tries > 0:\n        end\n",
            codes.ELSE_IF,
        ),
        (
            "    if tries > 1 then\n        end\n",
            "    if tries > 1:\n        end\n",
            codes.THEN_AFTER_CONDITION,
        ),
        (
            "    while tries < 3 at most 3 times do\n        set tries to tries + 1\n",
            "    while tries < 3 at most 3 times:\n        set tries to tries + 1\n",
            codes.THEN_AFTER_CONDITION,
        ),
    ],
)
def test_a_mistake_has_its_code_and_the_rest_is_read_as_meant(
    broken: str, meant: str, code: str
) -> None:
    found, recovered = _parsed(broken + '    route to queue "Loans"\n')
    assert found == [code]
    expected = parse_text(HEAD + meant + '    route to queue "Loans"\n', "t.flow")
    assert expected.ok, expected.diagnostics
    assert same_structure(recovered, expected.flow)


def test_the_caret_of_a_text_in_wrong_quotes_starts_at_the_opening_quote() -> None:
    result = parse_text(HEAD + "    route to queue \u2018Retail Banking\u2019\n", "t.flow")
    (problem,) = result.diagnostics
    assert (problem.span.line, problem.span.column, problem.span.end_column) == (7, 20, 36)
    assert problem.label == 'write "Retail Banking"'


def test_an_unclosed_curly_quote_points_at_it_and_says_what_to_write() -> None:
    result = parse_text(HEAD + "    reply \u201cHello\n", "t.flow")
    (problem,) = result.diagnostics
    assert problem.code == codes.WRONG_QUOTES
    assert (problem.span.column, problem.span.end_column) == (11, 12)
    assert problem.label == 'write " here'


_TEXT = st.text(
    st.characters(
        blacklist_categories=("Cc", "Cs"),
        blacklist_characters="'\"\\\u2018\u2019\u201c\u201d\u201e\u00ab\u00bb",
    ),
    max_size=30,
)


@settings(max_examples=80, deadline=None)
@given(text=_TEXT, opening=st.sampled_from(sorted(QUOTE_PAIRS)))
def test_any_text_in_any_wrong_quotes_is_read_as_that_text(text: str, opening: str) -> None:
    line = f"    reply {opening}{text}{QUOTE_PAIRS[opening]}\n"
    found, recovered = _parsed(line)
    assert found == [codes.WRONG_QUOTES]
    assert recovered is not None
    (state,) = [d for d in recovered.declarations if isinstance(d, ast.State)]
    reply = state.body[0]
    assert isinstance(reply, ast.Reply) and isinstance(reply.content, ast.TextContent)
    assert reply.content.text == text


def _statement_words() -> set[str]:
    """The words the grammar lets a statement begin with (FL030's list for an unknown word)."""
    (problem,) = parse_text(HEAD + "    frobnicate\n    end\n", "t.flow").diagnostics
    return set(problem.hint.removeprefix("a statement here begins with one of: ").split(", "))


def test_no_word_of_another_language_begins_a_statement_of_flowlang() -> None:
    """A word the language takes up as a statement (`transfer to flow`) leaves INSTEAD_OF,
    whose advice would otherwise never be given."""
    assert set(INSTEAD_OF) & _statement_words() == set()


@pytest.mark.parametrize("word", sorted(INSTEAD_OF))
def test_a_word_of_another_language_says_how_flowlang_writes_it(word: str) -> None:
    result = parse_text(HEAD + f"    {word} 5\n    end\n", "t.flow")
    codes_found = [d.code for d in result.diagnostics]
    assert codes_found == [codes.UNKNOWN_STATEMENT], result.diagnostics
    assert result.diagnostics[0].hint == INSTEAD_OF[word]
    assert "did you mean" not in result.diagnostics[0].hint  # no quick fix to the foreign word


def test_an_unknown_word_lists_the_statements_the_grammar_has_there() -> None:
    result = parse_text(HEAD + "    frobnicate\n    end\n", "t.flow")
    (problem,) = result.diagnostics
    assert problem.code == codes.UNKNOWN_STATEMENT
    listed = problem.hint.removeprefix("a statement here begins with one of: ").split(", ")
    assert {"reply", "route", "set", "end", "pass", "if", "ask", "go"} <= set(listed)
    # the list is the grammar's: every word in it begins a statement that parses
    for word in listed:
        found = [d.code for d in parse_text(HEAD + f"    {word}\n", "t.flow").diagnostics]
        assert codes.UNKNOWN_STATEMENT not in found and codes.MISSPELT_KEYWORD not in found


def test_at_the_top_level_it_is_a_declaration_that_is_missing() -> None:
    result = parse_text(HEAD + "    end\nroutine main:\n    end\n", "t.flow")
    problem = result.diagnostics[0]
    assert problem.code == codes.UNKNOWN_STATEMENT
    assert problem.message == "'routine' does not begin a declaration"
    assert "state" in problem.hint and "task" in problem.hint


def test_a_misspelt_keyword_stays_fl024_and_a_keyword_out_of_place_stays_fl001() -> None:
    assert _parsed("    ned\n")[0] == [codes.MISSPELT_KEYWORD]
    assert _parsed("    else:\n        end\n")[0] == [codes.SYNTAX_ERROR]
    # `x = 1` is not taken for a comparison: it says how a variable gets a value
    result = parse_text(HEAD + "    tries = 1\n    end\n", "t.flow")
    assert result.diagnostics[0].hint == "a variable gets a value with set: set tries to ..."


SHIPPED = sorted((Path(__file__).resolve().parents[2] / "flows").glob("*.flow"))
WORD_GAP = re.compile(r"(?<=[A-Za-z0-9_]) (?=[A-Za-z0-9_])")


@pytest.mark.parametrize(
    ("line", "word", "meant"),
    [
        ("    gotostate start\n", "gotostate", "go to state"),
        ('    routeto queue "Retail"\n', "routeto", "route to"),
        ("    go tostate start\n", "tostate", "to state"),
    ],
)
def test_keywords_run_together_are_refused_and_the_words_meant_given(
    line: str, word: str, meant: str
) -> None:
    result = parse_text(HEAD + line, "t.flow")
    (found,) = [d for d in result.diagnostics if d.code == codes.WORDS_RUN_TOGETHER]
    assert found.message == f"'{word}' runs words together"
    assert found.hint == f"did you mean '{meant}'?"
    assert result.flow is None


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_joining_any_two_words_of_a_shipped_flow_is_never_valid(data: st.DataObject) -> None:
    """Before FL031 `goto` was read as `go to` where a name cannot come: a typo that changed
    nothing. Now removing any space between two words leaves a flow that is not valid."""
    path = data.draw(st.sampled_from(SHIPPED))
    text = path.read_text("utf-8")
    gaps = [m.start() for m in WORD_GAP.finditer(text) if not _in_text_or_comment(text, m.start())]
    at = data.draw(st.sampled_from(gaps))
    joined = text[:at] + text[at + 1 :]
    result = parse_text(joined, path.name)
    where = joined[text.rfind("\n", 0, at) + 1 :].split("\n", 1)[0]
    if result.ok:  # a join inside an expression makes one longer name: the checker refuses it
        assert result.flow is not None
        checked = check(result.flow, FlowContext())
        assert any(d.is_error for d in checked.diagnostics), where


def _in_text_or_comment(text: str, at: int) -> bool:
    line_start = text.rfind("\n", 0, at) + 1
    before = text[line_start:at]
    return before.count('"') % 2 == 1 or "#" in before
