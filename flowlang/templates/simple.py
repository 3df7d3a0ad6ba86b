"""Straight Python for the simplest reply templates, with Jinja2's exact result.

Most reply templates are text with a few `{{ customer.name }}` or `{{ crm.segment or 'retail' }}`
in it. Rendering those through Jinja2 costs about 1.8 µs (a context, the sandbox's attribute
checks, a generator); this turns such a template into a function that concatenates `str()` of
each value, as Jinja2's generated code does. It handles text, names, constants, `.field` and
`['key']` of plain dicts, `or` and `and`. Anything else is left to Jinja2 (`compile_simple`
returns None), and so is any render where a name is missing or a member is not a plain dict's
key (the function raises `NotSimple`): Jinja2 then gives the value or the error it always gave.
The sandbox's rules hold here too: a private or internal name (`_x`, `__class__`, `format`) is
always left to Jinja2's sandbox, and each value written and the whole text are bounded by the same
checks as Jinja2's output.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jinja2 import nodes

from flowlang.errors import FlowError
from flowlang.templates.sandbox import MAX_LENGTH, bounded_concat, check_size, unsafe_attribute

Lookup = Callable[[str], Any]
"""A name's value, or raises NotSimple when there is none."""
_Value = Callable[[Lookup], Any]
SimpleRender = Callable[[Lookup], str]

# names a dict has as attributes: Jinja2's `x.items` is the method, not the key "items"
_DICT_ATTRIBUTES = frozenset(dir(dict))
# names Jinja2 itself gives a meaning in a template, whatever the context holds
_JINJA_NAMES = frozenset({"self"})


class NotSimple(FlowError):
    """This render needs Jinja2 (a missing name, a member that is not a plain dict's key)."""


def compile_simple(template: nodes.Template) -> SimpleRender | None:
    """A function rendering `template` as Jinja2 would, or None when it is not that simple."""
    if not all(isinstance(node, nodes.Output) for node in template.body):
        return None
    parts: list[str | _Value] = []
    for output in template.body:
        assert isinstance(output, nodes.Output)
        for child in output.nodes:
            if isinstance(child, nodes.TemplateData):
                parts.append(child.data)
                continue
            value = _value(child)
            if value is None:
                return None
            parts.append(value)
    if all(isinstance(part, str) for part in parts):
        text = bounded_concat(part for part in parts if isinstance(part, str))
        return lambda _lookup: text
    pieces = tuple(parts)

    def render(lookup: Lookup) -> str:
        # each value is within the bounds, so the joined text is at most a few times the limit
        text = "".join([p if isinstance(p, str) else _written(p(lookup)) for p in pieces])
        return text if len(text) <= MAX_LENGTH else bounded_concat((text,))

    return render


def _written(value: Any) -> str:
    if type(value) is str and len(value) <= MAX_LENGTH:
        return value
    return str(check_size(value, "a value the template writes"))


def _value(node: nodes.Node) -> _Value | None:
    if isinstance(node, nodes.Const):
        constant = node.value
        return lambda _lookup: constant
    if isinstance(node, nodes.Name) and node.ctx == "load" and node.name not in _JINJA_NAMES:
        name = node.name
        return lambda lookup: lookup(name)
    if (
        isinstance(node, nodes.Getattr)
        and node.attr not in _DICT_ATTRIBUTES
        and not unsafe_attribute(node.attr)
    ):
        return _member(node.node, node.attr)
    # Jinja2's `x['key']` is the item first, so a key named like a dict method is fine
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
        and not unsafe_attribute(node.arg.value)
    ):
        return _member(node.node, node.arg.value)
    if isinstance(node, nodes.Or | nodes.And):
        left, right = _value(node.left), _value(node.right)
        if left is None or right is None:
            return None
        if isinstance(node, nodes.Or):
            return lambda lookup: left(lookup) or right(lookup)
        return lambda lookup: left(lookup) and right(lookup)
    return None


def _member(of: nodes.Node, key: str) -> _Value | None:
    inner = _value(of)
    if inner is None:
        return None

    def member(lookup: Lookup) -> Any:
        container = inner(lookup)
        if type(container) is not dict or key not in container:
            raise NotSimple(key)
        return container[key]

    return member
