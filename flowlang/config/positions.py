"""Where every key and item of a ruamel.yaml tree sits, and the tree as plain Python data.

`build(tree, text, filename)` walks the round-trip tree once and records, for each path such as
`("queues", "Loans", "members", 0)`, the span of the key (or list item) and of its value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarbool import ScalarBoolean
from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString

from flowlang.diagnostics import Span

Path = tuple[str | int, ...]

_PLAIN_VALUE = re.compile(r"[^\n#]*?(?=\s+#|\s*$)")
_PLAIN_FLOW_VALUE = re.compile(r"[^,\]}\n#]*?(?=\s*[,\]}]|\s+#|\s*$)")
_PLAIN_KEY = re.compile(r".*?(?=:(?:\s|$))")


@dataclass(frozen=True, slots=True)
class Located:
    """The span of a key (or list item) and the span of its value."""

    key: Span
    value: Span
    block_scalar: bool = False


@dataclass
class PositionIndex:
    """Spans by path; unknown paths fall back to their nearest known ancestor."""

    filename: str
    entries: dict[Path, Located] = field(default_factory=dict)

    def key_span(self, path: Sequence[str | int]) -> Span:
        """The key or list item at `path`, or the nearest ancestor's, or the whole file."""
        found = self._nearest(tuple(normalize(p) for p in path))
        return found.key if found is not None else Span.whole_file(self.filename)

    def value_span(self, path: Sequence[str | int]) -> Span:
        """The value at `path` (for an unknown path: the nearest ancestor's key)."""
        normalized = tuple(normalize(p) for p in path)
        exact = self.entries.get(normalized)
        if exact is not None:
            return exact.value
        return self.key_span(normalized)

    def get(self, path: Sequence[str | int]) -> Located | None:
        return self.entries.get(tuple(normalize(p) for p in path))

    def _nearest(self, path: Path) -> Located | None:
        while path:
            found = self.entries.get(path)
            if found is not None:
                return found
            path = path[:-1]
        return None


def normalize(part: object) -> str | int:
    """A path part as the index stores it: strings and ints as they are, anything else as text."""
    if isinstance(part, bool) or not isinstance(part, str | int):
        return str(part)
    return part


def build(tree: Any, text: str, filename: str) -> PositionIndex:
    """Index every key and item of the round-trip tree."""
    index = PositionIndex(filename)
    lines = text.split("\n")
    stack: list[tuple[Path, Any, bool]] = [((), tree, False)]
    while stack:
        path, node, in_flow = stack.pop()
        if isinstance(node, CommentedMap):
            flow = in_flow or node.fa.flow_style()
            for key, value in node.items():
                kline, kcol = node.lc.key(key)
                vline, vcol = node.lc.value(key)
                child = (*path, normalize(key))
                index.entries[child] = Located(
                    _span(filename, lines, kline, kcol, key, is_key=True, flow=flow),
                    _span(filename, lines, vline, vcol, value, is_key=False, flow=flow),
                    isinstance(value, LiteralScalarString | FoldedScalarString),
                )
                stack.append((child, value, flow))
        elif isinstance(node, CommentedSeq):
            flow = in_flow or node.fa.flow_style()
            for number, value in enumerate(node):
                line, col = node.lc.item(number)
                span = _span(filename, lines, line, col, value, is_key=False, flow=flow)
                child = (*path, number)
                index.entries[child] = Located(span, span)
                stack.append((child, value, flow))
    return index


def _span(
    filename: str, lines: list[str], line0: int, col0: int, value: Any, *, is_key: bool, flow: bool
) -> Span:
    source = lines[line0] if 0 <= line0 < len(lines) else ""
    return Span.from_yaml(filename, line0, col0, _width(source, col0, value, is_key, flow))


def _width(source: str, col: int, value: Any, is_key: bool, flow: bool) -> int:
    rest = source[col:]
    if isinstance(value, dict | list) or not rest:
        return 1
    if isinstance(value, LiteralScalarString | FoldedScalarString):
        return 1
    if rest[0] in "'\"":
        end = rest.find(rest[0], 1)
        return end + 1 if end > 0 else len(rest)
    if rest[0] in "[{":
        return 1
    pattern = _PLAIN_KEY if is_key else (_PLAIN_FLOW_VALUE if flow else _PLAIN_VALUE)
    match = pattern.match(rest)
    return max(len(match.group(0)) if match else len(str(value)), 1)


def to_plain(node: Any) -> Any:
    """The tree as dicts, lists, str, int, float, bool, date and None (ruamel's subclasses gone)."""
    if isinstance(node, dict):
        return {_plain_key(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_plain(v) for v in node]
    if isinstance(node, ScalarBoolean):
        return bool(node)
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, str):
        return str(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, datetime):
        return datetime.fromisoformat(node.isoformat())
    if isinstance(node, date):
        return date(node.year, node.month, node.day)
    return node


def _plain_key(key: Any) -> Any:
    plain = to_plain(key)
    try:
        hash(plain)
    except TypeError:
        return str(plain)
    return plain
