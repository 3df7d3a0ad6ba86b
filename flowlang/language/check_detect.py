"""Language detection, statically: `detect(text, among [...], fallback "..", confidence 0.6)`.

The candidate languages are the `among` list, else the deployment's `languages`; each must be
an ISO 639-1 code the detector (lingua) knows (FL128), the fallback one of them (FL215), the
confidence between 0 and 1 (FL214), each option given once (FL129). The runtime's side is
`flowlang/runtime/detect.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache

from lingua import Language

from flowlang import codes
from flowlang.diagnostics import Diagnostic, Span, error, suggest
from flowlang.language import ast

DEFAULT_CONFIDENCE = 0.7
"""The least confidence (0-1, relative among the candidates) for detect() to name a language;
below it detect() gives its fallback, or not set."""


@cache
def known_codes() -> frozenset[str]:
    """The ISO 639-1 codes the detector can tell apart (lower case: "en", "es", ...)."""
    return frozenset(_by_name().values())


def candidates(detect: ast.Detect, deployment_languages: Iterable[str]) -> tuple[str, ...]:
    """The languages `detect` chooses from, in a stable order: `among`, else the deployment's."""
    among = detect.option("among")
    chosen = among.values if among is not None else deployment_languages
    return tuple(sorted(set(chosen)))


def confidence(detect: ast.Detect) -> float:
    option = detect.option("confidence")
    return DEFAULT_CONFIDENCE if option is None else float(option.values[0])


def fallback(detect: ast.Detect) -> str | None:
    option = detect.option("fallback")
    return None if option is None else option.values[0]


def detect_problems(
    detect: ast.Detect,
    deployment_languages: frozenset[str] | None,
    resolve: Callable[[str, str, Span], None] | None,
) -> list[Diagnostic]:
    """What is wrong with a `detect(...)` call's options; `deployment_languages` is None when
    no deployment is loaded (then only the codes themselves are checked)."""
    found: list[Diagnostic] = []
    seen: set[str] = set()
    for option in detect.options:
        if option.kind in seen:
            found.append(
                error(
                    codes.DETECT_OPTION_TWICE,
                    f"detect() is given {option.kind!r} twice",
                    option.span,
                    "given again",
                    hint="keep one",
                )
            )
        seen.add(option.kind)
        if option.kind == "confidence":
            value = float(option.values[0])
            if not 0 <= value <= 1:
                found.append(
                    error(
                        codes.BAD_CONFIDENCE,
                        f"a confidence of {option.values[0]} is outside 0 to 1",
                        option.value_spans[0],
                        "not within 0 to 1",
                        hint=f"write a share such as 0.6 (the default is {DEFAULT_CONFIDENCE})",
                    )
                )
            continue
        for code, span in zip(option.values, option.value_spans, strict=True):
            problem = _code_problem(code, span)
            if problem is not None:
                found.append(problem)
            elif resolve is not None and option.kind == "among":
                resolve("language", code, span)
    chosen = candidates(detect, deployment_languages or ())
    if not chosen and deployment_languages is not None:
        found.append(
            error(
                codes.NO_DETECT_LANGUAGES,
                "detect() has no languages to choose from",
                detect.span,
                "which languages?",
                hint='list them: detect(message.text, among ["en", "es"]), '
                "or in the deployment's `languages`",
            )
        )
    fallback_option = detect.option("fallback")
    if fallback_option is not None and chosen:
        code = fallback_option.values[0]
        if code in known_codes() and code not in chosen:
            found.append(
                error(
                    codes.FALLBACK_NOT_DETECTED,
                    f'the fallback "{code}" is not one of the languages detect() chooses from',
                    fallback_option.value_spans[0],
                    "not a candidate",
                    hint=f"choose one of: {', '.join(chosen)}",
                )
            )
    return found


@cache
def _by_name() -> dict[str, str]:
    """ENGLISH -> en: what an admin may write instead of the code."""
    return {language.name: language.iso_code_639_1.name.lower() for language in Language.all()}


def _code_problem(code: str, span: Span) -> Diagnostic | None:
    if code in known_codes():
        return None
    lowered = code.lower()
    named = _by_name().get(code.upper())
    if lowered in known_codes():
        hint = f'write it in lower case: "{lowered}"'
    elif named is not None:
        hint = f'write the language\'s code: "{named}"'
    else:
        hint = suggest(
            code,
            sorted(known_codes()),
            'write an ISO 639-1 code such as "en" or "es"',
            show=lambda s: f'"{s}"',
        )
    return error(
        codes.UNKNOWN_LANGUAGE_CODE,
        f'"{code}" is not a language code detect() knows',
        span,
        "not an ISO 639-1 code",
        hint=hint,
    )
