"""Business-initiated messages: a deployment template, filled in, as the content the channel
policy checks (`Engine.initiate`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowlang.errors import InputError
from flowlang.runtime.phones import normalise_phone
from flowlang.runtime.ports import INITIATED, CustomerView
from flowlang.runtime.program import Program
from flowlang.templates import ReplyTemplate

__all__ = ["INITIATED", "InitiateError", "recipient", "template_content"]


class InitiateError(InputError, ValueError):
    """A business-initiated send that cannot be made: an unknown template, a missing parameter,
    a recipient that is not a phone number (a flowlang `InputError`)."""


def recipient(address: str, to: str) -> tuple[str, str | None]:
    """The recipient as the channel's API takes it and the customer's phone (E.164) for a
    customer `to` on a channel that addresses customers by `address` ("phone", "phone_digits",
    "id"): "+44 (7700) 900-999" is +447700900999, and 447700900999 on WhatsApp. Raises
    `InitiateError` for a number that cannot be read."""
    if address == "id":
        return to, None
    phone = normalise_phone(to)
    if phone is None:
        raise InitiateError(f"{to!r} is not a phone number; write it in E.164, e.g. +447700900123")
    return (phone.lstrip("+") if address == "phone_digits" else phone), phone


def template_content(
    program: Program, name: str, params: Mapping[str, Any], customer: CustomerView
) -> dict[str, Any]:
    """The content of template `name` filled with `params`: a WhatsApp template by name and
    parameters, any other rendered (it may read `customer.name` and `customer.phone`)."""
    template = program.templates.get(name)
    if template is None:
        known = ", ".join(sorted(program.templates)) or "none"
        raise InitiateError(f"no template {name!r} in the deployment (templates: {known})")
    missing = [p for p in template.parameters if p not in params]
    if missing:
        raise InitiateError(
            f"template {name!r} needs the parameter(s) {', '.join(missing)}; "
            f"give each, e.g. {missing[0]}=..."
        )
    if template.kind == "whatsapp":
        return {"kind": "template", "name": name, "parameters": dict(params), **template.data}
    if template.source is None:
        return {"kind": template.kind, "template": name, **template.data}
    compiled = program.template_text(template.source) or ReplyTemplate(template.source)
    who = {"id": customer.id, "name": customer.name, "phone": customer.phone}
    try:
        text = compiled.render(lambda key, default: {"customer": who}.get(key, default), params)
    except Exception as exc:
        raise InitiateError(f"template {name!r} failed: {exc}") from exc
    if template.kind == "text":
        return {"kind": "text", "text": text, "template": name}
    return {"kind": template.kind, "text": text, "template": name, **template.data}
