"""Build programs from flow text, and engines from programs, for runtime tests."""

from __future__ import annotations

from datetime import UTC, datetime
from textwrap import dedent
from typing import Any

from flowlang.assembly import assemble_engine
from flowlang.compiler.compile import compile_flow
from flowlang.language.checker import check
from flowlang.language.context import FlowContext
from flowlang.language.parser import parse_text
from flowlang.runtime.engine import Engine
from flowlang.runtime.memory import AllowAll
from flowlang.runtime.program import Program
from flowlang.runtime.state import Facts

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def program(body: str, header: str = "", name: str = "test.flow") -> Program:
    """A program from a flow whose single state is `body` (indented by the caller or not)."""
    text = (
        f'flow "Test"\nserve messages on whatsapp, web\n{dedent(header)}\n'
        "state start:\n" + "\n".join("    " + line for line in dedent(body).splitlines())
    )
    parsed = parse_text(text + "\n", name)
    assert parsed.flow is not None, parsed.diagnostics
    result = check(parsed.flow, FlowContext())
    assert result.checked is not None, [d.message for d in result.diagnostics]
    return Program(compile_flow(result.checked))


def engine_of(prog: Program, **parts: Any) -> Engine:
    """An Engine for `prog` assembled as a host's would be (`assemble_engine`: the parts given,
    the built-in ones for the rest), except that the reply policy allows everything unless one
    is given: these tests are about the engine, not the channel rules."""
    parts.setdefault("policy", AllowAll())
    return assemble_engine(prog, **parts)


def facts(text: str = "hello", **extra: Any) -> Facts:
    base: dict[str, Any] = {
        "now": NOW,
        "message": {"text": text, "channel": "whatsapp", "kind": "message"},
        "customer": {"known": False, "name": "Ana"},
        "conversation": {"ongoing": False, "last_agent": None},
        "window": {"open": True},
    }
    base.update(extra)
    return Facts(**base)
