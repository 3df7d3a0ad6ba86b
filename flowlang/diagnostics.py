"""Source positions and diagnostics: the one place that converts positions and renders errors.

Every stage that reads user input (flow text, YAML, payloads, CLI arguments) reports problems as
`Diagnostic` values. A diagnostic is data (severity, stable code, span, message, label, hint);
`render_text` and `to_json` present it.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


@dataclass(frozen=True, slots=True)
class Span:
    """A 1-based, end-exclusive region of one source file (columns count characters)."""

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
        }


def error(code: str, message: str, span: Span, label: str = "", hint: str = "") -> Diagnostic:
    return Diagnostic(Severity.ERROR, code, message, span, label, hint)


def warning(code: str, message: str, span: Span, label: str = "", hint: str = "") -> Diagnostic:
    return Diagnostic(Severity.WARNING, code, message, span, label, hint)


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


def listing(label: str, names: Iterable[str]) -> str:
    """The choices an unknown name could have been: `states: start, routing`."""
    return f"{label}: " + ", ".join(names)


def _edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def render_text(diagnostic: Diagnostic, source: SourceFile | None) -> str:
    """Render like rustc: header, location arrow, the source line, carets under the span, help."""
    d = diagnostic
    text = source.line(d.span.line) if source is not None else ""
    gutter = str(d.span.line)
    pad = " " * len(gutter)  # the arrow, the bars and the notes line up on the line number
    out = [f"{d.severity.value}[{d.code}]: {d.message}", f" {pad}--> {d.span}"]
    if text or (source is not None and d.span.line >= 1):
        shown = text.replace("\t", " ")
        start = max(d.span.column - 1, 0)
        if d.span.end_line == d.span.line:
            width = max(d.span.end_column - d.span.column, 1)
        else:
            width = max(len(shown) - start, 1)
        carets = " " * start + "^" * width
        label = f" {d.label}" if d.label else ""
        out += [f" {pad} |", f" {gutter} | {shown}", f" {pad} | {carets}{label}"]
    elif d.label:
        out.append(f" {pad} = {d.label}")
    for note in d.notes:
        out.append(f" {pad} = note: {note}")
    if d.hint:
        out.append(f" {pad} = help: {d.hint}")
    return "\n".join(out)


def render_all(diagnostics: Sequence[Diagnostic], sources: dict[str, SourceFile]) -> str:
    return "\n\n".join(render_text(d, sources.get(d.span.file)) for d in diagnostics)


def to_json(diagnostics: Sequence[Diagnostic]) -> str:
    return json.dumps([d.to_dict() for d in diagnostics], indent=2, ensure_ascii=False)


def sort_key(d: Diagnostic) -> tuple[str, int, int, str]:
    return (d.span.file, d.span.line, d.span.column, d.code)
