"""Text length as each channel counts it; X's weighted length against twitter-text's rules.

The conformance cases follow twitter-text's `conformance/validate.yml` (v3 configuration: the
weighted-length cases with emoji parsing) and the miscounts reported in issue 19.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowlang.channels.policy import ChannelPolicy
from flowlang.channels.registry import RegistryError, builtin_registry, load_registry
from flowlang.channels.text_length import text_length
from flowlang.runtime.ports import ConversationView, OutboundMessage

X = builtin_registry()["x_public"]
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "weighted"),
    [
        # issue 19: what X counts, where the hand count was 832, 560, (no URL) and 28
        (FAMILY * 46 + "a" * 188, 280),
        ("’" * 280, 280),
        ("see gbank.com for rates", 4 + 23 + 10),
        ("It’s fine — thanks “you”", 24),
        # twitter-text conformance (validate.yml, weighted length, v3)
        ("This is a test.", 15),
        (
            "A lie gets halfway around the world before the truth has a chance to get its "
            "pants on.",
            86,
        ),
        ("H\U0001f431☺" + FAMILY, 7),  # one byte, an emoji, a symbol, a ZWJ family
        ("\U0001f64b\U0001f3fd", 2),  # an emoji with a skin tone modifier is one emoji
        ("\U0001f1fa\U0001f1f8", 2),  # a flag (two regional indicators)
        ("1\ufe0f\u20e3", 2),  # keycap sequence
        ("日本語", 6),  # CJK weighs 2
        ("한국어", 6),  # Hangul too
        ("Ünïcödé", 7),  # Latin with diacritics weighs 1 (NFC first)
        ("U\u0308ber", 4),  # a combining mark is composed by NFC before counting
        ("\u2002\u2010\u2032", 3),  # spaces, dashes, primes are in the weight-1 ranges
        ("\u2028", 2),  # ...the line separator is not
        ("https://example.com/" + "x" * 100, 23),  # every URL is 23, however long
        ("http://t.co", 23),
        ("www.example.com", 23),  # no protocol: still a URL
        ("example.com/path?q=1", 23),
        ("a.b", 3),  # not a known top-level domain: plain text
        ("Hi @GbankSocial #help", 21),  # mentions and hashtags are ordinary text
        ("", 0),
    ],
)
def test_x_weighted_length_matches_twitter_text(text: str, weighted: int) -> None:
    assert text_length(text, X) == weighted


def test_line_counts_utf16_units_and_other_channels_count_characters() -> None:
    registry = builtin_registry()
    assert text_length("🍎a", registry["line"]) == 3
    assert text_length("🍎a", registry["whatsapp"]) == 2


def test_the_weights_are_data_a_deployment_can_change() -> None:
    heavier = load_registry(
        {"x_public": {"weighting": {**X.weighting.model_dump(), "transformed_url_length": 30}}}
    )  # type: ignore[union-attr]
    assert text_length("https://gbank.com", heavier["x_public"]) == 30


def test_weighted_counting_without_weights_is_refused() -> None:
    with pytest.raises(RegistryError, match=r"x_public.*needs `weighting`"):
        load_registry({"x_public": {"weighting": None}})


def _post(body: str) -> str:
    conv = ConversationView("c1", "cu1", "x_public", "acct", T0, T0, last_inbound_at=T0)
    message = OutboundMessage("c1", "x_public", "acct", "cu1", "agent", {"text": body})
    delivery = ChannelPolicy().decide(message, conv, T0)
    return delivery.reason_code or delivery.status


# no "." here: "a.ba" is a link to a domain in .ba, counted 23 like every URL
ONE = st.sampled_from(list("abcxyz 0189,!?’—“”éñ"))
TWO = st.sampled_from(
    ["日", "語", "한", "😀", FAMILY, "\U0001f1ef\U0001f1f5", "\U0001f44d\U0001f3ff"]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(ONE.map(lambda c: (c, 1)), TWO.map(lambda c: (c, 2))), max_size=200))
def test_weighted_length_is_the_sum_of_the_weights(parts: list[tuple[str, int]]) -> None:
    body = "".join(c for c, _ in parts)
    assert text_length(body, X) == sum(w for _, w in parts)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 140), st.sampled_from(["日", "😀", FAMILY]))
def test_x_takes_280_and_refuses_281(doubles: int, double: str) -> None:
    fits = double * doubles + "a" * (280 - 2 * doubles)
    assert _post(fits) == "sent"
    assert _post(fits + "a") == "text_too_long"


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="abcdefghij", min_size=1, max_size=300))
def test_a_url_of_any_length_counts_23(path: str) -> None:
    assert text_length(f"Rates: https://gbank.com/{path}", X) == 7 + 23


def test_starting_the_cli_does_not_load_twitter_text_until_a_weighted_count() -> None:
    """Compiling twitter-text's regular expressions took 0.2-1.3 s of every process start
    (the CLI, both service processes) though only X text needs them."""
    probe = (
        "import sys, flowlang.cli\n"
        "from flowlang.channels.registry import builtin_registry\n"
        "from flowlang.channels.text_length import text_length\n"
        "before = 'twitter_text' in sys.modules\n"
        "text_length('hi', builtin_registry()['whatsapp'])\n"
        "after_whatsapp = 'twitter_text' in sys.modules\n"
        "n = text_length('hi https://example.com', builtin_registry()['x_public'])\n"
        "print(before, after_whatsapp, 'twitter_text' in sys.modules, n)\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert found == ["False", "False", "True", "26"]  # 'hi ' + a URL counted as 23
