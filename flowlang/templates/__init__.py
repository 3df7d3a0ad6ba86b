"""Reply and template texts: takes Jinja2 source written in a flow or the deployment, gives the
checker's problems and names and the runtime's compiled `ReplyTemplate`.

    template = ReplyTemplate("Hello {{ customer.name or 'there' }}")
    text = template.render(names.get)  # names: the run's values by name

`jinja` holds the public API exported here; `sandbox` is the bounded environment every template
runs in, `safety` finds at check time what the sandbox would refuse, and `simple` renders the
simplest templates as straight Python with Jinja2's exact result. Customer text is only ever
passed in as data, never compiled as template source.
"""

from flowlang.templates.jinja import (
    ReplyTemplate,
    TemplateProblem,
    compile_template,
    environment,
    fixed_text,
    is_template,
    name_position,
    part_span,
    template_problems,
    unclosed_tag,
    undeclared_names,
    unsafe_template_parts,
)

__all__ = [
    "ReplyTemplate",
    "TemplateProblem",
    "compile_template",
    "environment",
    "fixed_text",
    "is_template",
    "name_position",
    "part_span",
    "template_problems",
    "unclosed_tag",
    "undeclared_names",
    "unsafe_template_parts",
]
