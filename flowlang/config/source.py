"""Deployment file bytes -> a ruamel.yaml round-trip tree, or FL50x diagnostics saying why not.

Checks, in order: UTF-8 (FL511), NUL and control characters (FL512), YAML syntax including tab
indentation (FL501), keys given twice in one mapping (FL506), empty file or a top level that is
not a mapping (FL513).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode

from flowlang import codes
from flowlang.diagnostics import Diagnostic, Severity, Span, error

_MAX_REPORTED = 10
_ALLOWED_CONTROLS = frozenset("\t\n\r")


def decode(data: bytes, filename: str) -> tuple[str | None, list[Diagnostic]]:
    """UTF-8 text without a BOM, or FL511 at every undecodable byte (up to ten)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    problems: list[Diagnostic] = []
    start = 0
    while start <= len(data) and len(problems) < _MAX_REPORTED:
        try:
            data[start:].decode("utf-8")
            break
        except UnicodeDecodeError as exc:
            at = start + exc.start
            line, column = _byte_position(data, at)
            problems.append(
                error(
                    codes.DEPLOYMENT_NOT_UTF8,
                    f"byte 0x{data[at]:02x} is not UTF-8 text",
                    Span.point(filename, line, column),
                    hint="save the file as UTF-8",
                )
            )
            start = start + exc.end
    if problems:
        return None, problems
    return data.decode("utf-8"), []


def _byte_position(data: bytes, offset: int) -> tuple[int, int]:
    line_start = data.rfind(b"\n", 0, offset) + 1
    line = data.count(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8", errors="replace")) + 1
    return line, column


def control_characters(text: str, filename: str) -> list[Diagnostic]:
    """FL512 for NUL and other control characters YAML does not allow (up to ten)."""
    problems: list[Diagnostic] = []
    for number, line in enumerate(text.split("\n"), 1):
        for column, char in enumerate(line, 1):
            if (ord(char) < 32 and char not in _ALLOWED_CONTROLS) or ord(char) == 0x7F:
                name = "NUL" if char == "\0" else f"U+{ord(char):04X}"
                problems.append(
                    error(
                        codes.DEPLOYMENT_CONTROL_CHARACTER,
                        f"control character {name} is not allowed in a YAML file",
                        Span.point(filename, number, column),
                        hint="remove it; the file may be binary or corrupted",
                    )
                )
                if len(problems) >= _MAX_REPORTED:
                    return problems
    return problems


def tab_indentation(text: str, filename: str) -> list[Diagnostic]:
    """FL501 for each line indented with a tab."""
    problems = []
    for number, line in enumerate(text.split("\n"), 1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent and line.strip():
            problems.append(
                error(
                    codes.DEPLOYMENT_YAML_SYNTAX,
                    "tab used for indentation",
                    Span.point(filename, number, indent.index("\t") + 1),
                    label="tab",
                    hint="YAML indents with spaces only; replace the tab with spaces",
                )
            )
    return problems


def new_yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = True
    return yaml


def parse(text: str, filename: str) -> tuple[Any, list[Diagnostic]]:
    """The round-trip tree (CommentedMap at the top), or diagnostics and None."""
    yaml = new_yaml()
    try:
        composed = yaml.compose(text)
        tree = yaml.load(text)
    except MarkedYAMLError as exc:
        if "'\\t'" in str(exc.problem):
            tabs = tab_indentation(text, filename)
            if tabs:
                return None, tabs
        return None, [_syntax_error(exc, filename)]
    except YAMLError as exc:  # pragma: no cover - reader errors are caught before parsing
        return None, [error(codes.DEPLOYMENT_YAML_SYNTAX, str(exc), Span.whole_file(filename))]
    except (ValueError, IndexError):  # a date that does not exist (2026-02-30), a number "-_"
        return None, unreadable_scalars(yaml.compose(text), filename)
    if tree is None:
        return None, [
            error(
                codes.DEPLOYMENT_EMPTY,
                "the deployment file is empty",
                Span.whole_file(filename),
                hint="start with e.g. `skills: [Billing]` and `queues:`; see docs/deployment.md",
            )
        ]
    if not isinstance(tree, dict):
        kind = "a list" if isinstance(tree, list) else "a single value"
        return None, [
            error(
                codes.DEPLOYMENT_EMPTY,
                f"the top level of a deployment file must be a mapping of keys, not {kind}",
                Span.point(filename, *_first_content(text)),
                hint="start with keys such as `skills:`, `queues:` and `agents:`",
            )
        ]
    return tree, duplicate_keys(composed, filename)


def _first_content(text: str) -> tuple[int, int]:
    for number, line in enumerate(text.split("\n"), 1):
        stripped = line.lstrip()
        if stripped and not stripped.startswith(("#", "---")):
            return number, len(line) - len(stripped) + 1
    return 1, 1


_WORDS = {
    "<stream end>": "the end of the file",
    "<block end>": "the end of the indented block",
    "<block mapping start>": "a new key",
    "<block sequence start>": "a list item",
    "'\\t'": "a tab",
}


def _syntax_error(exc: MarkedYAMLError, filename: str) -> Diagnostic:
    mark = exc.problem_mark or exc.context_mark
    span = (
        Span.from_yaml(filename, mark.line, mark.column)
        if mark is not None
        else Span.whole_file(filename)
    )
    problem = str(exc.problem or exc.context or "invalid YAML")
    for raw, readable in _WORDS.items():
        problem = problem.replace(raw, readable)
    notes: tuple[str, ...] = ()
    if exc.context and exc.context_mark is not None and exc.context_mark is not mark:
        cm = exc.context_mark
        notes = (f"{exc.context} that starts at {filename}:{cm.line + 1}:{cm.column + 1}",)
    hint = _syntax_hint(problem)
    return Diagnostic(
        Severity.ERROR,
        codes.DEPLOYMENT_YAML_SYNTAX,
        f"invalid YAML: {problem}",
        span,
        hint=hint,
        notes=notes,
    )


def _syntax_hint(problem: str) -> str:
    if "mapping values are not allowed" in problem:
        return "a value containing ': ' must be quoted, e.g. text: \"Note: ...\""
    if "could not find expected ':'" in problem:
        return "each key needs a colon and a space after it"
    if "undefined alias" in problem:
        return "define the anchor (&name) before using it (*name)"
    if "quoted scalar" in problem or "end of the file" in problem:
        return "check for an unclosed quote or bracket"
    return "check the indentation and quoting near this line"


def unreadable_scalars(node: Node | None, filename: str) -> list[Diagnostic]:
    """FL503 for each scalar that YAML takes for a date or a number but cannot read as one."""
    problems: list[Diagnostic] = []
    stack = [node] if node is not None else []
    while stack:
        current = stack.pop()
        if isinstance(current, MappingNode):
            stack.extend(v for pair in current.value for v in pair)
        elif isinstance(current, SequenceNode):
            stack.extend(current.value)
        elif (why := _unreadable(current)) is not None:
            mark = current.start_mark
            span = Span.from_yaml(filename, mark.line, mark.column, len(current.value))
            problems.append(error(codes.DEPLOYMENT_BAD_VALUE, why[0], span, hint=why[1]))
    problems.sort(key=lambda d: (d.span.line, d.span.column))
    return problems or [
        error(codes.DEPLOYMENT_BAD_VALUE, "a value cannot be read", Span.whole_file(filename))
    ]


def _unreadable(node: Node) -> tuple[str, str] | None:
    """What is wrong with a scalar YAML resolves as a date or number but cannot build, and
    the hint (None: it builds)."""
    tag = str(node.tag)
    if tag.endswith(":timestamp") and not _real_timestamp(node.value):
        return f"{node.value} is not a real date", "write a date that exists, as YYYY-MM-DD"
    if tag.endswith((":int", ":float")):
        try:
            new_yaml().constructor.construct_object(node)
        except (ValueError, IndexError):
            return (
                f"{node.value!r} looks like a number to YAML but is not one",
                "quote it to make it text, or write the number's digits",
            )
    return None


def _real_timestamp(text: str) -> bool:
    try:
        datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        return False
    return True


def duplicate_keys(node: Node | None, filename: str) -> list[Diagnostic]:
    """FL506 for every key that appears twice in the same mapping (YAML keeps only one)."""
    problems: list[Diagnostic] = []
    stack = [node] if node is not None else []
    while stack:
        current = stack.pop()
        if isinstance(current, MappingNode):
            first: dict[str, Any] = {}
            for key, value in current.value:
                stack.append(value)
                if not isinstance(key.value, str):
                    continue
                if key.value in first:
                    mark = key.start_mark
                    earlier = first[key.value]
                    problems.append(
                        error(
                            codes.DEPLOYMENT_DUPLICATE,
                            f"key {key.value!r} is given twice",
                            Span.from_yaml(filename, mark.line, mark.column, len(key.value)),
                            label="second time",
                            hint=f"first given at line {earlier.line + 1}; merge the two",
                        )
                    )
                else:
                    first[key.value] = key.start_mark
        elif isinstance(current, SequenceNode):
            stack.extend(current.value)
    problems.sort(key=lambda d: (d.span.line, d.span.column))
    return problems
