"""A small TextMate tokenizer for the editor package's grammar, for the tests and the README's
screenshot. The grammar's regexes are Oniguruma's; they are written in the subset Python's `re`
reads the same way (no possessive quantifiers or \\h), so this runs them as VS Code's engine
(vscode-textmate) does: from the current position, the rule whose match starts first wins (the
earlier rule on a tie, a region's `end` before its patterns); a `begin`/`end` rule (strings)
opens a region with its own patterns until its end; `captures`, `beginCaptures` and
`endCaptures` scope the groups they name. `tests/editors/test_vscode_extension.py` checks it
against vscode-textmate itself on the shipped flows."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

VSCODE = Path(__file__).resolve().parents[2] / "editors" / "vscode"
GRAMMAR: dict[str, Any] = json.loads(
    (VSCODE / "syntaxes" / "flowlang.tmLanguage.json").read_text("utf-8")
)


@dataclass(frozen=True)
class Token:
    line: int
    start: int
    text: str
    scope: str
    """The scopes below the grammar's own (`source.flowlang`), outermost first, space-separated;
    empty for text no rule matched."""


def _rules(patterns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for pattern in patterns:
        if "include" in pattern:
            found.extend(_rules([GRAMMAR["repository"][pattern["include"].lstrip("#")]]))
        else:
            found.append(pattern)
    return found


@cache
def _regex(source: str) -> re.Pattern[str]:
    return re.compile(source)


def _join(*scopes: str) -> str:
    return " ".join(s for s in scopes if s)


def _emit(
    tokens: list[Token],
    number: int,
    match: re.Match[str],
    scope: str,
    captures: dict[str, Any] | None,
) -> None:
    """The tokens of a match: its text in `scope`, the groups `captures` names in their own."""
    if not captures:
        if match.group():
            tokens.append(Token(number, match.start(), match.group(), scope))
        return
    position = match.start()
    for group in sorted(captures, key=lambda g: match.start(int(g)) if match.group(int(g)) else -1):
        text = match.group(int(group))
        if not text:
            continue
        start = match.start(int(group))
        if start > position:
            _gap(tokens, number, match.string[position:start], position, scope)
        name = captures[group]["name"]
        name = re.sub(r"\$(\d)", lambda m: match.group(int(m.group(1))) or "", name)
        tokens.append(Token(number, start, text, _join(scope, name)))
        position = start + len(text)
    if position < match.end():
        _gap(tokens, number, match.string[position : match.end()], position, scope)


def _gap(tokens: list[Token], number: int, text: str, start: int, scope: str) -> None:
    """Text no rule matched, in the enclosing scope; whitespace is left out."""
    for run in re.finditer(r"\S+", text):
        tokens.append(Token(number, start + run.start(), run.group(), scope))


def tokenize(text: str) -> list[Token]:
    """The scoped tokens of `text`, as VS Code's TextMate engine gives them (whitespace left
    out)."""
    top = _rules(GRAMMAR["patterns"])
    tokens: list[Token] = []
    region: dict[str, Any] | None = None  # the begin/end rule whose region is open
    for number, line in enumerate(text.split("\n"), 1):
        position = 0
        while True:
            scope = region["name"] if region is not None else ""
            candidates: list[tuple[str, dict[str, Any]]] = []
            if region is not None:
                candidates.append(("end", region))
            rules = _rules(region.get("patterns", [])) if region is not None else top
            candidates += [("rule", rule) for rule in rules]
            best: tuple[re.Match[str], str, dict[str, Any]] | None = None
            for kind, rule in candidates:
                source = rule["end"] if kind == "end" else rule.get("match") or rule["begin"]
                found = _regex(source).search(line, position)
                if found is not None and (best is None or found.start() < best[0].start()):
                    best = (found, kind, rule)
            if best is None or (best[0].end() == position and best[1] != "end"):
                _gap(tokens, number, line[position:], position, scope)
                break
            found, kind, rule = best
            _gap(tokens, number, line[position : found.start()], position, scope)
            if kind == "end":
                _emit(tokens, number, found, scope, rule.get("endCaptures"))
                region = None
            elif "begin" in rule:
                _emit(tokens, number, found, rule["name"], rule.get("beginCaptures"))
                region = rule
            else:
                inner = _join(scope, rule.get("name", ""))
                _emit(tokens, number, found, inner, rule.get("captures"))
            if found.end() == position and kind == "end" and found.end() >= len(line):
                break
            position = found.end()
            if position >= len(line) and region is None:
                break
    return tokens
