"""The formatter: golden cases, idempotence and AST round trip on every flow, comments, mess."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowlang.language import ast, formatter
from flowlang.language.ast_compare import NO_SPAN, same_structure, strip_spans
from flowlang.language.formatter import format_expr, format_flow, format_text, quote
from flowlang.language.parser import parse_bytes, parse_text

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "cases" / "fmt"
GOLDEN_INPUTS = sorted(GOLDEN.glob("*.flow"))
ALL_FLOWS = sorted((ROOT / "flows").glob("**/*.flow")) + sorted(
    (ROOT / "tests" / "cases").glob("**/*.flow")
)


def _fmt(text: str) -> str:
    result = format_text(text, "test.flow")
    assert result.text is not None, [str(d.span) + " " + d.message for d in result.diagnostics]
    return result.text


# ---------------------------------------------------------------- golden cases


@pytest.mark.parametrize("path", GOLDEN_INPUTS, ids=lambda p: p.stem)
def test_golden(path: Path, request: pytest.FixtureRequest) -> None:
    expected_path = path.with_suffix(".expected")
    actual = _fmt(path.read_text("utf-8"))
    if request.config.getoption("--update-golden"):
        expected_path.write_text(actual, "utf-8")
    assert expected_path.exists(), f"run pytest --update-golden to create {expected_path.name}"
    assert actual == expected_path.read_text("utf-8")


@pytest.mark.parametrize("path", GOLDEN_INPUTS, ids=lambda p: p.stem)
def test_golden_output_is_a_fixed_point(path: Path) -> None:
    expected = path.with_suffix(".expected").read_text("utf-8")
    assert _fmt(expected) == expected


def test_there_are_golden_cases() -> None:
    assert len(GOLDEN_INPUTS) >= 5
    assert all(p.with_suffix(".expected").exists() for p in GOLDEN_INPUTS)


# ---------------------------------------------------------------- every flow in the repository


def _parseable(paths: list[Path]) -> list[Path]:
    # Other stages' cases include files that must not parse (bad UTF-8, syntax errors).
    return [p for p in paths if parse_bytes(p.read_bytes(), str(p)).ok]


PARSEABLE = _parseable(ALL_FLOWS)


@pytest.mark.parametrize("path", PARSEABLE, ids=lambda p: str(p.relative_to(ROOT)))
def test_idempotent_and_same_ast(path: Path) -> None:
    text = path.read_text("utf-8")
    before = parse_text(text, str(path))
    once = format_flow(before.flow, before.comments) if before.flow else ""
    after = parse_text(once, str(path))
    assert after.ok, [d.message for d in after.diagnostics]
    assert same_structure(after.flow, before.flow)
    assert sorted(c.text.rstrip() for c in after.comments) == sorted(
        c.text.rstrip() for c in before.comments
    )
    assert _fmt(once) == once


def test_flows_were_checked() -> None:
    # flows/ may still be empty; the golden inputs alone guarantee something ran.
    assert len(PARSEABLE) >= len(GOLDEN_INPUTS) > 0


# ---------------------------------------------------------------- comments


def test_comment_positions() -> None:
    source = (
        "# top\n"
        'flow "C"  # on flow\n'
        "\n"
        "state s:\n"
        "    # lead\n"
        '    reply "a"  # trail\n'
        "    if x:\n"
        '        reply "b"\n'
        "        # end of if body\n"
        "    # before end\n"
        "    end\n"
        "    # end of state\n"
        "# end of file\n"
    )
    assert _fmt(source) == source


def test_comment_in_a_multi_line_expression_moves_before_its_statement() -> None:
    source = 'flow "C"\n\nstate s:\n    set x to [1,  # one\n        2]  # two\n'
    assert _fmt(source) == 'flow "C"\n\nstate s:\n    # one\n    set x to [1, 2]  # two\n'


def test_own_line_comment_takes_the_indentation_of_the_next_line() -> None:
    source = 'flow "C"\n\nstate s:\n        # deep\n    reply "a"\n  # shallow\nstate t:\n    end\n'
    expected = 'flow "C"\n\nstate s:\n    # deep\n    reply "a"\n\n# shallow\nstate t:\n    end\n'
    assert _fmt(source) == expected


def test_comment_text_is_kept_verbatim_except_trailing_spaces() -> None:
    source = 'flow "C"  #   spaced   \n#!weird "quotes" # and hashes   \n'
    assert _fmt(source) == 'flow "C"  #   spaced\n#!weird "quotes" # and hashes\n'


def test_comment_inside_text_is_not_a_comment() -> None:
    source = 'flow "C"\n\nstate s:\n    reply "#1 # not a comment"  # real\n'
    assert _fmt(source) == source


# ---------------------------------------------------------------- messy input


def test_messy_spacing_and_blank_lines_become_canonical() -> None:
    source = (
        '\n\nflow    "M"   \n\n\n'
        "param  a :number=1   \n\n\n\n"
        "state   s :\n\n\n"
        '      reply    "x"\t\n\n\n\n'
        "      set   tries   to tries+1\n\n\n"
    )
    expected = (
        'flow "M"\n\nparam a: number = 1\n\nstate s:\n    reply "x"\n\n    set tries to tries + 1\n'
    )
    assert _fmt(source) == expected
    # the 6-space block is FL025 for validate, and fmt is how it gets fixed
    assert [d.code for d in parse_text(source, "m.flow").diagnostics] == ["FL025"]


def test_crlf_bom_and_missing_final_newline() -> None:
    source = '\ufeffflow "M"\r\n\r\nstate s:\r\n    end'
    assert _fmt(source) == 'flow "M"\n\nstate s:\n    end\n'


def test_one_line_declarations_group_and_blocks_are_separated() -> None:
    source = (
        'flow "G"\ndescription "d"\nserve messages on web\nserve posts on x\n'
        "param a: number = 1\nvar b: number = 2\nvar c: number = 3\n"
        "state s:\n    end\nstate t:\n    end\n"
    )
    expected = (
        'flow "G"\ndescription "d"\n\nserve messages on web\nserve posts on x\n\n'
        "param a: number = 1\n\nvar b: number = 2\nvar c: number = 3\n\n"
        "state s:\n    end\n\nstate t:\n    end\n"
    )
    assert _fmt(source) == expected


def test_blank_line_within_a_group_is_kept() -> None:
    source = 'flow "G"\n\nparam a: number = 1\n\n\nparam b: number = 2\n'
    assert _fmt(source) == 'flow "G"\n\nparam a: number = 1\n\nparam b: number = 2\n'


def test_no_blank_line_after_a_header_but_kept_between_clauses() -> None:
    source = 'flow "G"\n\nstate s:\n\n    if x:\n\n        end\n\n    else:\n        end\n'
    expected = 'flow "G"\n\nstate s:\n    if x:\n        end\n\n    else:\n        end\n'
    assert _fmt(source) == expected


# ---------------------------------------------------------------- expressions and literals


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("1+2*3", "1 + 2 * 3"),
        ("(1+2)*3", "(1 + 2) * 3"),
        ("1-(2-3)", "1 - (2 - 3)"),
        ("(1-2)-3", "1 - 2 - 3"),
        ("a or (b or c)", "a or (b or c)"),
        ("(a or b) or c", "a or b or c"),
        ("not (a and b)", "not (a and b)"),
        ("(not a) and b", "not a and b"),
        ("(x < y) == z", "(x < y) == z"),
        ("-(1 + 2)", "-(1 + 2)"),
        ("-(-x)", "- -x"),
        ("(a+b) in [1,2]", "a + b in [1, 2]"),
        ("(x) is not set", "x is not set"),
        ("not (x is set)", "not x is set"),
        ('t matches "a\\"b"', 't matches "a\\"b"'),
        ("f( a ,b )", "f(a, b)"),
        ("90m", "90m"),
        ("72h", "72h"),
        ("007", "007"),
        ("1.50", "1.50"),
    ],
)
def test_expression_layout(written: str, canonical: str) -> None:
    source = f'flow "E"\n\nvar v: number = {written}\n'
    result = parse_text(source, "e.flow")
    assert result.flow is not None
    (decl,) = result.flow.variables
    assert decl.initial is not None
    assert format_expr(decl.initial) == canonical


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain", '"plain"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("a\nb\tc", '"a\\nb\\tc"'),
        ("C:\\temp", '"C:\\\\temp"'),  # a lone \t would read as a tab
        ("\\d+", '"\\\\d+"'),  # the parser also reads "\d+" so, but \\ is the spelling
        ("end\\", '"end\\\\"'),
        ('\\"', '"\\\\\\""'),
    ],
)
def test_quote_round_trips(value: str, text: str) -> None:
    assert quote(value) == text
    parsed = parse_text(f"flow {text}\n", "q.flow")
    assert parsed.flow is not None and parsed.flow.name == value


def test_negative_coordinates_keep_their_sign() -> None:
    source = 'flow "L"\n\nstate s:\n    reply location -33.8688, -151.2093\n'
    assert _fmt(source) == source


# ---------------------------------------------------------------- errors and the safety net


@pytest.mark.parametrize(
    "source",
    [
        "",
        "state s:\n",
        'flow "x"\nstate s:\n\treply "x"\n',
        'flow "x\n',
        "\x00",
        'flow "x"\n  end\n',
    ],
)
def test_bad_input_gives_diagnostics_not_text(source: str) -> None:
    result = format_text(source, "bad.flow")
    assert result.text is None
    assert not result.ok
    assert result.diagnostics


def test_output_that_would_change_the_flow_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(formatter, "format_flow", lambda flow, comments: 'flow "other"\n')
    result = format_text('flow "mine"\n', "x.flow")
    assert result.text is None
    assert [d.code for d in result.diagnostics] == ["FL016"]


def test_changed_reports_whether_the_text_moved() -> None:
    assert not format_text('flow "a"\n', "a.flow").changed
    assert format_text('flow  "a"\n', "a.flow").changed


# ---------------------------------------------------------------- ast_compare


def test_strip_spans_erases_positions_and_layout_only() -> None:
    one = parse_text('flow "A"\n\nvar d: duration = 90m\n', "one.flow").flow
    two = parse_text('flow "A"\n\n\n\n    # moved\nvar   d : duration = 1h30m\n', "two.flow").flow
    three = parse_text('flow "A"\n\nvar d: duration = 91m\n', "three.flow").flow
    assert one is not None and two is not None and three is not None
    assert one != two
    assert same_structure(one, two)
    assert strip_spans(one) == strip_spans(two)
    assert not same_structure(one, three)
    stripped = strip_spans(one)
    assert stripped.span == NO_SPAN
    literal = stripped.variables[0].initial
    assert isinstance(literal, ast.Literal) and literal.source == ""
