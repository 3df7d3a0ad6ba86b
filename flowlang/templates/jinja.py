"""Jinja2 for replies: one bounded sandbox (`templates.sandbox`) with strict undefined variables.

Customer text is only ever passed in as data, never compiled as template source. The checker uses
`template_problems`, `unsafe_template_parts` and `undeclared_names`; the compiler and runtime use
`compile_template`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta, nodes

from flowlang.diagnostics import Span
from flowlang.templates.safety import Findings, TemplateProblem, inspect
from flowlang.templates.sandbox import ReplySandbox
from flowlang.templates.simple import NotSimple, compile_simple

__all__ = [
    "ReplyTemplate",
    "TemplateProblem",
    "compile_template",
    "environment",
    "is_template",
    "part_span",
    "template_problems",
    "undeclared_names",
    "unsafe_template_parts",
]

_MISSING = object()


@lru_cache(maxsize=1)
def environment() -> ReplySandbox:
    return ReplySandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


# Each distinct source is parsed once and compiled once, however many times the checker, the
# compiler and the runtime ask about it; sized so that a flow of tens of thousands of lines
# (one template every few lines) fits without evicting what it asks again.
_CACHED = 8_192


@lru_cache(maxsize=_CACHED)
def _parsed(source: str) -> nodes.Template:
    """The source's syntax tree, shared by every caller. Jinja2's optimizer is off; compiling
    rewrites it in place (`sandbox._Bounding` wraps loops and built values), which leaves the
    names and members it reads, all that the checker asks of it, as they were."""
    return environment().parse(source)


@lru_cache(maxsize=_CACHED)
def template_problems(source: str) -> tuple[TemplateProblem, ...]:
    """Why a template source does not compile (empty when it does): its syntax, loading another
    template, a constant part that fails on every render. The checker asks for each template more
    than once; the compiled template is the one the runtime then uses."""
    try:
        if not _plain(source):
            _generated(source)  # what fails to compile fails here; Python's compile can wait
    except TemplateSyntaxError as exc:
        return (TemplateProblem(exc.lineno or 1, exc.message or "invalid template"),)
    except Exception as exc:  # nothing is evaluated while compiling; kept as a problem, not a crash
        return (TemplateProblem(1, str(exc) or type(exc).__name__),)
    loads = tuple(
        TemplateProblem(node.lineno, f"a template cannot {_LOADS[type(node)]} another template")
        for node in _parsed(source).find_all(tuple(_LOADS))
    )
    return loads or tuple(_findings(source).failures)


@lru_cache(maxsize=_CACHED)
def unsafe_template_parts(source: str) -> tuple[TemplateProblem, ...]:
    """The parts of a compiling template the sandbox refuses: a private or internal attribute,
    a constant value beyond its bounds (empty for a template with problems)."""
    if template_problems(source):
        return ()
    return tuple(_findings(source).unsafe)


@lru_cache(maxsize=_CACHED)
def _findings(source: str) -> Findings:
    return inspect(environment(), source, _parsed(source))


# there is no library of templates to load from: these would fail on every render
_LOADS: dict[type[nodes.Node], str] = {
    nodes.Extends: "extend",
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "import from",
}


def undeclared_names(source: str) -> set[str]:
    """Top-level names a template reads from its context (empty if it does not compile)."""
    return set(_undeclared(source))


@lru_cache(maxsize=_CACHED)
def _undeclared(source: str) -> frozenset[str]:
    if template_problems(source):
        return frozenset()
    if _plain(source):
        names = {n.name for n in _parsed(source).find_all(nodes.Name)}
        return frozenset(names.difference(environment().globals))
    return frozenset(meta.find_undeclared_variables(_parsed(source)))


# Text, names, constants, members, `and` `or` `not`, comparisons and `x if y else z`: Jinja2's
# code generator cannot fail on these (no filter, test, block, loop, call or assignment to look
# up or place), and every name in them is read from the context, so checking such a template
# needs neither the generated code nor a second pass of the generator to find the names it reads.
_PLAIN_NODES = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Const,
    nodes.Name,
    nodes.Getattr,
    nodes.Getitem,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Compare,
    nodes.Operand,
    nodes.CondExpr,
)


@lru_cache(maxsize=_CACHED)
def _plain(source: str) -> bool:
    """Whether `source` parses to `_PLAIN_NODES` alone, every name one it reads (`self` is the
    template itself, Jinja2's); False when it does not parse."""
    try:
        tree = _parsed(source)
    except TemplateSyntaxError:
        return False
    return all(
        type(node) in _PLAIN_NODES
        and not (isinstance(node, nodes.Name) and (node.ctx != "load" or node.name == "self"))
        for node in tree.find_all(nodes.Node)
    )


def fixed_text(source: str) -> str:
    """The literal text every rendering of `source` contains: what stands outside `{{ }}` and
    any `{% %}` block (empty when it does not compile). Its length is a floor on the output's."""
    if not is_template(source):
        return source
    if template_problems(source):
        return ""
    return "".join(
        child.data
        for node in _parsed(source).body
        if isinstance(node, nodes.Output)
        for child in node.nodes
        if isinstance(child, nodes.TemplateData)
    )


def part_span(
    literal: Span, text: str, problem: TemplateProblem, escape: Callable[[str], str] = str
) -> Span:
    """Where `problem` is in the file: inside `literal` (the span of `text` as written, quoted or
    not, with `escape` turning text into how it is written) when it can be placed exactly, else
    the whole of `literal`."""
    if problem.column is None or literal.line != literal.end_line:
        return literal
    written = literal.end_column - literal.column
    start = {len(escape(text)): literal.column, len(escape(text)) + 2: literal.column + 1}.get(
        written
    )
    if start is None:
        return literal
    lines = text.split("\n")
    offset = sum(len(line) + 1 for line in lines[: problem.line - 1]) + problem.column - 1
    column = start + len(escape(text[:offset]))
    width = len(escape(text[offset : offset + problem.width]))
    return Span(literal.file, literal.line, column, literal.line, column + max(width, 1))


_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)


def name_position(source: str, name: str) -> TemplateProblem | None:
    """Where a template first reads `name` (inside `{{ }}` or `{% %}`), as a problem at that
    name for `part_span`; None when it is not found there."""
    word = re.compile(rf"(?<![\w.]){re.escape(name)}(?!\w)")
    for tag in _TAG.finditer(source):
        found = word.search(tag.group())
        if found is not None:
            return _at(source, tag.start() + found.start(), len(name), name)
    return None


def unclosed_tag(source: str) -> TemplateProblem | None:
    """The first `{{` or `{%` that is never closed, from it to the end of the text."""
    for opening, closing in (("{{", "}}"), ("{%", "%}")):
        start = 0
        while (at := source.find(opening, start)) != -1:
            end = source.find(closing, at + 2)
            if end == -1:
                return _at(source, at, len(source) - at, f"{opening} without {closing}")
            start = end + 2
    return None


def _at(source: str, offset: int, width: int, message: str) -> TemplateProblem:
    line = source.count("\n", 0, offset) + 1
    column = offset - (source.rfind("\n", 0, offset) + 1) + 1
    return TemplateProblem(line, message, column, width)


def is_template(source: str) -> bool:
    return "{{" in source or "{%" in source


@lru_cache(maxsize=_CACHED)
def _generated(source: str) -> str:
    """The Python source Jinja2 generates from the one parse (where an unknown filter or test
    fails); `validate` stops here, the runtime compiles it."""
    return str(environment().compile(_parsed(source), raw=True))


@lru_cache(maxsize=_CACHED)
def compile_template(source: str) -> Template:
    """Compile once (from the one parse of the source); callers render with plain dict
    contexts."""
    env = environment()
    code = compile(_generated(source), "<template>", "exec")
    return env.template_class.from_code(env, code, env.make_globals(None), None)


class ReplyTemplate:
    """A compiled reply text that renders from only the names it reads.

    `Template.render` copies the environment's globals and every name given into a fresh context
    on each call; a flow run has many names and a reply reads one or two, so this builds the
    context from those alone (the environment's globals, such as `range`, stay available).
    """

    __slots__ = ("_globals", "_reads", "_simple", "_template", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self._template = compile_template(source)
        parsed = _parsed(source)
        # every name it loads, the environment's globals included, so a flow name shadows them
        self._reads = tuple(
            sorted({n.name for n in parsed.find_all(nodes.Name) if n.ctx == "load"})
        )
        self._globals = dict(self._template.globals)
        self._simple = compile_simple(parsed)

    def render(
        self, lookup: Callable[[str, Any], Any], extra: Mapping[str, Any] | None = None
    ) -> str:
        """Render with the names it reads taken from `extra`, else `lookup(name, default)`; a
        name found in neither is undefined, which the strict environment reports."""
        if self._simple is not None:

            def value_of(name: str) -> Any:
                if extra is not None and name in extra:
                    return extra[name]
                value = lookup(name, _MISSING)
                if value is _MISSING:
                    raise NotSimple(name)
                return value

            try:
                return self._simple(value_of)
            except NotSimple:
                pass  # Jinja2 gives the value or the error
        context = dict(self._globals)
        for name in self._reads:
            if extra is not None and name in extra:
                context[name] = extra[name]
                continue
            value = lookup(name, _MISSING)
            if value is not _MISSING:
                context[name] = value
        template, env = self._template, environment()
        # A Context over our dict, as Template.new_context(shared=True) builds it but without
        # re-reading the template's globals on each call (they are in `context` already).
        return env.concat(
            template.root_render_func(
                env.context_class(env, context, template.name, template.blocks)
            )
        )
