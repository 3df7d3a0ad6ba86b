"""A FlowGraph prepared to run: expressions, keyword automata and templates compiled once."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from datetime import timedelta
from typing import Any

from flowlang.compiler import ir
from flowlang.compiler.ir import FlowGraph, Node
from flowlang.durations import parse_duration
from flowlang.runtime.evaluate import Compiled, compile_expr
from flowlang.runtime.keywords import KeywordMatcher
from flowlang.templates import ReplyTemplate, is_template


@dataclass(frozen=True)
class DeploymentTemplate:
    """A template declared in the deployment file, as the runtime needs it."""

    name: str
    kind: str = "text"  # text | whatsapp | quick_replies | buttons | carousel | card
    source: str | None = None
    data: dict[str, Any] = field(default_factory=dict)  # whatsapp name/language, items...
    parameters: tuple[str, ...] = ()  # the parameters a WhatsApp template must be given


@dataclass
class Program:
    graph: FlowGraph
    templates: dict[str, DeploymentTemplate] = field(default_factory=dict)
    _exprs: dict[int, Compiled] = field(default_factory=dict, repr=False)
    _matchers: dict[str, KeywordMatcher] = field(default_factory=dict, repr=False)
    _texts: dict[str, ReplyTemplate] = field(default_factory=dict, repr=False)
    _params: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _durations: set[str] = field(default_factory=set, init=False, repr=False)
    run_cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    """What the interpreter derives from the graph once (its step table)."""

    def __post_init__(self) -> None:
        self._durations = {n for n, spec in self.graph.params.items() if spec["type"] == "duration"}
        self._params = {
            name: _duration(spec["value"]) if name in self._durations else spec["value"]
            for name, spec in self.graph.params.items()
        }
        for node in self.graph.nodes.values():
            args = node.args
            self._prepare(args)
            if isinstance(args, ir.LogArgs) and is_template(args.message):
                self._texts[args.message] = ReplyTemplate(args.message)
            if isinstance(args, ir.SurveyArgs):
                for question in args.questions:
                    if question.retry is not None and is_template(question.retry):
                        self._texts[question.retry] = ReplyTemplate(question.retry)
            if isinstance(args, ir.MatchArgs):
                whens = [(w.keywords, w.regexes) for w in args.whens]
                self._matchers[node.id] = KeywordMatcher(whens)
        for template in self.templates.values():
            if template.source and is_template(template.source):
                self._texts[template.source] = ReplyTemplate(template.source)
        for variable in self.graph.variables.values():
            if variable.get("initial"):
                self._prepare(variable["initial"])

    def _prepare(self, value: object) -> None:
        """Compile every expression tree and template text found in node arguments."""
        if isinstance(value, ir.TextContent) and is_template(value.text):
            self._texts[value.text] = ReplyTemplate(value.text)
        if is_dataclass(value):
            for f in fields(value):
                self._prepare(getattr(value, f.name))
        elif isinstance(value, dict):
            if _is_expr(value):
                self._exprs[id(value)] = compile_expr(value)
                return
            for item in value.values():
                self._prepare(item)
        elif isinstance(value, list | tuple):
            for item in value:
                self._prepare(item)

    def expr(self, tree: ir.ExprTree) -> Compiled:
        compiled = self._exprs.get(id(tree))
        if compiled is None:
            compiled = self._exprs[id(tree)] = compile_expr(tree)
        return compiled

    def params(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """Each param's value: the environment's override, else the flow's default."""
        if not overrides:
            return self._params
        return {
            name: value
            if name not in overrides
            else _duration(overrides[name])
            if name in self._durations
            else overrides[name]
            for name, value in self._params.items()
        }

    def matcher(self, node: Node) -> KeywordMatcher:
        return self._matchers[node.id]

    def template_text(self, text: str) -> ReplyTemplate | None:
        return self._texts.get(text)


_EXPR_SHAPES = (
    frozenset({"lit"}),
    frozenset({"dur"}),
    frozenset({"call", "args"}),
    frozenset({"un", "x"}),
    frozenset({"bin", "l", "r"}),
    frozenset({"isset", "neg"}),
    frozenset({"re", "x"}),
)


def _is_expr(value: dict[str, Any]) -> bool:
    keys = frozenset(value)
    if keys in ({"path"}, {"list"}):
        return isinstance(next(iter(value.values())), list)
    return keys in _EXPR_SHAPES


def _duration(value: Any) -> Any:
    """A duration param's value as expressions use it: the graph keeps seconds, an environment
    may give `"10m"`; anything else stays as it is (an expression then reports it, FL900)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError:
            return value
    return value
