"""A stable text dump of an AST: one line per node with its position, fields indented under it.

Used by the parse-stage golden files (tests/cases/stages/*.parse); the text changes only when
the parser builds a different tree.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass

from flowlang.diagnostics import Span


def dump(node: object) -> str:
    """The tree under `node` as indented text, ending with a newline."""
    lines: list[str] = []
    _node(node, 0, lines)
    return "\n".join(lines) + "\n"


def _node(node: object, depth: int, lines: list[str], prefix: str = "") -> None:
    pad = "  " * depth
    if isinstance(node, Span):  # a span of its own, beside the node's (a type's name, ...)
        lines.append(f"{pad}{prefix}@{node.line}:{node.column}-{node.end_line}:{node.end_column}")
        return
    if not is_dataclass(node) or isinstance(node, type):
        lines.append(f"{pad}{prefix}{node!r}")
        return
    span = getattr(node, "span", None)
    where = f" @{span.line}:{span.column}" if isinstance(span, Span) else ""
    lines.append(f"{pad}{prefix}{type(node).__name__}{where}")
    for f in fields(node):
        if f.name == "span":
            continue
        if f.metadata.get("dump") == "when set" and getattr(node, f.name) == f.default:
            continue  # a field most nodes leave at its default (`Flow.module`)
        _field(f.name, getattr(node, f.name), depth + 1, lines)


def _field(name: str, value: object, depth: int, lines: list[str]) -> None:
    pad = "  " * depth
    if isinstance(value, tuple | list):
        if not value:
            lines.append(f"{pad}{name}: ()")
            return
        if not any(is_dataclass(item) for item in value):
            lines.append(f"{pad}{name}: {tuple(value)!r}")
            return
        lines.append(f"{pad}{name}:")
        for item in value:
            _node(item, depth + 1, lines, "- ")
    elif is_dataclass(value) and not isinstance(value, type):
        _node(value, depth, lines, f"{name}: ")
    else:
        lines.append(f"{pad}{name}: {value!r}")
