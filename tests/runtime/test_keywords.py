"""Keyword matching: normalisation, word boundaries, prefixes, tags, CJK and regexes."""

from __future__ import annotations

from hypothesis import given
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
