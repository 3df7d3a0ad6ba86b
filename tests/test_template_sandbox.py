"""The template sandbox: private and internal attributes refused at check and at run time, every
size bounded before it is built, and nothing worked out when a template is loaded."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2.exceptions import SecurityError, UndefinedError

from flowlang.diagnostics import Span
from flowlang.language.checker import check
from flowlang.language.context import FlowContext, TemplateInfo
from flowlang.language.parser import parse_text
from flowlang.runtime import effects as fx
from flowlang.runtime.interpreter import run
from flowlang.runtime.program import DeploymentTemplate, Program
from flowlang.runtime.state import FlowState, Trigger
from flowlang.templates import (
    ReplyTemplate,
    compile_template,
    environment,
    sandbox,
    template_problems,
    undeclared_names,
    unsafe_template_parts,
)
from flowlang.templates.sandbox import MAX_LENGTH, MAX_STEPS, TemplateLimitError
from tests.runtime.helpers import facts, program

_BUILT = "a list, mapping or text the template builds"


def _render(source: str, **names: Any) -> str:
    return ReplyTemplate(source).render(lambda name, default: names.get(name, default))


def _messages(source: str) -> list[str]:
    return [p.message for p in unsafe_template_parts(source)]


# ------------------------------------------------------------------ check time


@pytest.mark.parametrize(
    ("source", "attributes"),
    [
        ("{{ ''.__class__.__mro__ }}", ["__class__", "__mro__"]),
        ("{{ cycler.__init__.__globals__ }}", ["__init__", "__globals__"]),
        ("{{ lipsum.__globals__ }}", ["__globals__"]),
        ("{{ customer['__dict__'] }}", ["__dict__"]),
        ("{{ crm._id }}", ["_id"]),
        ("{{ message.text.format(crm) }}", ["format"]),
        ("{{ items | map(attribute='__class__') | list }}", ["__class__"]),
        ("{{ items | selectattr('name._id') | list }}", ["name._id"]),
    ],
)
def test_a_private_or_internal_attribute_is_refused_where_it_is_written(
    source: str, attributes: list[str]
) -> None:
    parts = unsafe_template_parts(source)
    assert len(parts) == len(attributes), parts
    for part, attribute in zip(parts, attributes, strict=True):
        assert "private or internal attribute" in part.message
        assert part.column is not None
        assert source[part.column - 1 :].startswith(attribute)
    assert template_problems(source) == ()  # it compiles; it is the sandbox that refuses it


def test_the_attribute_is_found_on_its_own_line_and_column() -> None:
    source = "Hello {{ customer.name }},\nyour {{ crm.__class__ }} and {{ crm.__class__ }}"
    parts = unsafe_template_parts(source)
    assert [(p.line, p.column) for p in parts] == [(2, 13), (2, 37)]


def test_fields_a_reply_reads_are_not_refused() -> None:
    for source in (
        "Hi {{ customer.name }} ({{ crm['segment'] }}), {{ items | map(attribute='name') | join }}",
        "{{ crm['format'] }} {{ crm.mro_score }} {{ '%05.1f' % 3.14159 }} {{ 2 ** 100 }}",
        "{% for i in range(3) %}{{ i }}{% endfor %}{{ 'ab' * 3 }}{{ 'x' | center(20) }}",
    ):
        assert unsafe_template_parts(source) == (), source


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ 'a' * 10**9 }}", "repeating a value 1,000,000,000 times"),
        ("{{ [0] * 10**6 }}", "repeating a value 1,000,000 times"),
        ("{{ 2 ** 100000 }}", "2 ** 100000 would be a number of at least 100,001 bits"),
        ("{{ (10 ** 1000) ** 10 }}", "would be a number of at least"),
        ("{% for i in range(10**7) %}.{% endfor %}", "a range of 10,000,000 numbers"),
        ("{{ '%999999999d' % 1 }}", "the format width 999999999"),
        ("{{ '%999999999d' | format(1) }}", "the format width 999999999"),
        ("{{ '%*d' % (10**9, 1) }}", "width given by `*`"),
        ("{{ 'x' | center(10**9) }}", "a width or count of 1,000,000,000"),
        ("{{ ('a' * 1000) | replace('a', 'b' * 1000) }}", "the replaced text"),
        ("{{ (('a' * 90000) ~ 'b') + 'c' * 20000 }}", "joining two values"),
        ("{{ 'a' ~ 'b' * 99999 ~ 'cc' }}", _BUILT),
        ("{{ ['x' * 60000, 'y' * 60000] }}", _BUILT),
        ("{{ 'x'.ljust(10**9) }}", "a width or count of 1,000,000,000"),
        ("{{ ','.join(['ab'] * 30000) }}", "the joined text"),
    ],
)
def test_a_constant_beyond_the_bounds_is_refused_without_being_built(
    source: str, message: str
) -> None:
    (part,) = unsafe_template_parts(source)
    assert message in part.message
    assert part.line == 1


def test_a_constant_part_that_always_fails_is_still_a_template_problem() -> None:
    source = "Hello {{ ('friend').name or customer.name }}"
    assert [p.message for p in template_problems(source)] == [
        "'str object' has no attribute 'name'"
    ]
    assert unsafe_template_parts(source) == ()


def test_globals_a_reply_has_no_business_with_are_gone_and_range_stays() -> None:
    assert set(environment().globals) == {"range"}
    for name in ("lipsum", "cycler", "joiner", "namespace", "dict"):
        assert undeclared_names(f"{{{{ {name} }}}}") == {name}
        with pytest.raises(UndefinedError, match=f"'{name}' is undefined"):
            _render(f"{{{{ {name} }}}}")
    assert _render("{{ range(3) | list }}") == "[0, 1, 2]"


@pytest.mark.parametrize("name", ["attr", "random", "pprint", "xmlattr"])
def test_filters_a_reply_has_no_business_with_do_not_compile(name: str) -> None:
    (problem,) = template_problems(f"{{{{ customer | {name} }}}}")
    assert problem.message == f"No filter named '{name}'."


def test_a_recursive_loop_does_not_compile() -> None:
    (problem,) = template_problems("{% for x in items recursive %}{{ loop(x) }}{% endfor %}")
    assert problem.message == "recursive loops are not available in templates"


# ------------------------------------------------------------------ load time


def test_nothing_is_worked_out_while_a_template_compiles(monkeypatch: pytest.MonkeyPatch) -> None:
    """Jinja2 folds constant parts when it compiles; ours folds none, however large they are."""
    calls: list[tuple[str, Any, Any]] = []
    bounded = sandbox.binop

    def recording(op: str, left: Any, right: Any) -> Any:
        calls.append((op, left, right))
        return bounded(op, left, right)

    monkeypatch.setattr(sandbox, "binop", recording)
    sources = ["{{ 'ab' * 3 }}", f"{{{{ 'a' * {MAX_LENGTH * 10} }}}}", "{{ 'x' | center(9) }}"]
    templates = [ReplyTemplate(source) for source in sources]
    code = environment().compile(sources[0] + sources[2], raw=True)
    assert calls == []
    assert "ababab" not in code and "    x    " not in code
    assert templates[0].render(lambda _n, d: d) == "ababab"
    assert calls == [("*", "ab", 3)]
    with pytest.raises(TemplateLimitError):
        templates[1].render(lambda _n, d: d)


def test_a_program_loads_an_unchecked_template_without_working_it_out() -> None:
    """A graph can be loaded from JSON without the checker: its templates compile, unevaluated,
    and are refused when they run."""
    big = DeploymentTemplate("banner", "text", f"{{{{ '=' * {MAX_LENGTH * 10} }}}}")
    prog = program('reply template "banner"\nend')
    loaded = Program(prog.graph, templates={"banner": big})
    result = run(loaded, FlowState(), Trigger(kind="message", text="hi"), facts("hi"))
    assert not [e for e in result.effects if isinstance(e, fx.SendReply)]
    (failure,) = [e for e in result.effects if isinstance(e, fx.FlowFailed)]
    assert failure.code == "FL900"
    assert "over the limit of 100,000 characters or items" in failure.message


# ------------------------------------------------------------------ run time


@pytest.mark.parametrize(
    ("source", "names", "message"),
    [
        ("{{ '=' * count }}", {"count": 10**9}, "repeating a value 1,000,000,000 times"),
        ("{{ items * count }}", {"items": [1, 2], "count": 10**6}, "repeating a value"),
        ("{{ base ** power }}", {"base": 9, "power": 10**6}, "at least 3,000,001 bits"),
        ("{% for i in range(count) %}{% endfor %}", {"count": 10**9}, "a range of"),
        ("{{ text % 1 }}", {"text": "%999999999d"}, "the format width 999999999"),
        ("{{ text | format(1) }}", {"text": "%(a)999999s"}, "the format width 999999"),
        ("{{ name | center(count) }}", {"name": "x", "count": 10**9}, "a width or count"),
        ("{{ name | indent(count, true) }}", {"name": "a\n" * 10, "count": 10**5}, "indented"),
        ("{{ row | batch(count, '') | list }}", {"row": [1], "count": 10**9}, "a width or count"),
        ("{{ text }}", {"text": "a" * (MAX_LENGTH + 1)}, "a value the template writes"),
        (
            "{% for i in range(100) %}{{ text }}{% endfor %}",
            {"text": "a" * 2000},
            "the rendered text",
        ),
        # a list, mapping or `~` that holds the same large value many times is measured as made
        (
            "{% set a = [text, text] %}{% set b = [a, a, a, a] %}{{ b | length }}",
            {"text": "a" * 20000},
            _BUILT,
        ),
        ("{{ {'a': text, 'b': text} | length }}", {"text": "a" * 60000}, _BUILT),
        (
            "{% set a = text ~ text %}{% set a = a ~ a %}{% set a = a ~ a %}{{ a | length }}",
            {"text": "a" * 20000},
            _BUILT,
        ),
        # text methods that take a width or repeat their text
        ("{{ name.ljust(count) }}", {"name": "x", "count": 10**9}, "a width or count"),
        ("{{ name.zfill(count) }}", {"name": "1", "count": 10**9}, "a width or count"),
        ("{{ tabs.expandtabs(count) }}", {"tabs": "\t" * 100, "count": 10**6}, "expanded"),
        ("{{ text.join(names) }}", {"text": "-" * 1000, "names": ["a"] * 1000}, "joined"),
        ("{{ text.replace('a', text) }}", {"text": "a" * 1000}, "the replaced text"),
        ("{{ text.encode() * count }}", {"text": "a", "count": 10**9}, "repeating a value"),
        # filters whose argument is a size
        ("{{ 1.5 | round(count, 'floor') }}", {"count": 10**9}, "a width or count"),
        ("{{ [1] | tojson(indent=count) }}", {"count": 10**9}, "a width or count"),
        # texts captured from many outputs: `{% set %}` blocks and macros
        (
            "{% set all %}{% for i in range(200) %}{{ text }}{% endfor %}{% endset %}{{ all }}",
            {"text": "a" * 1000},
            "the rendered text",
        ),
        (
            "{% macro m() %}{% for i in range(200) %}{{ text }}{% endfor %}{% endmacro %}"
            "{{ m() | length }}",
            {"text": "a" * 1000},
            "the rendered text",
        ),
    ],
)
def test_a_value_beyond_the_bounds_is_refused_before_it_is_built(
    source: str, names: dict[str, Any], message: str
) -> None:
    with pytest.raises(TemplateLimitError, match=re.escape(message)):
        _render(source, **names)


def test_loops_and_calls_share_one_budget_per_render() -> None:
    nested = "{% for i in range(n) %}{% for j in range(n) %}{% endfor %}{% endfor %}done"
    assert _render(nested, n=300) == "done"  # 90,300 iterations
    with pytest.raises(TemplateLimitError, match=f"more than {MAX_STEPS:,} loop iterations"):
        _render(nested, n=1000)
    doubling = (
        "{% macro twice(n) %}{% if n %}{{ twice(n - 1) }}{{ twice(n - 1) }}{% endif %}"
        "{% endmacro %}{{ twice(depth) }}"
    )
    assert _render(doubling, depth=3) == ""
    with pytest.raises(TemplateLimitError, match="loop iterations and calls"):
        _render(doubling, depth=40)
    escaped = (
        "{% for i in range(n) %}{% autoescape true %}{% for j in range(n) %}{% endfor %}"
        "{% endautoescape %}{% endfor %}"
    )
    with pytest.raises(TemplateLimitError):
        _render(escaped, n=1000)


def test_str_format_is_refused_so_a_customers_text_is_never_a_format() -> None:
    crm = {"pin": "1234"}
    with pytest.raises(SecurityError, match="'format'"):
        _render("{{ message.text.format(crm) }}", message={"text": "{0[pin]}"}, crm=crm)
    with pytest.raises(SecurityError, match=re.escape("use `| format`")):
        _render("{{ message.text['format'](crm) }}", message={"text": "{0[pin]}"}, crm=crm)
    assert _render("{{ crm['format'] }}", crm={"format": "pdf"}) == "pdf"


def test_a_private_name_is_refused_at_run_time_even_as_a_key() -> None:
    crm = {"_token": "s3cret", "name": "Ana"}
    for source in (
        "{{ crm._token }}",
        "{{ crm['_token'] }}",
        "{{ [crm] | map(attribute='_token') | first }}",
    ):
        assert ReplyTemplate(source)._simple is None  # never the fast path
        with pytest.raises(SecurityError, match="'_token'"):
            _render(source, crm=crm)


def test_the_reply_that_goes_beyond_the_bounds_is_not_sent_and_on_error_runs() -> None:
    header = 'on error:\n    reply "Sorry, something went wrong"\n    end\nvar count: number = 0'
    prog = program("set count to 1000000000\nreply \"{{ '=' * count }}\"\nend", header=header)
    result = run(prog, FlowState(), Trigger(kind="message", text="hi"), facts("hi"))
    sent = [e.content["text"] for e in result.effects if isinstance(e, fx.SendReply)]
    assert sent == ["Sorry, something went wrong"]


def test_ordinary_templates_render_as_before() -> None:
    source = (
        "Hi {{ customer.name | title }}: {{ 3 * 4 }} {{ 'ab' ~ 'c' }} {{ '%05.1f' % 3.14159 }} "
        "{{ 2 ** 10 }} {{ items | join(', ') }}"
        "{% for x in items %}{{ loop.index }}/{{ loop.length }}{% if not loop.last %},{% endif %}"
        "{% else %}none{% endfor %}"
    )
    rendered = _render(source, customer={"name": "ana"}, items=["a", "b"])
    assert rendered == "Hi Ana: 12 abc 003.1 1024 a, b1/2,2/2"


# ------------------------------------------------------------------ property

_SAFE = ["name", "segment", "tier"]
_UNSAFE = [
    "_secret",
    "__class__",
    "__mro__",
    "__globals__",
    "__init__",
    "__dict__",
    "__subclasses__",
    "__builtins__",
    "__module__",
    "__code__",
    "mro",
    "format",
    "format_map",
    "gi_frame",
    "f_globals",
]
_SECRET = "TOPSECRET"
_ROOTS = ["customer", "crm", "items", "range", "''", "1", "[]", "message.text"]


@st.composite
def _chains(draw: st.DrawFn) -> tuple[str, bool]:
    """A template reading a chain of attributes, and whether the checker must refuse it."""
    expression = draw(st.sampled_from(_ROOTS))
    refused = False
    for _ in range(draw(st.integers(1, 4))):
        name = draw(st.sampled_from(_SAFE + _UNSAFE))
        how = draw(st.sampled_from(["attr", "item", "map"]))
        if how == "attr":
            expression = f"({expression}).{name}"
            refused |= name in _UNSAFE
        elif how == "item":
            expression = f"({expression})['{name}']"
            refused |= name.startswith("_")
        else:
            expression = f"[{expression}] | map(attribute='{name}') | list"
            refused |= name.startswith("_")
    return "Hi {{ " + expression + " }}!", refused


def _record() -> dict[str, Any]:
    # a key named like a Python internal (`mro`) is data when read as an item; `_x` never is
    keys = {name: _SECRET if name.startswith("_") else f"data {name}" for name in _UNSAFE}
    return keys | {"name": "Ana", "segment": "gold", "tier": 2}


@settings(max_examples=300, deadline=None)
@given(chain=_chains())
def test_an_unsafe_attribute_chain_is_reported_and_never_renders_anything_sensitive(
    chain: tuple[str, bool],
) -> None:
    source, refused = chain
    assert template_problems(source) == ()
    assert bool(unsafe_template_parts(source)) == refused, source
    names = {"customer": _record(), "crm": _record(), "items": [_record()]}
    names["message"] = {"text": "{0.__class__}"}
    try:
        rendered = _render(source, **names)
    except (SecurityError, UndefinedError, TypeError, ValueError):
        return
    if refused:
        for sensitive in (_SECRET, "<class", "<function", "<module", "mappingproxy", "<frame"):
            assert sensitive not in rendered, (source, rendered)


def test_a_flow_replying_with_an_unsafe_deployment_template_is_refused_at_its_reply() -> None:
    """A flow checked against a deployment whose template the sandbox refuses (an API user may
    build the context without validating the file) gets FL420 at the reply, naming the file."""
    where = Span("deployment.yaml", 12, 11, 12, 40)
    unsafe = TemplateInfo("banner", source="{{ '=' * 10**9 }}", span=where)
    text = 'flow "T"\nserve messages on web\n\nstate start:\n    reply template "banner"\n    end\n'
    parsed = parse_text(text, "t.flow")
    assert parsed.flow is not None
    result = check(parsed.flow, FlowContext(templates={"banner": unsafe}))
    (found,) = [d for d in result.diagnostics if d.code == "FL420"]
    assert found.message.startswith('template "banner" is refused: repeating a value')
    assert found.message.endswith("(deployment.yaml:12)")
    assert (found.span.line, found.span.column) == (5, 20)
    assert result.checked is None


def test_the_fast_path_is_bounded_as_jinja2_is() -> None:
    """Text with names renders without Jinja2; its values and its whole text have the same
    bounds, with the same refusal."""
    names = {"a": "a" * 60000, "b": "b" * 60000}
    for source, message in (
        ("{{ a }}{{ b }}", "the rendered text"),
        ("{{ a ~ b }}", _BUILT),
        ("{{ c }}", "a value the template writes"),
    ):
        template = ReplyTemplate(source)
        with pytest.raises(TemplateLimitError, match=message):
            template.render(lambda n, d: {**names, "c": "c" * (MAX_LENGTH + 1)}.get(n, d))
    assert ReplyTemplate("{{ a }}{{ b }}")._simple is not None
    assert ReplyTemplate("{{ a }}")._simple is not None


def test_checking_a_template_leaves_compiling_it_to_the_runtime() -> None:
    """`validate` finds what fails to compile (an unknown filter) without making Python code of
    every template; the runtime compiles the same generated code, once."""
    source = "Hello {{ customer.name | upper }}, checked but not compiled"
    compiled = compile_template.cache_info().misses
    assert template_problems(source) == ()
    assert template_problems("{{ customer | no_such_filter }}")
    assert compile_template.cache_info().misses == compiled  # nothing compiled by checking
    assert compile_template(source).render(customer={"name": "ana"}).startswith("Hello ANA,")
