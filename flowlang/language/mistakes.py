"""Common mistakes a syntax error turns out to be: text in the wrong quotes, `set x = 1`, `else
if`, `then` after a condition, and a word that begins no statement (with what to write instead).

Each finder takes what the parser saw and returns the diagnostic and the line as it was meant
(recovery parses on with it), or None when the mistake is another one. The words a statement may
begin with come from the grammar (the parser passes the keywords it expected), so a statement
added to the grammar is offered without a change here; `INSTEAD_OF` lists words from other
languages and what flowlang writes for them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from flowlang import codes
from flowlang.diagnostics import Diagnostic, Span, did_you_mean, error

Found = tuple[Diagnostic, str]

QUOTE_PAIRS = {
    "'": "'",
    "\u2018": "\u2019",
    "\u201c": "\u201d",
    "\u201e": "\u201c",
    "\u00ab": "\u00bb",
}
"""Opening quotes a text is sometimes written with (a word processor's curly quotes among them)
and the quote that closes each."""

_REPLY = 'a message is sent with reply: reply "Hello"'
_END = "a conversation ends with end; a task gives its outcome with outcome NAME"
_GO = "write go to state NAME"
_ROUTE = 'write route to queue "Retail Banking"'
_ELIF = "write elif CONDITION:"
_WAIT = (
    "a wait belongs to a statement: ask ... wait 10m:, route to last agent wait 5m, "
    "hand off to bot ... wait 10m:"
)
INSTEAD_OF = {
    **dict.fromkeys(("send", "say", "respond", "answer", "message"), _REPLY),
    **dict.fromkeys(("close", "exit", "stop", "finish", "hangup", "return", "quit"), _END),
    **dict.fromkeys(("jump", "next"), _GO),
    **dict.fromkeys(("queue", "enqueue", "assign"), _ROUTE),
    **dict.fromkeys(("elseif", "elsif", "else_if"), _ELIF),
    **dict.fromkeys(("wait", "sleep", "delay"), _WAIT),
    "print": 'write log "..." (a line in the conversation\'s trace)',
}
"""A word that begins no statement, and how flowlang writes what it usually means there."""

_CONDITION_WORDS = ("then", "do")


def wrong_quotes(filename: str, line: int, column: int, text: str) -> Found | None:
    """A text opened with `'`, or a curly quote, at `column` (1-based) of `text`."""
    opening = text[column - 1 : column]
    closing = QUOTE_PAIRS.get(opening)
    if closing is None:
        return None
    end = text.find(closing, column)
    if end < 0 and opening != "'":
        end = text.find(opening, column)  # “Hello“: the same curly quote typed twice
    words = "curly quotes" if opening != "'" else "single quotes"
    if end < 0:
        span = Span.point(filename, line, column)
        fixed = text[: column - 1] + '"' + text[column:]
        label = 'write " here'
    else:
        span = Span(filename, line, column, line, end + 2)
        meant = '"' + text[column:end].replace('"', '\\"') + '"'
        fixed = text[: column - 1] + meant + text[end + 1 :]
        label = f"write {meant}"
    return error(
        codes.WRONG_QUOTES,
        f'a text is written in straight double quotes ("), not {words} ({opening})',
        span,
        label,
        hint='texts go in "double quotes"; names (of states, variables) take no quotes',
    ), fixed


def set_with_equals(span: Span, text: str, expected_keywords: Sequence[str]) -> Found | None:
    """`set x = 5`: the parser wanted `to` where `=` stands."""
    if "to" not in expected_keywords or not text.lstrip().startswith("set "):
        return None
    fixed = text[: span.column - 1] + "to" + text[span.end_column - 1 :]
    return error(
        codes.SET_WITH_EQUALS,
        "'set' gives a value with 'to', not '='",
        span,
        "write 'to' here",
        hint=f"{fixed.strip()}  ('==' compares two values)",
    ), fixed


def else_if(span: Span, text: str, word: str, expects_colon: bool) -> Found | None:
    """`else if cond:`: the parser wanted ':' after `else` where `if` stands."""
    before = text[: span.column - 1]
    if word != "if" or not expects_colon or before.strip() != "else":
        return None
    start = len(before) - len(before.lstrip())
    fixed = text[:start] + "elif" + text[span.end_column - 1 :]
    return error(
        codes.ELSE_IF,
        "'else if' is written 'elif'",
        Span(span.file, span.line, start + 1, span.line, span.end_column),
        "write 'elif'",
        hint=f"{fixed.strip()}  (an 'else:' block holds any other statements, 'if' among them)",
    ), fixed


def then_after_condition(span: Span, text: str, word: str, expects_colon: bool) -> Found | None:
    """`if cond then` (or `do`): the parser wanted ':' where the word stands, at the end."""
    if word not in _CONDITION_WORDS or not expects_colon or text[span.end_column - 1 :].strip():
        return None
    fixed = text[: span.column - 1].rstrip() + ":"
    return error(
        codes.THEN_AFTER_CONDITION,
        f"no '{word}' after a condition: the line ends with ':' and the block is indented below",
        span,
        "write ':' instead",
        hint=fixed.strip(),
    ), fixed


def unknown_statement(
    span: Span, text: str, word: str, expected_keywords: Sequence[str], is_keyword: bool
) -> Found | None:
    """A word at the start of a line that begins no statement or declaration there; the line
    is set aside (returned as it was) so that recovery replaces it."""
    if text[: span.column - 1].strip() or len(expected_keywords) < 3:
        return None
    if is_keyword and word not in INSTEAD_OF:
        return None  # a keyword out of place ('else' without 'if'): the generic message says it
    kind = "statement" if span.column > 1 else "declaration"
    starts = f"a {kind} here begins with one of: {', '.join(expected_keywords)}"
    close = did_you_mean(word, INSTEAD_OF)
    if word.casefold() in INSTEAD_OF:
        hint = INSTEAD_OF[word.casefold()]
    elif close is not None:
        hint = f"if you meant {close!r}: {INSTEAD_OF[close]}"  # no quick fix to 'close
    elif re.match(r"\s*=[^=]", text[span.end_column - 1 :]):
        hint = f"a variable gets a value with set: set {word} to ..."
    else:
        hint = starts
    return error(
        codes.UNKNOWN_STATEMENT, f"{word!r} does not begin a {kind}", span, f"not a {kind}", hint
    ), text
