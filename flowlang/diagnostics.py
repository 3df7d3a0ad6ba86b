"""Source positions and diagnostics: the one place that converts positions and renders errors.

Every stage that reads user input (flow text, YAML, payloads, CLI arguments) reports problems as
`Diagnostic` values. A diagnostic is data (severity, stable code, span, message, label, hint);
`render_text` and `to_json` present it.
"""

from __future__ import annotations

import difflib
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


@dataclass(frozen=True, slots=True)
class Span:
    """A 1-based, end-exclusive region of one source file (columns count characters; the
    renderer turns them into display cells, so carets line up under CJK text and emoji)."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    @classmethod
    def point(cls, file: str, line: int, column: int, width: int = 1) -> Span:
        return cls(file, line, column, line, column + max(width, 1))

    @classmethod
    def from_yaml(cls, file: str, line0: int, col0: int, width: int = 1) -> Span:
        """ruamel.yaml's `.lc` positions are 0-based."""
        return cls.point(file, line0 + 1, col0 + 1, width)

    @classmethod
    def whole_file(cls, file: str) -> Span:
        return cls(file, 1, 1, 1, 1)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding about user input."""

    severity: Severity
    code: str
    message: str
    span: Span
    label: str = ""
    hint: str = ""
    notes: tuple[str, ...] = ()
    related: tuple[tuple[Span, str], ...] = ()
    """Secondary spans with their labels ("first defined here"), shown below the main one."""

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "file": self.span.file,
            "line": self.span.line,
            "column": self.span.column,
            "end_line": self.span.end_line,
            "end_column": self.span.end_column,
            "label": self.label,
            "hint": self.hint,
            "notes": list(self.notes),
            "related": [
                {
                    "file": span.file,
                    "line": span.line,
                    "column": span.column,
                    "end_line": span.end_line,
                    "end_column": span.end_column,
                    "label": label,
                }
                for span, label in self.related
            ],
        }


def error(
    code: str,
    message: str,
    span: Span,
    label: str = "",
    hint: str = "",
    related: tuple[tuple[Span, str], ...] = (),
) -> Diagnostic:
    return Diagnostic(Severity.ERROR, code, message, span, label, hint, (), related)


def warning(
    code: str,
    message: str,
    span: Span,
    label: str = "",
    hint: str = "",
    related: tuple[tuple[Span, str], ...] = (),
) -> Diagnostic:
    return Diagnostic(Severity.WARNING, code, message, span, label, hint, (), related)


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def source_lines(text: str) -> list[str]:
    """The lines as the parser counts them: only \\r\\n, \\r and \\n end a line.

    `str.splitlines` also breaks at form feeds and other separators, which would
    put a diagnostic's line number out of step with the file.
    """
    return _LINE_BREAK.split(text)


@dataclass
class SourceFile:
    """The text of one input file, kept so diagnostics can quote its lines."""

    name: str
    text: str
    _lines: list[str] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._lines = source_lines(self.text)

    def line(self, number: int) -> str:
        if 1 <= number <= len(self._lines):
            return self._lines[number - 1]
        return ""


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate within about a third of the name's length, never the name itself."""
    pool = [c for c in candidates if c != name]
    if not pool or not name:
        return None
    lowered = {c.casefold(): c for c in pool}
    if name.casefold() in lowered:
        return lowered[name.casefold()]
    best: tuple[int, str] | None = None
    limit = max(1, len(name) // 3)
    for candidate in pool:
        distance = _edit_distance(name.casefold(), candidate.casefold())
        if distance <= limit and (best is None or distance < best[0]):
            best = (distance, candidate)
    if best is None:
        close = difflib.get_close_matches(name, pool, n=1, cutoff=0.8)
        return close[0] if close else None
    return best[1]


def suggest(
    name: str, candidates: Iterable[str], otherwise: str, show: Callable[[str], str] = repr
) -> str:
    """The hint for an unknown `name`: "did you mean 'X'?" with the closest candidate
    (`did_you_mean`), else `otherwise` (often `listing` of the choices, or how to declare it)."""
    suggestion = did_you_mean(name, candidates)
    return f"did you mean {show(suggestion)}?" if suggestion else otherwise


_SUGGESTED = re.compile(r"did you mean (?P<q>[\"'`])(?P<name>.+?)(?P=q)\?")


def suggested_name(hint: str) -> str | None:
    """The name a `suggest` hint offers (`did you mean "Loans"?` -> `Loans`), for quick fixes."""
    found = _SUGGESTED.search(hint)
    return found.group("name") if found is not None else None


def listing(label: str, names: Iterable[str]) -> str:
    """The choices an unknown name could have been: `states: start, routing`."""
    return f"{label}: " + ", ".join(names)


def _edit_distance(a: str, b: str) -> int:
    """Edits from `a` to `b`: a letter added, removed or changed, or two neighbours swapped
    (`ned` is one edit from `end`)."""
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            cost = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, before[j - 2] + 1)
            current.append(cost)
        before, previous = previous, current
    return previous[-1]


def display_width(text: str) -> int:
    """The terminal cells `text` takes: 2 for a wide or full-width character (CJK, emoji), 0 for
    a combining mark, a zero-width joiner or a variation selector, 1 for the rest."""
    return sum(_cells(ch) for ch in text)


def _cells(ch: str) -> int:
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    if "\ufe00" <= ch <= "\ufe0f":
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


_ANSI = {
    Severity.ERROR: "\x1b[1;31m",
    Severity.WARNING: "\x1b[1;33m",
    Severity.NOTE: "\x1b[1;36m",
    "frame": "\x1b[1;34m",
    "bold": "\x1b[1m",
    "secondary": "\x1b[1;34m",
}
_RESET = "\x1b[0m"


def _paint(text: str, style: str | Severity, color: bool) -> str:
    return f"{_ANSI[style]}{text}{_RESET}" if color and text else text


def _underline(text: str, span: Span, line: int, mark: str) -> tuple[str, str]:
    """The padding and marks under `span` on source `line` of `text`, in display cells."""
    shown = text.replace("\t", " ")
    start = max(span.column - 1, 0) if line == span.line else len(shown) - len(shown.lstrip())
    end = span.end_column - 1 if span.end_line == line else len(shown)
    end = max(end, start + 1)
    width = max(display_width(shown[start:end]), 1)
    return " " * display_width(shown[:start]), mark * width


def render_text(diagnostic: Diagnostic, source: SourceFile | None, color: bool = False) -> str:
    """Render like rustc: header, location arrow, the source line, carets under the span (in
    display cells), secondary spans, notes and help; ANSI colours with `color`."""
    return _render(diagnostic, {source.name: source} if source is not None else {}, color)


def _render(d: Diagnostic, sources: dict[str, SourceFile], color: bool) -> str:
    source = sources.get(d.span.file)
    lines = [d.span.line] + [span.line for span, _ in d.related]
    gutter_width = max(len(str(n)) for n in lines)
    pad = " " * gutter_width  # the arrow, the bars and the notes line up on the line number

    def bar(rest: str = "") -> str:
        return f" {pad} {_paint('|', 'frame', color)}{rest}"

    def quoted(number: int, text: str) -> str:
        gutter = _paint(str(number).rjust(gutter_width), "frame", color)
        return f" {gutter} {_paint('|', 'frame', color)} {text.replace(chr(9), ' ')}"

    header = _paint(f"{d.severity.value}[{d.code}]", d.severity, color)
    out = [f"{header}{_paint(': ' + d.message, 'bold', color)}"]
    out.append(f" {pad}{_paint('-->', 'frame', color)} {d.span}")
    text = source.line(d.span.line) if source is not None else ""
    if text or (source is not None and d.span.line >= 1):
        indent, marks = _underline(text, d.span, d.span.line, "^")
        label = f" {d.label}" if d.label else ""
        underline = _paint(marks + label, d.severity, color)
        out += [bar(), quoted(d.span.line, text), bar(f" {indent}{underline}")]
    elif d.label:
        out.append(f" {pad} = {d.label}")
    for span, label in d.related:
        other = sources.get(span.file)
        related_text = other.line(span.line) if other is not None else ""
        if not related_text:
            out.append(f" {pad} = {label}: {span}")
            continue
        if span.file != d.span.file:
            out.append(f" {pad}{_paint(':::', 'frame', color)} {span}")
        else:
            out.append(bar())
        indent, marks = _underline(related_text, span, span.line, "-")
        out += [
            quoted(span.line, related_text),
            bar(f" {indent}{_paint(marks + (' ' + label if label else ''), 'secondary', color)}"),
        ]
    for note in d.notes:
        out.append(f" {pad} = {_paint('note', 'bold', color)}: {note}")
    if d.hint:
        out.append(f" {pad} = {_paint('help', 'bold', color)}: {d.hint}")
    return "\n".join(out)


def render_all(
    diagnostics: Sequence[Diagnostic], sources: dict[str, SourceFile], color: bool = False
) -> str:
    return "\n\n".join(_render(d, sources, color) for d in diagnostics)


def to_json(diagnostics: Sequence[Diagnostic]) -> str:
    return json.dumps([d.to_dict() for d in diagnostics], indent=2, ensure_ascii=False)


def sort_key(d: Diagnostic) -> tuple[str, int, int, str]:
    return (d.span.file, d.span.line, d.span.column, d.code)
