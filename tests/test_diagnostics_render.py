"""How a diagnostic looks in a terminal: carets under the exact cells of the span whatever the
text before it (CJK, emoji, combining marks), and secondary spans below the main one."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from flowlang.diagnostics import Diagnostic, Severity, SourceFile, Span, display_width, render_all


def _render(line: str, column: int, width: int) -> list[str]:
    source = SourceFile("f.flow", line + "\n")
    d = Diagnostic(Severity.ERROR, "FL101", "unknown queue", Span.point("f.flow", 1, column, width))
    return render_all([d], {"f.flow": source}).splitlines()


def test_carets_line_up_after_cjk_text() -> None:
    line = '    reply "ご用件は？" to queue "Retial"'
    column = line.index("Retial") + 1
    out = _render(line, column, len("Retial"))
    quoted, carets = out[3], out[4]
    assert quoted == f" 1 | {line}"
    # each CJK character takes two cells: the carets start under the R, not six cells left
    prefix = line[: column - 1]
    assert carets == " 1 | ".replace("1", " ") + " " * (len(prefix) + 5) + "^" * 6
    assert carets.index("^") == quoted.index("R") + 5


def test_carets_under_an_emoji_are_two_cells_wide() -> None:
    line = '    reply "🙂"'
    out = _render(line, line.index("🙂") + 1, 1)
    assert out[4].endswith(" " * 11 + "^^")


def test_a_secondary_span_is_shown_with_its_label() -> None:
    text = 'state start:\n    end\n    reply "never"\n'
    main = Span("f.flow", 3, 5, 3, 18)
    first = Span("f.flow", 2, 5, 2, 8)
    d = Diagnostic(
        Severity.WARNING,
        "FL301",
        "unreachable step",
        main,
        "never runs",
        "",
        related=((first, "the flow ends here"),),
    )
    assert render_all([d], {"f.flow": SourceFile("f.flow", text)}).splitlines() == [
        "warning[FL301]: unreachable step",
        "  --> f.flow:3:5",
        "   |",
        ' 3 |     reply "never"',
        "   |     ^^^^^^^^^^^^^ never runs",
        "   |",
        " 2 |     end",
        "   |     --- the flow ends here",
    ]
    assert d.to_dict()["related"] == [
        {
            "file": "f.flow",
            "line": 2,
            "column": 5,
            "end_line": 2,
            "end_column": 8,
            "label": "the flow ends here",
        }
    ]


@given(st.text(alphabet=st.sampled_from("aZ 文字한글🙂é\u0301"), max_size=12), st.integers(1, 5))
def test_carets_always_start_at_the_display_column_of_the_span(prefix: str, width: int) -> None:
    line = prefix + "x" * width
    out = _render(line, len(prefix) + 1, width)
    assert out[4] == "   | " + " " * display_width(prefix) + "^" * width
