"""Reply templates render from the names they read, with Jinja2's sandbox and strict undefined."""

from __future__ import annotations

from typing import Any

import pytest
from jinja2 import UndefinedError
from jinja2.exceptions import SecurityError

from flowlang.templating import (
    ReplyTemplate,
    template_problems,
    undeclared_names,
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


def test_a_template_that_fails_while_compiling_is_a_problem_not_a_crash() -> None:
    source = "Hello {{ ('friend').name or customer.name }}"
    assert [p.message for p in template_problems(source)] == [
        "'str object' has no attribute 'name'"
    ]
    assert undeclared_names(source) == set()
