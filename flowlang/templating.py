"""Jinja2 for replies: one sandboxed environment with strict undefined variables.

Customer text is only ever passed in as data, never compiled as template source. The checker uses
`template_problems` and `undeclared_names`; the compiler and runtime use `compile_template`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment


@lru_cache(maxsize=1)
def environment() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
    )


@dataclass(frozen=True)
class TemplateProblem:
    line: int  # 1-based line inside the template source
    message: str


def template_problems(source: str) -> list[TemplateProblem]:
    """Syntax problems of a template source (empty when it compiles)."""
    try:
        environment().parse(source)
    except TemplateSyntaxError as exc:
        return [TemplateProblem(exc.lineno or 1, exc.message or "invalid template")]
    return []


def undeclared_names(source: str) -> set[str]:
    """Top-level names a template reads from its context (empty if it does not compile)."""
    try:
        parsed = environment().parse(source)
    except TemplateSyntaxError:
        return set()
    return set(meta.find_undeclared_variables(parsed))


def is_template(source: str) -> bool:
    return "{{" in source or "{%" in source


@lru_cache(maxsize=4096)
def compile_template(source: str) -> Template:
    """Compile once; callers render with plain dict contexts."""
    return environment().from_string(source)
