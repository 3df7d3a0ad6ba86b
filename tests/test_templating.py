"""Reply templates render from the names they read, with Jinja2's sandbox and strict undefined."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from jinja2 import UndefinedError
from jinja2.exceptions import SecurityError

from flowlang import load_project
from flowlang.templates import (
    ReplyTemplate,
    compile_template,
    environment,
    template_problems,
    undeclared_names,
    unsafe_template_parts,
)


def _lookup(names: dict[str, Any]) -> Any:
    return names.get


def test_renders_the_names_it_reads() -> None:
    template = ReplyTemplate("Thanks {{ customer.name or 'for your message' }}!")
    assert template.render(_lookup({"customer": {"name": "Ana"}})) == "Thanks Ana!"
    assert template.render(_lookup({"customer": {"name": None}})) == "Thanks for your message!"


def test_asks_only_for_the_names_it_reads() -> None:
    asked: list[str] = []

    def lookup(name: str, default: Any) -> Any:
        asked.append(name)
        return {"customer": {"name": "Ana"}, "account": "123"}.get(name, default)

    ReplyTemplate("Hi {{ customer.name }}").render(lookup)
    assert asked == ["customer"]


def test_extra_names_win_over_the_lookup() -> None:
    template = ReplyTemplate("Hello {{ name }}")
    assert template.render(_lookup({"name": "flow"}), {"name": "Ana"}) == "Hello Ana"


def test_a_missing_name_is_an_error_not_an_empty_string() -> None:
    with pytest.raises(UndefinedError, match="'customer' is undefined"):
        ReplyTemplate("Hi {{ customer.name }}").render(_lookup({}))
    with pytest.raises(UndefinedError, match="no attribute 'nmae'"):
        ReplyTemplate("Hi {{ customer.nmae }}").render(_lookup({"customer": {"name": "Ana"}}))


def test_the_environment_globals_stay_available_and_a_flow_name_shadows_them() -> None:
    template = ReplyTemplate("{% for i in range(3) %}{{ i }}{% endfor %}")
    assert template.render(_lookup({})) == "012"
    shadowed = ReplyTemplate("{{ range }}")
    assert shadowed.render(_lookup({"range": "a flow variable"})) == "a flow variable"


def test_customer_data_is_never_template_source_and_the_sandbox_holds() -> None:
    template = ReplyTemplate("You wrote: {{ message.text }}")
    text = "{{ 7 * 7 }}"
    assert template.render(_lookup({"message": {"text": text}})) == "You wrote: {{ 7 * 7 }}"
    with pytest.raises(SecurityError):
        ReplyTemplate("{{ names.__class__.__mro__ }}").render(_lookup({"names": {}}))


# ------------------------------------------------------------------ the simple-template path
# Text with names, constants, `.field`, `['key']`, `or` and `and` renders as straight Python;
# whatever it renders must be what Jinja2 renders, errors included.

_NAMES = ["customer", "crm", "items", "range", "loop", "missing"]
_KEYS = ["name", "segment", "items", "keys", "__class__", "_private", "0"]
_ATTRIBUTE_KEYS = ["name", "segment", "_private"]
_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.dictionaries(st.sampled_from(_KEYS), inner, max_size=3) | st.lists(inner, max_size=2)
    ),
    max_leaves=6,
)


@st.composite
def _expressions(draw: st.DrawFn, depth: int = 0) -> str:
    kind = draw(
        st.sampled_from(["name", "const", "attr", "item", "or", "and"][: 6 if depth < 2 else 2])
    )
    if kind == "name":
        return draw(st.sampled_from(_NAMES))
    if kind == "const":
        return draw(st.sampled_from(["'retail'", "3", "none", "true", "''", "1.5"]))
    if kind in ("attr", "item"):
        inner = draw(_expressions(depth + 1))
        # `.items`, `.keys`, `.__class__` are dict attributes: Jinja2's, never the simple path
        key = draw(st.sampled_from(_ATTRIBUTE_KEYS if kind == "attr" else _KEYS))
        return f"({inner}).{key}" if kind == "attr" else f"({inner})['{key}']"
    return f"({draw(_expressions(depth + 1))}) {kind} ({draw(_expressions(depth + 1))})"


def _jinja_render(source: str, names: dict[str, Any]) -> str:
    context = {**environment().globals, **names}
    return compile_template(source).render(context)


def _outcome(render: Any) -> tuple[str, str]:
    try:
        return ("text", render())
    except Exception as exc:  # the same exception type and message as Jinja2's
        return (type(exc).__name__, str(exc))


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet="ab }\n!'%", max_size=6),
    expression=_expressions(),
    names=st.dictionaries(st.sampled_from(_NAMES[:-1]), _values, min_size=2, max_size=4),
)
def test_the_simple_path_renders_what_jinja2_renders(
    text: str, expression: str, names: dict[str, Any]
) -> None:
    source = f"{text}{{{{ {expression} }}}}{text}\n"
    assume(not template_problems(source))  # the checker refuses those (FL404)
    template = ReplyTemplate(source)
    # every generated shape is a simple one, except a private name: always the sandbox's
    assert (template._simple is None) == bool(unsafe_template_parts(source)), source
    ours = _outcome(lambda: template.render(names.get))
    assert ours == _outcome(lambda: _jinja_render(source, names)), source


def test_other_templates_are_left_to_jinja2() -> None:
    others = (
        "{{ name | upper }}",
        "{% if a %}x{% endif %}",
        "{{ a + 1 }}",
        "{{ a.b() }}",
        "{{ self }}",
    )
    for source in others:
        assert ReplyTemplate(source)._simple is None, source
    assert ReplyTemplate("{{ name | upper }}").render(_lookup({"name": "ana"})) == "ANA"


def test_a_dict_method_name_is_the_method_as_in_jinja2() -> None:
    rendered = ReplyTemplate("{{ data.items }}").render(_lookup({"data": {"items": 3}}))
    assert rendered.startswith("<built-in method items")
    assert ReplyTemplate("{{ data['items'] }}").render(_lookup({"data": {"items": 3}})) == "3"


def test_a_template_that_fails_while_compiling_is_a_problem_not_a_crash() -> None:
    source = "Hello {{ ('friend').name or customer.name }}"
    assert [p.message for p in template_problems(source)] == [
        "'str object' has no attribute 'name'"
    ]
    assert undeclared_names(source) == set()


def test_a_template_cannot_load_another_there_is_no_library_to_load_from() -> None:
    sources = {
        "{% extends 'base' %}": "extend",
        "Hi\n{% include 'greeting' %}": "include",
        "{% import 'macros' as m %}": "import",
        "{% from 'macros' import hello %}": "import from",
    }
    for source, verb in sources.items():
        problems = template_problems(source)
        assert [p.message for p in problems] == [f"a template cannot {verb} another template"]
    assert template_problems("Hi\n{% include 'greeting' %}")[0].line == 2


def test_loading_a_flow_parses_and_compiles_each_template_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checking a flow asks about a reply template several times (its syntax, what the sandbox
    would refuse, the names it reads, the text it always contains), and compiling and running
    it asks again: Jinja2 parses and compiles it once for all of them."""
    env = environment()
    parsed: list[str] = []
    compiled: list[object] = []
    real_parse, real_compile = env.parse, env.compile

    def parse(source: str, *args: Any, **kwargs: Any) -> Any:
        parsed.append(source)
        return real_parse(source, *args, **kwargs)

    def compile_(source: Any, *args: Any, **kwargs: Any) -> Any:
        compiled.append(source)
        return real_compile(source, *args, **kwargs)

    monkeypatch.setattr(env, "parse", parse)
    monkeypatch.setattr(env, "compile", compile_)
    text = "Hello {{ customer.name or 'there' }}, welcome to test_once_4417"
    flow = tmp_path / "once.flow"
    flow.write_text(
        f'flow "Once"\nserve messages on web\n\nstate start:\n    reply "{text}"\n    end\n',
        "utf-8",
    )
    project, ws = load_project(flow)
    assert project is not None, ws.diagnostics
    prepared = project.program.template_text(text)
    assert prepared is not None
    rendered = prepared.render(_lookup({"customer": {"name": "Ana"}}))
    assert rendered == "Hello Ana, welcome to test_once_4417"
    assert parsed.count(text) == 1
    assert len(compiled) == 1


# ------------------------------------------------------------------ checking without the code
# A template of text, names, constants, members, `and` `or` `not`, comparisons and `x if y
# else z` is checked from its syntax tree alone: Jinja2's code generator cannot fail on those,
# and the names it reads are its names. Whatever the shortcut answers must be what generating
# the code (and Jinja2's own `meta.find_undeclared_variables`) answers.

_CHECK_NAMES = ["customer", "crm", "range", "loop", "self", "caller", "x"]


@st.composite
def _template_parts(draw: st.DrawFn, depth: int = 0) -> str:
    plain = ["name", "const", "attr", "item", "or", "and", "not", "compare", "cond", "cond1"]
    other = ["filter", "unknown_filter", "test", "unknown_test", "call", "list", "slice"]
    kind = draw(st.sampled_from(plain + other if depth < 2 else ["name", "const"]))
    inner = _template_parts(depth + 1)
    if kind == "name":
        return draw(st.sampled_from(_CHECK_NAMES))
    if kind == "const":
        return draw(st.sampled_from(["'retail'", "3", "none", "true", "''", "('x').name"]))
    if kind == "attr":
        return f"({draw(inner)}).{draw(st.sampled_from(['name', 'items', '_private']))}"
    if kind == "item":
        return f"({draw(inner)})[{draw(st.sampled_from(['0', repr('k'), 'x']))}]"
    if kind in ("or", "and"):
        return f"({draw(inner)}) {kind} ({draw(inner)})"
    if kind == "not":
        return f"not ({draw(inner)})"
    if kind == "compare":
        op = draw(st.sampled_from(["==", "<", "in", "not in"]))
        return f"({draw(inner)}) {op} ({draw(inner)})"
    if kind == "cond":
        return f"({draw(inner)}) if ({draw(inner)}) else ({draw(inner)})"
    if kind == "cond1":
        return f"({draw(inner)}) if ({draw(inner)})"
    if kind in ("filter", "unknown_filter"):
        return f"({draw(inner)}) | {'upper' if kind == 'filter' else 'nosuchfilter'}"
    if kind in ("test", "unknown_test"):
        return f"({draw(inner)}) is {'defined' if kind == 'test' else 'nosuchtest'}"
    if kind == "call":
        return f"({draw(inner)})()"
    if kind == "list":
        return f"[{draw(inner)}]"
    return f"({draw(inner)})[1:]"


@st.composite
def _check_sources(draw: st.DrawFn) -> str:
    expression = draw(_template_parts())
    text = draw(st.sampled_from(["", "Hi ", "a\nb ", "{# note #}"]))
    shape = draw(st.sampled_from(["out", "if", "for", "set"]))
    if shape == "if":
        return f"{text}{{% if {expression} %}}y{{% endif %}}"
    if shape == "for":
        return f"{text}{{% for v in {expression} %}}{{{{ v }}}}{{% endfor %}}"
    if shape == "set":
        return f"{text}{{% set v = {expression} %}}{{{{ v }}}}"
    return f"{text}{{{{ {expression} }}}}!"


def _generation_failure(source: str) -> str:
    """Why generating the code of `source` fails ("" when it does not), as `template_problems`
    words it, from a fresh parse (no cache of ours)."""
    from jinja2 import TemplateSyntaxError

    env = environment()
    try:
        env.compile(env.parse(source), raw=True)
    except TemplateSyntaxError as exc:
        return exc.message or "invalid template"
    except Exception as exc:
        return str(exc) or type(exc).__name__
    return ""


@settings(max_examples=400, deadline=None)
@given(source=_check_sources())
def test_a_template_checked_without_its_code_gives_what_generating_it_gives(source: str) -> None:
    from jinja2 import meta

    from flowlang.templates.jinja import _plain

    failure = _generation_failure(source)
    problems = template_problems(source)
    if _plain(source):
        assert failure == "", (source, failure)
    if failure:
        assert [p.message for p in problems] == [failure], source
        assert undeclared_names(source) == set()
    elif not problems:
        reads = meta.find_undeclared_variables(environment().parse(source))
        assert undeclared_names(source) == reads, source


def test_checking_a_plain_template_generates_no_code_and_any_other_is_generated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`flowlang validate` of a flow whose replies are text and names does not run Jinja2's code
    generator (the runtime generates each one once when the flow is loaded to run); a reply with
    a filter is generated, and an unknown filter is still found."""
    env = environment()
    compiled: list[str] = []
    real_compile = env.compile

    def compile_(source: Any, *args: Any, **kwargs: Any) -> Any:
        compiled.append(str(getattr(source, "body", source)))
        return real_compile(source, *args, **kwargs)

    monkeypatch.setattr(env, "compile", compile_)
    from flowlang.workspace import validate

    plain = "Hello {{ customer.name or 'there' }}, plain_8812"
    filtered = "Hello {{ customer.name | upper }}, filtered_8812"
    unknown = "Hello {{ customer.name | shout }}, unknown_8812"
    flow = tmp_path / "plain.flow"
    flow.write_text(
        f'flow "Plain"\nserve messages on web\n\nstate start:\n    reply "{plain}"\n'
        f'    reply "{filtered}"\n    reply "{unknown}"\n    end\n',
        "utf-8",
    )
    ws = validate([flow])
    assert [d.message for d in ws.diagnostics if d.is_error] == [
        "reply text is not a valid template: No filter named 'shout'."
    ]
    assert not any("plain_8812" in body for body in compiled)
    assert any("filtered_8812" in body for body in compiled)
