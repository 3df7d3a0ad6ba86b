"""`ast.Flow` + its comments -> the flow's text in the canonical layout (`flowlang fmt`).

Layout, decided once so that nobody has to:

- 4 spaces per level; one statement per line; no trailing spaces; one final newline.
- Declarations stay in source order. Reordering the header (`serve`, `threading`, `param`, `var`)
  would move the comments written around them and fight the order authors chose to tell the
  flow's story (the real flows interleave "Step N" comments with declarations); the checker, not
  the layout, is the place to insist on an order.
- One blank line between top-level declarations. Runs of the same one-line declaration
  (`serve`, `param`, `var`, ...) stay grouped, as does `description` under the `flow` line; inside
  such a run, and inside blocks, a blank line is kept where the source had one or more. There is
  never a blank line directly after a line ending in ':'.
- Spaces around binary operators and `=`, one after each comma, none inside brackets; parentheses
  only where the grammar's precedence needs them (or < and < not < comparisons < + - < * / <
  unary minus < atoms).
- Texts are re-quoted with the documented escapes `\\"`, `\\\\` and `\\n` (and `\\t` for a tab,
  which would otherwise be invisible). The parser also reads a backslash that starts no escape
  as itself (`"\\d+"`); it is written `\\\\` like every other backslash, so a text has one
  spelling. Numbers and durations are written as in the source (`72h` stays `72h`,
  never `3d`: admins choose the unit that reads best).
- The options of a `route to queue` block come in one order: skill, language, priority, prefer
  agent, prefer last agent, timeout, then the `on` outcomes. The AST does not keep their source
  order, and an option given twice keeps only the value that takes effect.
- Comments are kept. A comment on its own line stays before the line that follows it, at that
  line's indentation; one that follows the last statement of a block, indented at least as deep
  as that block, stays at the end of the block. A comment after code stays on its line, two spaces
  after it.

`format_text` re-parses its own output and refuses (with a diagnostic) to return text whose AST
or comments differ from the input's, so a formatter bug can never change a flow's meaning.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import TypeAlias, assert_never

from flowlang import codes
from flowlang.diagnostics import Diagnostic, SourceFile, Span, error
from flowlang.durations import written
from flowlang.language import ast
from flowlang.language.ast_compare import same_structure
from flowlang.language.parser import parse_text

INDENT = "    "

__all__ = ["FormatResult", "format_expr", "format_flow", "format_text", "quote"]


@dataclass
class FormatResult:
    """The formatted text, or None with the diagnostics that stopped formatting."""

    text: str | None
    diagnostics: list[Diagnostic]
    source: SourceFile

    @property
    def ok(self) -> bool:
        return self.text is not None

    @property
    def changed(self) -> bool:
        """True when formatting rewrote the file."""
        return self.text is not None and self.text != self.source.text


def format_text(text: str, filename: str) -> FormatResult:
    """Parse and format flow text; never raises for bad input."""
    parsed = parse_text(text, filename)
    flow = parsed.flow
    if flow is None and _only_indentation(parsed.diagnostics):
        flow = parsed.partial  # blocks indented by other than 4 spaces: the layout is ours
    if flow is None or (flow is parsed.flow and not parsed.ok):
        return FormatResult(None, parsed.diagnostics, parsed.source)
    out = format_flow(flow, parsed.comments)
    again = parse_text(out, filename)
    if (
        not again.ok
        or again.flow is None
        or not same_structure(again.flow, flow)
        or _comment_texts(again.comments) != _comment_texts(parsed.comments)
    ):
        problem = error(
            codes.FORMAT_WOULD_CHANGE_FLOW,
            "the formatter could not lay out this flow without changing it; the file is unchanged",
            flow.span,
            "formatter",
            hint="this is a bug in flowlang fmt; please report it with the flow file",
        )
        return FormatResult(None, [*parsed.diagnostics, problem], parsed.source)
    return FormatResult(out, parsed.diagnostics, parsed.source)


def _only_indentation(diagnostics: Sequence[Diagnostic]) -> bool:
    errors = [d for d in diagnostics if d.is_error]
    return bool(errors) and all(d.code == codes.INDENT_NOT_ONE_LEVEL for d in errors)


def _comment_texts(comments: Sequence[ast.Comment]) -> list[str]:
    return sorted(c.text.rstrip() for c in comments)


def format_flow(flow: ast.Flow, comments: Sequence[ast.Comment]) -> str:
    """The canonical text of `flow`, with `comments` (from `ParseResult.comments`) kept."""
    printer = _Printer(comments)
    keyword = "module" if flow.module else "flow"
    header = _Node(
        flow.span.line, flow.span.line, flow.span.line, 1, f"{keyword} {quote(flow.name)}"
    )
    nodes = [_declaration(d) for d in flow.declarations]
    kinds = [type(d) for d in flow.declarations]
    printer.emit_node(header, 0, nodes[0].start if nodes else _NO_LIMIT)
    previous: type[ast.Declaration] | None = None
    for i, (node, kind) in enumerate(zip(nodes, kinds, strict=True)):
        grouped = kind in _ONE_LINE and (
            kind is previous or (previous is None and kind is ast.Description)
        )
        printer.force_blank = not grouped
        limit = nodes[i + 1].start if i + 1 < len(nodes) else _NO_LIMIT
        printer.emit_node(node, 0, limit)
        previous = kind
    printer.rest()
    return "\n".join(printer.lines) + "\n"


_ONE_LINE: tuple[type[ast.Declaration], ...] = (
    ast.Use,
    ast.Description,
    ast.Serve,
    ast.Threading,
    ast.Param,
    ast.VarDecl,
)
_NO_LIMIT = 1 << 62


# ---------------------------------------------------------------- texts, names and numbers


def quote(value: str) -> str:
    """`value` as a flow text literal: `"` + escapes + `"`."""
    out = ['"']
    for ch in value:
        if ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\\":
            out.append("\\\\")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _name_ref(ref: ast.NameRef) -> str:
    if ref.expr is not None:  # a target known at run time: a dotted name, else in brackets
        if isinstance(ref.expr, ast.Path) and len(ref.expr.parts) > 1:
            return ref.expr.dotted
        return f"({format_expr(ref.expr)})"
    return ref.name if ref.is_param else quote(ref.name)


def _float(value: float) -> str:
    if value.is_integer():
        return str(int(value))
    return format(Decimal(repr(value)), "f")


def _args(args: tuple[ast.Arg, ...]) -> str:
    if not args:
        return ""
    return " with " + ", ".join(f"{a.name} = {format_expr(a.value)}" for a in args)


def _wait(value: timedelta | None, word: str = "wait") -> str:
    return f" {word} {written(value)}" if isinstance(value, timedelta) else ""


# ---------------------------------------------------------------- expressions

_OR, _AND, _NOT, _COMPARE, _SUM, _PRODUCT, _UNARY, _ATOM = range(1, 9)
_BINARY_LEVEL = {
    "or": _OR,
    "and": _AND,
    "==": _COMPARE,
    "!=": _COMPARE,
    "<": _COMPARE,
    "<=": _COMPARE,
    ">": _COMPARE,
    ">=": _COMPARE,
    "contains": _COMPARE,
    "in": _COMPARE,
    "+": _SUM,
    "-": _SUM,
    "*": _PRODUCT,
    "/": _PRODUCT,
}


def format_expr(expr: ast.Expr) -> str:
    """An expression's canonical text, parenthesised only where precedence needs it."""
    return _expr(expr, 0)


def _level(expr: ast.Expr) -> int:
    if isinstance(expr, ast.Binary):
        return _BINARY_LEVEL.get(expr.op, _COMPARE)
    if isinstance(expr, ast.Unary):
        return _NOT if expr.op == "not" else _UNARY
    if isinstance(expr, ast.IsSet | ast.Matches):
        return _COMPARE
    return _ATOM


def _expr(expr: ast.Expr, needed: int) -> str:
    """`expr` as text that parses at grammar level `needed` or tighter."""
    text = _bare(expr)
    return f"({text})" if _level(expr) < needed else text


def _bare(expr: ast.Expr) -> str:
    if isinstance(expr, ast.Literal):
        return _literal(expr)
    if isinstance(expr, ast.Path):
        return expr.dotted
    if isinstance(expr, ast.Call):
        return f"{expr.name}({', '.join(_expr(a, 0) for a in expr.args)})"
    if isinstance(expr, ast.StoredData):
        return f"{expr.scope} data {quote(expr.key)}"
    if isinstance(expr, ast.Member):
        return ".".join((_bare(expr.base), *expr.names))
    if isinstance(expr, ast.Detect):
        return f"detect({', '.join((_expr(expr.text, 0), *map(_detect_option, expr.options)))})"
    if isinstance(expr, ast.ListExpr):
        return f"[{', '.join(_expr(i, 0) for i in expr.items)}]"
    if isinstance(expr, ast.Unary):
        if expr.op == "not":
            return f"not {_expr(expr.operand, _NOT)}"
        operand = _expr(expr.operand, _UNARY)
        return f"- {operand}" if operand.startswith("-") else f"-{operand}"
    if isinstance(expr, ast.IsSet):
        return f"{_expr(expr.operand, _SUM)} is {'not ' if expr.negated else ''}set"
    if isinstance(expr, ast.Matches):
        return f"{_expr(expr.operand, _SUM)} matches {quote(expr.pattern)}"
    level = _level(expr)
    if level == _COMPARE:  # not associative: both sides are sums
        left, right = _expr(expr.left, _SUM), _expr(expr.right, _SUM)
    else:  # left-associative: the right side binds tighter
        left, right = _expr(expr.left, level), _expr(expr.right, level + 1)
    return f"{left} {expr.op} {right}"


def _detect_option(option: ast.DetectOption) -> str:
    if option.kind == "among":
        return f"among [{', '.join(quote(code) for code in option.values)}]"
    if option.kind == "fallback":
        return f"fallback {quote(option.values[0])}"
    return f"confidence {option.values[0]}"


def _literal(lit: ast.Literal) -> str:
    if lit.kind == "text":
        return quote(str(lit.value))
    if lit.kind == "number":
        if lit.source:
            return lit.source
        assert isinstance(lit.value, int | float)
        return _float(float(lit.value)) if isinstance(lit.value, float) else str(lit.value)
    if lit.kind == "duration":
        assert isinstance(lit.value, timedelta)
        return written(lit.value)
    if lit.kind == "boolean":
        return "true" if lit.value else "false"
    return "not set"


# ---------------------------------------------------------------- lines

_Stash: TypeAlias = tuple[list[ast.Comment], ast.Comment | None]


@dataclass
class _Node:
    """One output line and what hangs under it, with the source lines it came from."""

    start: int  # first source line
    last: int  # last source line of the whole construct, body included
    header_end: int  # comments up to this line belong on the node's own line
    column: int  # source column, for comments at the end of a block
    text: str
    body: list[_Node] = field(default_factory=list)  # one level deeper
    compound: bool = False

    @property
    def simple(self) -> bool:
        return not self.compound


def _simple(span: Span, text: str) -> _Node:
    return _Node(span.line, span.end_line, span.end_line, span.column, text)


def _compound(span: Span, text: str, body: list[_Node]) -> _Node:
    first = min((n.start for n in body), default=span.line + 1)
    return _Node(span.line, span.end_line, first - 1, span.column, text, body, compound=True)


class _Printer:
    def __init__(self, comments: Sequence[ast.Comment]) -> None:
        self.pending = sorted(comments, key=lambda c: (c.line, c.column))
        self.lines: list[str] = []
        self.prev_end: int | None = None  # None: start of a block, no blank line
        self.force_blank = False

    # -- output
    def put(self, depth: int, text: str, line: int, end: int) -> None:
        gap = self.prev_end is not None and line > self.prev_end + 1
        if (self.force_blank or gap) and self.lines and self.lines[-1]:
            self.lines.append("")
        self.force_blank = False
        self.lines.append(INDENT * depth + text)
        self.prev_end = end

    def take(self, keep: Callable[[ast.Comment], bool]) -> list[ast.Comment]:
        taken = [c for c in self.pending if keep(c)]
        if taken:
            self.pending = [c for c in self.pending if not keep(c)]
        return taken

    def stash(self, node: _Node, after: int) -> _Stash:
        """Take the comments of `node`'s line: those before it (after line `after`) and on it."""
        leading = self.take(lambda c: after < c.line < node.start)
        if node.simple:
            on_line = self.take(lambda c: node.start <= c.line <= node.header_end)
        else:
            on_line = self.take(
                lambda c: not c.own_line and node.start <= c.line <= node.header_end
            )
        trailing = next((c for c in reversed(on_line) if not c.own_line), None)
        leading += [c for c in on_line if c is not trailing]
        return leading, trailing

    # -- structure
    def emit_node(self, node: _Node, depth: int, limit: int, stash: _Stash | None = None) -> None:
        leading, trailing = stash if stash is not None else self.stash(node, -1)
        for c in leading:
            line = min(c.line, node.start)
            self.put(depth, c.text.rstrip(), line, line)
        text = node.text if trailing is None else f"{node.text}  {trailing.text.rstrip()}"
        self.put(depth, text, node.start, node.header_end if node.compound else node.last)
        if node.body:
            self.prev_end = None
            self.emit_block(node.body, depth + 1, limit)

    def emit_block(self, nodes: list[_Node], depth: int, limit: int) -> None:
        starts = [n.start for n in nodes]
        stashes: dict[int, _Stash] = {}
        if starts != sorted(starts):
            # Written out of canonical order (route options): give each simple node the
            # comments around it in the source before anything is emitted.
            after = -1
            for i in sorted(range(len(nodes)), key=lambda k: nodes[k].start):
                if nodes[i].simple:
                    stashes[i] = self.stash(nodes[i], after)
                after = nodes[i].last
        for i, node in enumerate(nodes):
            later = [s for s in starts if s > node.start]
            if stashes and i:
                self.prev_end = None  # source lines out of order say nothing about blank lines
            self.emit_node(node, depth, min(later, default=limit), stashes.get(i))
        if stashes:
            self.prev_end = max(n.last for n in nodes)
        column = min(n.column for n in nodes)
        while self.pending:
            c = self.pending[0]
            if not c.own_line or c.line >= limit or c.column < column:
                break
            self.pending.pop(0)
            self.put(depth, c.text.rstrip(), c.line, c.line)

    def rest(self) -> None:
        for c in self.pending:
            self.put(0, c.text.rstrip(), c.line, c.line)
        self.pending = []


# ---------------------------------------------------------------- declarations


def _declaration(decl: ast.Declaration) -> _Node:
    if isinstance(decl, ast.Use):
        return _simple(decl.span, f"use {quote(decl.path)}")
    if isinstance(decl, ast.Description):
        return _simple(decl.span, f"description {quote(decl.text)}")
    if isinstance(decl, ast.Serve):
        targets = ", ".join(_target(t) for t in decl.targets)
        return _simple(decl.span, f"serve {' and '.join(decl.scopes)} on {targets}")
    if isinstance(decl, ast.Threading):
        window = written(decl.window) if decl.window is not None else decl.param
        return _simple(decl.span, f"threading window {window}")
    if isinstance(decl, ast.Param):
        default = _literal(decl.default)
        return _simple(decl.span, f"param {decl.name}: {decl.type_name} = {default}")
    if isinstance(decl, ast.VarDecl):
        initial = "" if decl.initial is None else f" = {format_expr(decl.initial)}"
        return _simple(decl.span, f"var {decl.name}: {decl.type_name}{initial}")
    if isinstance(decl, ast.OnError):
        return _compound(decl.span, "on error:", _block(decl.body))
    if isinstance(decl, ast.OnEvent):
        return _compound(decl.span, f"on {decl.event}:", _block(decl.body))
    if isinstance(decl, ast.InQueue):
        where = "" if decl.queue is None else f" in {quote(decl.queue)}"
        activities = [_compound(a.span, _activity(a), _block(a.body)) for a in decl.activities]
        return _compound(decl.span, f"while queued{where}:", activities)
    if isinstance(decl, ast.Task):
        outcomes = f" outcomes {', '.join(decl.outcomes)}" if decl.outcomes else ""
        return _compound(decl.span, f"task {decl.name}{outcomes}:", _block(decl.body))
    return _compound(decl.span, f"state {decl.name}:", _block(decl.body))


def _target(target: ast.Target) -> str:
    if target.account_kind is None or target.account is None:
        return target.channel
    return f"{target.channel} {target.account_kind} {quote(target.account)}"


# ---------------------------------------------------------------- statements


def _block(block: ast.Block) -> list[_Node]:
    return [node for stmt in block for node in _statement(stmt)]


def _branches(branches: tuple[ast.OutcomeBranch, ...]) -> list[_Node]:
    return [_compound(b.span, f"on {b.name}:", _block(b.body)) for b in branches]


def _with_outcomes(span: Span, text: str, branches: tuple[ast.OutcomeBranch, ...]) -> _Node:
    if not branches:
        return _simple(span, text)
    return _compound(span, f"{text}:", _branches(branches))


def _statement(stmt: ast.Statement) -> list[_Node]:
    """The lines of one statement at its own level: `if` with its `elif`/`else`, or one."""
    if isinstance(stmt, ast.If):
        return _if(stmt)
    return [_one(stmt)]


def _if(stmt: ast.If) -> list[_Node]:
    first, *others = stmt.branches
    nodes = [_compound(stmt.span, f"if {format_expr(first.condition)}:", _block(first.body))]
    nodes[0].last = (others[0].span.line - 1) if others else nodes[0].last
    for branch in others:
        text = f"elif {format_expr(branch.condition)}:"
        nodes.append(_compound(branch.span, text, _block(branch.body)))
    if stmt.else_body is not None:
        nodes.append(_compound(stmt.else_span or stmt.span, "else:", _block(stmt.else_body)))
    return nodes


# Complex by design: one case per statement kind, exhaustive (assert_never).
def _one(stmt: ast.Statement) -> _Node:  # noqa: C901
    span = stmt.span
    if isinstance(stmt, ast.Reply):
        return _simple(span, _reply(stmt))
    if isinstance(stmt, ast.SetVariable):
        return _simple(span, f"set {stmt.name} to {format_expr(stmt.value)}")
    if isinstance(stmt, ast.SetPriority):
        return _simple(span, f"set priority to {format_expr(stmt.value)}")
    if isinstance(stmt, ast.SetLanguage):
        return _simple(span, f"set language to {format_expr(stmt.value)}")
    if isinstance(stmt, ast.SetData):
        key = quote(stmt.key)
        return _simple(span, f"set {stmt.scope} data {key} to {format_expr(stmt.value)}")
    if isinstance(stmt, ast.AddSkill):
        return _simple(span, f"add skill {_name_ref(stmt.skill)}{_min(stmt.min_proficiency)}")
    if isinstance(stmt, ast.RemoveSkill):
        return _simple(span, f"remove skill {_name_ref(stmt.skill)}")
    if isinstance(stmt, ast.MarkNotActionable):
        reason = "" if stmt.reason is None else f" {quote(stmt.reason)}"
        return _simple(span, f"mark not actionable{reason}")
    if isinstance(stmt, ast.LinkCustomer):
        verified = "" if stmt.verified_by is None else f" verified by {stmt.verified_by}"
        link = f"link customer by {quote(stmt.kind)} to {format_expr(stmt.value)}{verified}"
        return _simple(span, link)
    if isinstance(stmt, ast.GoToState):
        return _simple(span, f"go to state {stmt.state}")
    if isinstance(stmt, ast.OutcomeStmt):
        return _simple(span, f"outcome {stmt.name}")
    if isinstance(stmt, ast.End):
        return _simple(span, "end" if stmt.reason is None else f"end {quote(stmt.reason)}")
    if isinstance(stmt, ast.Break):
        return _simple(span, "break")
    if isinstance(stmt, ast.Pass):
        return _simple(span, "pass")
    if isinstance(stmt, ast.KeepWaiting):
        return _simple(span, "keep waiting")
    if isinstance(stmt, ast.Log):
        return _simple(span, f"log {quote(stmt.message)}")
    if isinstance(stmt, ast.If):  # only reached through _statement
        raise TypeError("if statements have several lines")
    if isinstance(stmt, ast.Switch):
        cases = [
            _compound(c.span, f"case {', '.join(_literal(v) for v in c.values)}:", _block(c.body))
            for c in stmt.cases
        ]
        if stmt.default is not None:
            cases.append(_compound(stmt.default_span or span, "default:", _block(stmt.default)))
        return _compound(span, f"switch {format_expr(stmt.subject)}:", cases)
    if isinstance(stmt, ast.Match):
        return _match(stmt)
    if isinstance(stmt, ast.Split):
        name = "" if stmt.name is None else f" {quote(stmt.name)}"
        branches = [
            _compound(b.span, f"{b.source or _percent(b.percent)} {b.name}:", _block(b.body))
            for b in stmt.branches
        ]
        return _compound(span, f"split{name}:", branches)
    if isinstance(stmt, ast.Milestone):
        return _simple(span, f"milestone {quote(stmt.name)}")
    if isinstance(stmt, ast.TransferFlow):
        return _simple(span, f"transfer to flow {quote(stmt.flow)}")
    if isinstance(stmt, ast.Repeat):
        return _compound(span, f"repeat {stmt.times} times:", _block(stmt.body))
    if isinstance(stmt, ast.While):
        text = f"while {format_expr(stmt.condition)} at most {stmt.limit} times:"
        return _compound(span, text, _block(stmt.body))
    if isinstance(stmt, ast.Ask):
        text = f"ask {_text(stmt.prompt)} into {stmt.into}{_wait(stmt.wait)}"
        return _compound(span, f"{text}:", _branches(stmt.branches))
    if isinstance(stmt, ast.Recognize):
        kinds = ", ".join(k if k in ("platform id", "phone") else quote(k) for k in stmt.kinds)
        return _with_outcomes(span, f"recognize customer by {kinds}", stmt.branches)
    if isinstance(stmt, ast.RouteQueue):
        return _route_queue(stmt)
    if isinstance(stmt, ast.RouteAgent):
        who = "last agent" if stmt.agent is None else f"agent {_name_ref(stmt.agent)}"
        return _with_outcomes(span, f"route to {who}{_wait(stmt.wait)}", stmt.branches)
    if isinstance(stmt, ast.BotHandoff):
        text = f"hand off to bot {_name_ref(stmt.bot)}{_wait(stmt.wait)}:"
        return _compound(span, text, _branches(stmt.branches))
    if isinstance(stmt, ast.DataAction):
        into = "" if stmt.into is None else f" into {stmt.into}"
        text = (
            f"call data action {_name_ref(stmt.action)}{_args(stmt.args)}{into}"
            f"{_wait(stmt.timeout, 'timeout')}:"
        )
        return _compound(span, text, _branches(stmt.branches))
    if isinstance(stmt, ast.CallTask):
        return _with_outcomes(span, f"call task {stmt.task}", stmt.branches)
    if isinstance(stmt, ast.CheckSchedule):
        text = f"check schedule {_name_ref(stmt.schedule)}:"
        return _compound(span, text, _branches(stmt.branches))
    if isinstance(stmt, ast.Survey):
        questions = [_simple(q.span, _question(q)) for q in stmt.questions]
        text = f"survey {quote(stmt.name)}{_wait(stmt.wait)}:"
        return _compound(span, text, [*questions, *_branches(stmt.branches)])
    assert_never(stmt)


def _percent(value: float) -> str:
    return f"{int(value)}%" if value.is_integer() else f"{value!r}%"


def _activity(activity: ast.QueueActivity) -> str:
    if activity.kind == "writes" or activity.interval is None:
        return "when customer writes:"
    return f"{activity.kind} {written(activity.interval)}:"


def _question(question: ast.SurveyQuestion) -> str:
    if question.kind == "comment":
        return f"comment {_text(question.prompt)} into {question.into}"
    retry = "" if question.retry is None else f" retry {quote(question.retry)}"
    return (
        f"rating {_text(question.prompt)} from {question.low} to {question.high} "
        f"into {question.into}{retry}"
    )


def _min(value: int | None, word: str = "min") -> str:
    return "" if value is None else f" {word} {value}"


def _text(content: ast.TextContent) -> str:
    if content.choices is None:
        return quote(content.text)
    kind = "quick replies" if content.choices.kind == "quick_replies" else "buttons"
    options = ", ".join(quote(o) for o in content.choices.options)
    return f"{quote(content.text)} with {kind} {options}"


def _reply(stmt: ast.Reply) -> str:
    words = ["reply"]
    if stmt.visibility != "default":
        words.append(stmt.visibility)
    content = stmt.content
    if isinstance(content, ast.TextContent):
        words.append(_text(content))
    elif isinstance(content, ast.TemplateContent):
        words.append(f"template {_name_ref(content.template)}{_args(content.args)}")
    elif isinstance(content, ast.MediaContent):
        caption = "" if content.caption is None else f" caption {quote(content.caption)}"
        words.append(f"{content.kind} {quote(content.url)}{caption}")
    else:
        words.append(f"location {_float(content.latitude)}, {_float(content.longitude)}")
    guard = stmt.guard
    if guard is not None:
        if guard.action == "template" and guard.template is not None:
            action = f"send template {_name_ref(guard.template)}{_args(guard.args)}"
        else:
            action = guard.action
        words.append(f"if window closed {action}")
    return " ".join(words)


def _match(stmt: ast.Match) -> _Node:
    head = "match first keywords" if stmt.first else "match keywords"
    if stmt.subject is not None:
        head += f" in {format_expr(stmt.subject)}"
    clauses = []
    for when in stmt.whens:
        patterns = ", ".join(
            quote(p.text) if p.kind == "keyword" else f"regex {quote(p.text)}"
            for p in when.patterns
        )
        clauses.append(_compound(when.span, f"when {patterns}:", _block(when.body)))
    if stmt.otherwise is not None:
        otherwise_span = stmt.otherwise_span or stmt.span
        clauses.append(_compound(otherwise_span, "otherwise:", _block(stmt.otherwise)))
    return _compound(stmt.span, f"{head}:", clauses)


def _route_queue(stmt: ast.RouteQueue) -> _Node:
    """Options in canonical order, each with its source span when it can be told apart."""
    head = f"route to queue {_name_ref(stmt.queue)}"
    spans = list(stmt.option_spans)

    def claim(inner: Span | None) -> Span | None:
        for s in spans:
            if inner is None or _contains(s, inner):
                spans.remove(s)
                return s
        return None

    options: list[tuple[Span | None, str]] = []
    for skill in stmt.skills:
        found = claim(skill.span)
        options.append((found, f"skill {_name_ref(skill.skill)}{_min(skill.min_proficiency)}"))
    if stmt.language is not None:
        options.append((claim(stmt.language.span), f"language {_name_ref(stmt.language)}"))
    if stmt.priority is not None:
        options.append((claim(stmt.priority.span), f"priority {format_expr(stmt.priority)}"))
    for agent in stmt.preferred_agents:
        text = f"prefer agent {_name_ref(agent.agent)}{_min(agent.score, 'score')}"
        options.append((claim(agent.span), text))
    # `prefer last agent` and `timeout` have no inner span to tell theirs apart. Among the
    # options left over, `prefer last agent` takes the one as wide as its canonical text, else
    # the first (its place in canonical order); `timeout` takes the last.
    if stmt.prefer_last_agent:
        wide = [s for s in spans if s.end_column - s.column == len("prefer last agent")]
        chosen = wide[0] if len(wide) == 1 else (spans[0] if spans else None)
        if chosen is not None:
            spans.remove(chosen)
        options.append((chosen, "prefer last agent"))
    for step in stmt.agent_steps:
        options.append((claim(step.span), _agent_step(step)))
    if stmt.timeout is not None:
        options.append((spans.pop() if spans else None, f"timeout {written(stmt.timeout)}"))
    if not options and not stmt.branches:
        return _simple(stmt.span, head)
    items = [
        _simple(found, text) if found is not None else _placeless(stmt.span, text)
        for found, text in options
    ]
    return _compound(stmt.span, f"{head}:", items + _branches(stmt.branches))


def _agent_step(step: ast.AgentTarget) -> str:
    if step.condition is None:
        return "then any agent"
    keyword = "then" if step.then else "prefer"
    limit = f" for {written(step.duration)}" if step.duration is not None else ""
    return f"{keyword} agents where {format_expr(step.condition)}{limit}"


def _placeless(parent: Span, text: str) -> _Node:
    """A line whose source position is unknown: no comment attaches to it."""
    return _Node(parent.line, parent.line, parent.line - 1, parent.column + 4, text)


def _contains(outer: Span, inner: Span) -> bool:
    return (outer.line, outer.column) <= (inner.line, inner.column) and (
        inner.end_line,
        inner.end_column,
    ) <= (outer.end_line, outer.end_column)
