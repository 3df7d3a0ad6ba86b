"""`flowlang test -k EXPR`: takes a keyword expression, gives the test that selects tests by it.

As pytest's `-k`: words match as case-insensitive substrings of a test's name or file, joined
with `and`, `or`, `not` and parentheses (`not` binds tightest, then `and`, then `or`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from flowlang.errors import FlowError

Matcher = Callable[[str], bool]

_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")
_OPERATORS = ("and", "or", "not")


class KeywordError(FlowError, ValueError):
    """A `-k` expression that does not parse; the message says where."""


def keyword_filter(expression: str) -> Matcher:
    """A function telling whether a test's `file :: name` matches `expression`."""
    tokens = _tokens(expression)
    if not tokens:
        raise KeywordError("the expression is empty")
    parser = _Parser(expression, tokens)
    matcher = parser.disjunction()
    if parser.position < len(tokens):
        raise KeywordError(parser.problem(f"unexpected {tokens[parser.position][0]!r}"))
    return matcher


def _tokens(expression: str) -> list[tuple[str, int]]:
    tokens: list[tuple[str, int]] = []
    position = 0
    while position < len(expression):
        found = _TOKEN.match(expression, position)
        if found is None:  # trailing spaces only
            break
        tokens.append((found.group(1), found.start(1)))
        position = found.end()
    return tokens


class _Parser:
    def __init__(self, expression: str, tokens: list[tuple[str, int]]) -> None:
        self.expression = expression
        self.tokens = tokens
        self.position = 0

    def problem(self, what: str) -> str:
        column = (
            self.tokens[self.position][1]
            if self.position < len(self.tokens)
            else len(self.expression)
        )
        return f"{what} at column {column + 1} of {self.expression!r}"

    def peek(self) -> str | None:
        return self.tokens[self.position][0] if self.position < len(self.tokens) else None

    def disjunction(self) -> Matcher:
        parts = [self.conjunction()]
        while self.peek() == "or":
            self.position += 1
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda text: any(p(text) for p in parts))

    def conjunction(self) -> Matcher:
        parts = [self.negation()]
        while self.peek() == "and":
            self.position += 1
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else (lambda text: all(p(text) for p in parts))

    def negation(self) -> Matcher:
        if self.peek() == "not":
            self.position += 1
            inner = self.negation()
            return lambda text: not inner(text)
        return self.atom()

    def atom(self) -> Matcher:
        token = self.peek()
        if token is None:
            raise KeywordError(self.problem("a word or '(' expected, the expression ended"))
        if token == "(":
            self.position += 1
            inner = self.disjunction()
            if self.peek() != ")":
                raise KeywordError(self.problem("')' expected"))
            self.position += 1
            return inner
        if token == ")" or token in _OPERATORS:
            raise KeywordError(self.problem(f"a word expected, not {token!r}"))
        self.position += 1
        word = token.casefold()
        return lambda text: word in text.casefold()
