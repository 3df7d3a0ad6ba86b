"""A small TextMate tokenizer for the editor package's grammar, for the tests and the README's
screenshot. The grammar's regexes are Oniguruma's; they are written in the subset Python's `re`
reads the same way (no possessive quantifiers or \\h), so this runs them as an editor would: at
each position the first rule of the list that matches, a `begin`/`end` rule (strings)
continuing with its own patterns until its end."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
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


def _rules(patterns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for pattern in patterns:
        if "include" in pattern:
            found.extend(_rules([GRAMMAR["repository"][pattern["include"].lstrip("#")]]))
        else:
            found.append(pattern)
    return found


def _captured(rule: dict[str, Any], match: re.Match[str], line: int) -> list[Token]:
    if "captures" not in rule:
        return [Token(line, match.start(), match.group(), rule["name"])]
    tokens = []
    for group, capture in rule["captures"].items():
        if match.group(int(group)):
            name = capture["name"].replace("$1", match.group(1))
            tokens.append(Token(line, match.start(int(group)), match.group(int(group)), name))
    return tokens


def tokenize(text: str) -> list[Token]:
    """The scoped tokens of `text`, as a TextMate engine gives them (whitespace left out)."""
    top = _rules(GRAMMAR["patterns"])
    tokens: list[Token] = []
    for number, line in enumerate(text.split("\n"), 1):
        position = 0
        while position < len(line):
            if line[position] in " \t":
                position += 1
                continue
            for rule in top:
                pattern = re.compile(rule.get("match") or rule["begin"], re.MULTILINE)
                match = pattern.match(line, position)
                if match is None or match.end() == position:
                    continue
                if "begin" in rule:
                    position = _region(rule, line, number, match, tokens)
                else:
                    tokens.extend(_captured(rule, match, number))
                    position = match.end()
                break
            else:
                tokens.append(Token(number, position, line[position], ""))
                position += 1
    return tokens


def _region(
    rule: dict[str, Any], line: str, number: int, begin: re.Match[str], tokens: list[Token]
) -> int:
    scope = rule["name"]
    tokens.append(Token(number, begin.start(), begin.group(), scope))
    position = begin.end()
    end = re.compile(rule["end"])
    inner = _rules(rule.get("patterns", []))
    while True:
        closing = end.match(line, position)
        if closing is not None:
            if closing.group():
                tokens.append(Token(number, position, closing.group(), scope))
            return closing.end()
        for pattern in inner:
            match = re.compile(pattern["match"]).match(line, position)
            if match is not None and match.end() > position:
                tokens.append(Token(number, position, match.group(), f"{scope} {pattern['name']}"))
                position = match.end()
                break
        else:
            tokens.append(Token(number, position, line[position], scope))
            position += 1


