"""Keyword matching: normalisation, word boundaries, prefixes, tags, CJK and regexes."""

from __future__ import annotations

import re

from hypothesis import example, given
from hypothesis import strategies as st

from flowlang.runtime.keywords import KeywordMatcher, normalise


def matched(keywords: list[str], text: str, regexes: list[str] | None = None) -> bool:
    return KeywordMatcher([(keywords, regexes or [])]).matches(text) == [0]


def test_normalise_folds_case_accents_and_width() -> None:
    assert normalise("PRÉSTAMO") == "prestamo"
    assert normalise("ＬＯＡＮ") == "loan"  # full-width letters
    assert normalise("Straße") == "strasse"


def test_normalise_keeps_japanese_voiced_kana() -> None:
    assert normalise("ガイド") == "ガイド"


def test_whole_words_only() -> None:
    assert matched(["loan"], "I need a LOAN today")
    assert not matched(["loan"], "my sloane square branch")
    assert not matched(["loan"], "loans please")


def test_prefix_pattern() -> None:
    assert matched(["fee*"], "why these fees?")
    assert matched(["fee*"], "fee")
    assert not matched(["fee*"], "coffee")


def test_phrase_hashtag_and_mention() -> None:
    assert matched(["new fees"], "About the new fees, hmm")
    assert matched(["#nothappy"], "@GbankSocial Hey team, I am #nothappy with your fees")
    assert not matched(["#nothappy"], "I am nothappy")
    assert matched(["@GbankSocial"], "@gbanksocial hi")


def test_accents_and_case_insensitive() -> None:
    assert matched(["préstamo"], "Quiero un PRESTAMO")
    assert matched(["prestamo"], "quiero un préstamo")


def test_cjk_matches_as_substring() -> None:
    assert matched(["ローン"], "住宅ローンについて教えてください")
    assert matched(["口座"], "口座を開設したい")


def test_regex_patterns() -> None:
    assert matched([], "I was over charged twice", ["over ?charged"])
    assert not matched([], "all good", ["over ?charged"])


def test_several_whens_report_every_match_in_order() -> None:
    matcher = KeywordMatcher([(["card*"], []), (["fee*"], []), (["loan"], [])])
    assert matcher.matches("fees on my card") == [0, 1]
    assert matcher.matches("nothing relevant") == []


@given(st.text(max_size=200))
def test_matching_never_fails_on_any_text(text: str) -> None:
    matcher = KeywordMatcher([(["fee*", "#tag", "ローン", "a b"], ["x+"])])
    result = matcher.matches(text)
    assert result in ([], [0])


@given(st.from_regex(r"[a-z]{3,8}", fullmatch=True), st.from_regex(r"[a-z ]{0,20}", fullmatch=True))
def test_a_word_is_found_wherever_it_stands_alone(word: str, filler: str) -> None:
    assert matched([word], f"{filler} {word.upper()} {filler}")


_REGEXES = ["over ?charged", "Refund", "[A-Z]{2}\\d", "\\bfee\\b", "ç[a-z]+", "(ab)\\1", "x+"]
_WORDS = st.sampled_from(["fee*", "card", "#tag", "ローン", "a b", "ÉTÉ", "ab"])
_TEXTS = st.text(alphabet="abcdefrOVERCHARGDFUNÉçx #ローン0129 ", max_size=40)


@given(
    st.lists(
        st.tuples(st.lists(_WORDS, max_size=3), st.lists(st.sampled_from(_REGEXES), max_size=2)),
        min_size=1,
        max_size=4,
    ),
    _TEXTS,
)
@example([([], ["ç[a-z]+"])], "Façade")  # only the text has it: its normal form is "facade"
@example([([], ["over ?charged"])], "OVER CHARGED")  # an ASCII text: one search finds it
def test_a_regex_searched_once_in_an_ascii_text_finds_what_searching_both_forms_finds(
    whens: list[tuple[list[str], list[str]]], text: str
) -> None:
    """A `when`'s regex is searched in the text and in its normal form; in an ASCII text (its
    normal form lower-cased) one search does, and finds the same."""
    by_keywords = KeywordMatcher([(keywords, []) for keywords, _ in whens]).matches(text)
    norm = normalise(text)
    by_regex = {
        index
        for index, (_, regexes) in enumerate(whens)
        for pattern in regexes
        if re.search(pattern, text, re.IGNORECASE) or re.search(pattern, norm, re.IGNORECASE)
    }
    assert KeywordMatcher(whens).matches(text) == sorted({*by_keywords, *by_regex})
