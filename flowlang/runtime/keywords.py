"""Keyword matching: one Aho-Corasick automaton per match step over normalised text.

Normalisation: NFKC (full-width letters become ASCII), case folded, accents stripped from
non-CJK letters (so "préstamo" matches "prestamo" but Japanese voiced kana stay intact).
Patterns: `word`, `a phrase`, `prefix*`, `#hashtag`, `@mention` match on word boundaries; any
pattern containing CJK characters matches as a substring, since those scripts have no spaces.
The cost of a match grows with the message length, not with the number of keywords.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import NamedTuple

import ahocorasick

_CJK_START = 0x2E80


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return code >= _CJK_START and not (0xFF00 <= code <= 0xFFEF)


def normalise(text: str) -> str:
    """The form both keywords and messages are compared in."""
    if text.isascii():  # NFKC and accent stripping leave ASCII as it is
        return text.lower()
    folded = unicodedata.normalize("NFKC", text).casefold()
    decomposed = unicodedata.normalize("NFD", folded)
    out: list[str] = []
    for ch in decomposed:
        if unicodedata.combining(ch) and out and not _is_cjk(out[-1]):
            continue
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


class _Entry(NamedTuple):
    when: int
    length: int
    prefix: bool
    cjk: bool


class KeywordMatcher:
    """Which `when` clauses of one match step occur in a text."""

    def __init__(self, whens: Sequence[tuple[Sequence[str], Sequence[str]]]) -> None:
        self._automaton = ahocorasick.Automaton()
        entries: dict[str, list[_Entry]] = {}
        for index, (keywords, _regexes) in enumerate(whens):
            for keyword in keywords:
                prefix = keyword.endswith("*")
                key = normalise(keyword.rstrip("*").strip())
                if not key:
                    continue
                cjk = any(_is_cjk(c) for c in key)
                entries.setdefault(key, []).append(_Entry(index, len(key), prefix, cjk))
        for key, value in entries.items():
            self._automaton.add_word(key, tuple(value))
        self._empty = not entries
        if not self._empty:
            self._automaton.make_automaton()
        self._regexes = [
            (index, [re.compile(r, re.IGNORECASE) for r in regexes])
            for index, (_keywords, regexes) in enumerate(whens)
            if regexes
        ]
        self.count = len(whens)
        self.labels = ["/".join([*keywords, *regexes])[:40] for keywords, regexes in whens]
        """Each `when` clause's patterns, shortened, for traces."""

    def matches(self, text: str, normalised: str | None = None) -> list[int]:
        """Indexes of the `when` clauses that match, ascending (`normalised`: the text's
        `normalise()`, when the caller has it already)."""
        found: set[int] = set()
        norm = normalise(text) if normalised is None else normalised
        if not self._empty:
            for end, entries in self._automaton.iter(norm):
                for when, length, prefix, cjk in entries:
                    if when not in found and (cjk or _bounded(norm, end, length, prefix)):
                        found.add(when)
        if self._regexes:
            # An ASCII text's normal form is the text lower-cased, which a case-blind regex
            # finds in it as well: one search then does.
            again = not text.isascii()
            for index, regexes in self._regexes:
                if index in found:
                    continue
                for regex in regexes:
                    if regex.search(norm) or (again and regex.search(text)):
                        found.add(index)
                        break
        return sorted(found) if found else []


def _bounded(text: str, end: int, length: int, prefix: bool) -> bool:
    """Whether the keyword of `length` ending at `end` stands on word boundaries (only at its
    start for a `prefix*`)."""
    start = end - length + 1
    if start > 0 and _is_word_char(text[start - 1]) and _is_word_char(text[start]):
        return False
    if prefix:
        return True
    after = end + 1
    return after >= len(text) or not (_is_word_char(text[after]) and _is_word_char(text[end]))
