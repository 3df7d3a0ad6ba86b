"""`detect(text, ...)` while a flow runs: the text's language among the flow's candidates.

One lingua detector per set of candidate languages, built on first use (lingua then loads each
language's model, shipped inside its wheel, the first time it is needed: nothing is downloaded,
and a flow that never detects loads nothing). Lingua is deterministic: the same text and
candidates always give the same answer.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from lingua import IsoCode639_1, LanguageDetector, LanguageDetectorBuilder

from flowlang.errors import FlowRuntimeError

MAX_DETECT_CHARS = 1000
"""Only the text's first characters are read: enough to tell a language, and it bounds the work
a long message costs."""


@cache
def _detector(languages: tuple[str, ...]) -> LanguageDetector:
    iso = [IsoCode639_1.from_str(code) for code in languages]
    return LanguageDetectorBuilder.from_iso_codes_639_1(*iso).build()


def detect_language(
    text: Any, among: tuple[str, ...], fallback: str | None, confidence: float
) -> str | None:
    """The most likely of `among` (ISO 639-1 codes) when its confidence is at least
    `confidence`, else `fallback` (None: not set). Not set or empty text gives the fallback."""
    if text is None:
        return fallback
    if not isinstance(text, str):
        raise FlowRuntimeError(f"detect() needs a text, got {type(text).__name__}")
    if not among:
        raise FlowRuntimeError("detect() has no languages to choose from")
    sample = text[:MAX_DETECT_CHARS]
    if len(among) == 1:
        return among[0] if sample.strip() else fallback
    values = _detector(among).compute_language_confidence_values(sample)
    if not values or values[0].value < confidence or values[0].value == 0:
        return fallback
    return values[0].language.iso_code_639_1.name.lower()
