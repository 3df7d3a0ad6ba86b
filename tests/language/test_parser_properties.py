"""Properties of the parser and formatter on generated input (hypothesis).

(a) Any edit of a valid flow parses or yields diagnostics that point inside the file; never an
    exception. When an edited file still parses, it also formats, idempotently, and the checker
    (against the example deployment) runs without an exception; when the checker passes it, the
    flow compiles, its program is prepared and a first message runs through it.
(b) Random valid flows built as ASTs survive format -> parse unchanged, and format is idempotent.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flowlang.compiler.compile import compile_flow
from flowlang.compiler.ir import FlowGraph
from flowlang.diagnostics import Diagnostic, Span
from flowlang.language import ast
from flowlang.language.ast_compare import same_structure
from flowlang.language.checker import CheckedFlow, check
from flowlang.language.formatter import format_flow, format_text
from flowlang.language.parser import parse_bytes, parse_text
from flowlang.runtime.interpreter import run
from flowlang.runtime.program import Program
from flowlang.runtime.state import Facts, FlowState, Trigger
from flowlang.workspace import Workspace, load_context

ROOT = Path(__file__).resolve().parents[2]
SEEDS = [
    p.read_text("utf-8")
    for p in sorted((ROOT / "tests" / "cases" / "fmt").glob("*.flow"))
    + sorted((ROOT / "flows").glob("*.flow"))
]
BOUNDED = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SPAN = Span("gen.flow", 1, 1, 1, 2)
CONTEXT = load_context(ROOT / "examples" / "deployment.yaml", Workspace())


def test_there_are_seed_flows() -> None:
    assert len(SEEDS) >= 5
    assert all(parse_text(s, "seed.flow").ok for s in SEEDS)


# ---------------------------------------------------------------- (a) edits of valid flows

_NASTY = st.sampled_from([*'\t":\x00é日\\#()[],-\n\r', "    ", "\ufeff"])
_INSERTED = st.lists(_NASTY | st.characters(), min_size=1, max_size=6).map("".join)


@st.composite
def _edit(draw: st.DrawFn, lines: list[str]) -> list[str]:
    if not lines:
        return lines
    i = draw(st.integers(0, len(lines) - 1))
    kind = draw(st.sampled_from(["delete", "duplicate", "swap", "insert", "truncate", "indent"]))
    out = list(lines)
    if kind == "delete":
        del out[i]
    elif kind == "duplicate":
        out.insert(i, out[i])
    elif kind == "swap":
        j = draw(st.integers(0, len(lines) - 1))
        out[i], out[j] = out[j], out[i]
    elif kind == "insert":
        col = draw(st.integers(0, len(out[i])))
        out[i] = out[i][:col] + draw(_INSERTED) + out[i][col:]
    elif kind == "truncate":
        col = draw(st.integers(0, len(out[i])))
        out = [*out[:i], out[i][:col]]
    else:
        change = draw(st.sampled_from([-4, -2, -1, 1, 2, 4, 8]))
        body = out[i].lstrip(" ")
        depth = max(len(out[i]) - len(body) + change, 0)
        out[i] = draw(st.sampled_from([" ", "\t"])) * depth + body
    return out


@st.composite
def _edited_flow(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(SEEDS)).split("\n")
    for _ in range(draw(st.integers(1, 4))):
        lines = draw(_edit(lines))
    return "\n".join(lines)


def _parser_lines(text: str) -> list[str]:
    """The lines as the parser counts them (a BOM dropped, \\r\\n, \\r and \\n end a line)."""
    return re.split(r"\r\n|\r|\n", text.removeprefix("\ufeff"))


def _assert_diagnostics_inside(text: str, diagnostics: list[Diagnostic]) -> None:
    lines = _parser_lines(text)
    for d in diagnostics:
        span = d.span
        assert 1 <= span.line <= len(lines), (span, len(lines))
        assert 1 <= span.column <= len(lines[span.line - 1]) + 1, (span, lines[span.line - 1])
        assert (span.end_line, span.end_column) >= (span.line, span.column), span


def _compile_and_run(checked: CheckedFlow) -> None:
    """A flow the checker passes compiles, reads back from its JSON as the same graph, prepares
    (regexes, automata, templates) and runs."""
    graph = compile_flow(checked)
    stored = json.dumps(graph.to_dict())
    assert json.dumps(FlowGraph.from_dict(json.loads(stored)).to_dict()) == stored
    program = Program(graph)
    now = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    message = {"text": "I was overcharged on my card 12345678", "channel": "whatsapp"}
    result = run(
        program,
        FlowState(),
        Trigger(kind="message", text=message["text"]),
        Facts(now=now, message=message, customer={"name": "Ana"}),
    )
    assert result.path, "a run of a new conversation executes at least its first step"


@BOUNDED
@given(_edited_flow())
# A form feed is a line break to str.splitlines but not to the parser (found by CI).
@example('flow "F"\n\nstate start:\n    end "done"\n\x0c\t')
# A pattern after `matches` passed the checker and crashed when the program was built.
@example(
    'flow "F"\nserve messages on web account "gbank-web"\n\nstate start:\n'
    '    if message.text matches "([0-9]":\n        end "digits"\n    end "done"\n'
)
# A NUL before an indenting tab: the tab was expanded, its column not moved back (found by CI).
@example('\x00\t"\nflow "F"\nserve messages on web\n')
def test_edited_flows_parse_or_report_inside_the_file(text: str) -> None:
    result = parse_text(text, "edited.flow")
    if result.ok:
        formatted = format_text(text, "edited.flow")
        assert formatted.text is not None, [d.message for d in formatted.diagnostics]
        assert format_text(formatted.text, "edited.flow").text == formatted.text
        assert result.flow is not None
        checked = check(result.flow, CONTEXT)
        _assert_diagnostics_inside(text, list(checked.diagnostics))
        if checked.checked is not None:
            _compile_and_run(checked.checked)
        return
    assert result.diagnostics
    _assert_diagnostics_inside(text, list(result.diagnostics))


def test_a_nul_before_a_tab_leaves_the_columns_as_written() -> None:
    result = parse_text('\x00\t"\nflow "F"\n', "edited.flow")
    unclosed = [d for d in result.diagnostics if d.code == "FL002"]
    assert [(d.span.line, d.span.column, d.span.end_column) for d in unclosed] == [(1, 3, 4)]


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_raise(data: bytes) -> None:
    result = parse_bytes(data, "random.flow")
    assert result.ok or result.diagnostics


# ---------------------------------------------------------------- (b) generated valid flows

_NAMES = st.sampled_from(["a", "b", "tries", "account_number", "x1", "_tmp", "crm"])
_OUTCOMES = st.sampled_from(["success", "failure", "timeout", "error", "found", "done"])
_TEXT = st.text(
    st.characters(exclude_characters="\x00\r", exclude_categories=["Cs"]), max_size=12
) | st.sampled_from(['say "hi"', "C:\\temp", "\\d+", "a\nb", "tab\there", "#hash", "日本"])
_DURATION = st.integers(0, 10**7).map(lambda s: timedelta(seconds=s))
_SMALL = st.integers(0, 999)


def _number() -> st.SearchStrategy[ast.Literal]:
    whole = _SMALL.map(lambda n: ast.Literal(SPAN, "number", n, str(n)))
    decimal = st.tuples(_SMALL, st.integers(0, 99)).map(
        lambda p: ast.Literal(SPAN, "number", float(f"{p[0]}.{p[1]}"), f"{p[0]}.{p[1]}")
    )
    return whole | decimal


_LITERAL = st.one_of(
    _TEXT.map(lambda t: ast.Literal(SPAN, "text", t)),
    _number(),
    _DURATION.map(lambda d: ast.Literal(SPAN, "duration", d)),
    st.booleans().map(lambda b: ast.Literal(SPAN, "boolean", b)),
    st.just(ast.Literal(SPAN, "notset", None)),
)
_PATH = st.lists(
    _NAMES
    | st.sampled_from(["window", "conversation", "customer", "data", "timeout", "participant"]),
    min_size=1,
    max_size=3,
).map(lambda parts: ast.Path(SPAN, tuple(parts)))


_STORED = st.builds(
    ast.StoredData, st.just(SPAN), st.sampled_from(["participant", "conversation"]), _TEXT
)
_FIELDS = st.lists(
    st.sampled_from(["hour", "date", "weekday", "participant", "data", "queue"]) | _NAMES,
    min_size=1,
    max_size=3,
).map(tuple)


_CODES = st.lists(st.sampled_from(["en", "es", "ja", "fr", "EN", 'x"y']), min_size=1, max_size=3)
_DETECT_OPTION = st.one_of(
    _CODES.map(lambda c: ast.DetectOption(SPAN, "among", tuple(c), (SPAN,) * len(c))),
    _CODES.map(lambda c: ast.DetectOption(SPAN, "fallback", (c[0],), (SPAN,))),
    _number().map(lambda n: ast.DetectOption(SPAN, "confidence", (n.source,), (SPAN,))),
)


def _extend(inner: st.SearchStrategy[ast.Expr]) -> st.SearchStrategy[ast.Expr]:
    items = st.lists(inner, max_size=3).map(tuple)
    call = st.builds(ast.Call, st.just(SPAN), _NAMES, items)
    detect_options = st.lists(_DETECT_OPTION, max_size=3).map(tuple)
    return st.one_of(
        call,
        st.builds(ast.Detect, st.just(SPAN), inner, detect_options),
        st.builds(ast.Member, st.just(SPAN), call, _FIELDS),
        st.builds(ast.ListExpr, st.just(SPAN), items),
        st.builds(ast.Unary, st.just(SPAN), st.sampled_from(["not", "-"]), inner),
        st.builds(
            ast.Binary,
            st.just(SPAN),
            st.sampled_from(["or", "and", "==", "!=", "<", ">=", "contains", "+", "-", "*", "/"]),
            inner,
            inner,
        ),
        st.builds(ast.Binary, st.just(SPAN), st.just("in"), inner, items.map(_as_list)),
        st.builds(ast.IsSet, st.just(SPAN), inner, st.booleans()),
        st.builds(ast.Matches, st.just(SPAN), inner, _TEXT, st.just(SPAN)),
    )


def _as_list(items: tuple[ast.Expr, ...]) -> ast.Expr:
    return ast.ListExpr(SPAN, items)


EXPR: st.SearchStrategy[ast.Expr] = st.recursive(_LITERAL | _PATH | _STORED, _extend, max_leaves=8)
_REF = st.builds(ast.NameRef, st.just(SPAN), _TEXT, st.just(False)) | st.builds(
    ast.NameRef, st.just(SPAN), _NAMES, st.just(True)
)
_DOTTED = st.lists(_NAMES, min_size=2, max_size=3).map(
    lambda parts: ast.NameRef(SPAN, ".".join(parts), False, ast.Path(SPAN, tuple(parts)))
)
_BRACKETED = EXPR.filter(lambda e: not (isinstance(e, ast.Path) and len(e.parts) > 1)).map(
    lambda e: ast.NameRef(SPAN, "", False, e)
)
_ROUTE_TARGET = _REF | _DOTTED | _BRACKETED  # a routing target: a name, or one named by data
# a routing step: `prefer agents where ...` / `then agents where ... [for d]`, `then any agent`
_AGENT_STEP = st.builds(
    ast.AgentTarget, st.just(SPAN), EXPR, st.none() | _DURATION, st.booleans()
) | st.builds(ast.AgentTarget, st.just(SPAN), st.none(), st.none(), st.just(True))
_ARGS = st.lists(st.builds(ast.Arg, st.just(SPAN), _NAMES, EXPR), max_size=2).map(tuple)
_OPT_INT = st.none() | _SMALL
_OPT_DURATION = st.none() | _DURATION
_CHOICES = st.none() | st.builds(
    ast.Choices,
    st.just(SPAN),
    st.sampled_from(["quick_replies", "buttons"]),
    st.lists(_TEXT, min_size=1, max_size=3).map(tuple),
)
_TEXT_CONTENT = st.builds(ast.TextContent, st.just(SPAN), _TEXT, _CHOICES)
_COORDINATE = st.floats(-180, 180, allow_nan=False, allow_infinity=False)
_CONTENT = st.one_of(
    _TEXT_CONTENT,
    st.builds(ast.TemplateContent, st.just(SPAN), _REF, _ARGS),
    st.builds(
        ast.MediaContent,
        st.just(SPAN),
        st.sampled_from(["image", "video", "audio", "file", "sticker", "link"]),
        _TEXT,
        st.none() | _TEXT,
    ),
    st.builds(ast.LocationContent, st.just(SPAN), _COORDINATE, _COORDINATE),
)
_GUARD = st.none() | st.one_of(
    st.builds(ast.WindowGuard, st.just(SPAN), st.just("template"), _REF, _ARGS),
    st.builds(ast.WindowGuard, st.just(SPAN), st.sampled_from(["skip", "record"])),
)
_SIMPLE: st.SearchStrategy[ast.Statement] = st.one_of(
    st.builds(
        ast.Reply,
        st.just(SPAN),
        _CONTENT,
        st.sampled_from(["default", "privately", "publicly"]),
        _GUARD,
    ),
    st.builds(ast.SetVariable, st.just(SPAN), _NAMES, st.just(SPAN), EXPR),
    st.builds(ast.SetPriority, st.just(SPAN), EXPR),
    st.builds(ast.SetLanguage, st.just(SPAN), EXPR),
    st.builds(
        ast.SetData, st.just(SPAN), st.sampled_from(["participant", "conversation"]), _TEXT, EXPR
    ),
    st.builds(ast.AddSkill, st.just(SPAN), _ROUTE_TARGET, _OPT_INT),
    st.builds(ast.RemoveSkill, st.just(SPAN), _REF),
    st.builds(ast.MarkNotActionable, st.just(SPAN), st.none() | _TEXT),
    st.builds(ast.LinkCustomer, st.just(SPAN), _TEXT, EXPR, st.none() | _NAMES),
    st.builds(ast.GoToState, st.just(SPAN), _NAMES, st.just(SPAN)),
    st.builds(ast.OutcomeStmt, st.just(SPAN), _NAMES),
    st.builds(ast.End, st.just(SPAN), st.none() | _TEXT),
    st.just(ast.Break(SPAN)),
    st.builds(ast.Log, st.just(SPAN), _TEXT),
    st.builds(ast.CallTask, st.just(SPAN), _NAMES, st.just(SPAN)),
    st.builds(
        ast.Recognize,
        st.just(SPAN),
        st.lists(st.sampled_from(["platform id", "phone"]) | _TEXT, min_size=1, max_size=3).map(
            tuple
        ),
    ),
    st.builds(ast.RouteAgent, st.just(SPAN), st.none() | _ROUTE_TARGET, _OPT_DURATION),
    st.builds(ast.Milestone, st.just(SPAN), _TEXT),
    st.builds(ast.TransferFlow, st.just(SPAN), _TEXT, st.just(SPAN)),
)
_PERCENT = st.integers(0, 100).map(float) | st.integers(0, 9999).map(lambda n: n / 100)


def _compound(block: st.SearchStrategy[ast.Block]) -> st.SearchStrategy[ast.Statement]:
    branches = st.lists(
        st.builds(ast.OutcomeBranch, st.just(SPAN), _OUTCOMES, block), min_size=1, max_size=3
    ).map(tuple)
    case_values = st.lists(_LITERAL, min_size=1, max_size=3).map(tuple)
    patterns = st.lists(
        st.builds(ast.Pattern, st.just(SPAN), st.sampled_from(["keyword", "regex"]), _TEXT),
        min_size=1,
        max_size=3,
    ).map(tuple)
    return st.one_of(
        st.builds(
            ast.If,
            st.just(SPAN),
            st.lists(
                st.builds(ast.IfBranch, st.just(SPAN), EXPR, block), min_size=1, max_size=3
            ).map(tuple),
            st.none() | block,
        ),
        st.builds(
            ast.Switch,
            st.just(SPAN),
            EXPR,
            st.lists(
                st.builds(ast.Case, st.just(SPAN), case_values, block), min_size=1, max_size=2
            ).map(tuple),
            st.none() | block,
        ),
        st.builds(
            ast.Match,
            st.just(SPAN),
            st.booleans(),
            st.none() | EXPR,
            st.lists(
                st.builds(ast.When, st.just(SPAN), patterns, block), min_size=1, max_size=2
            ).map(tuple),
            st.none() | block,
        ),
        st.builds(ast.Repeat, st.just(SPAN), _SMALL, block),
        st.builds(ast.While, st.just(SPAN), EXPR, _SMALL, block),
        st.builds(
            ast.Ask, st.just(SPAN), _TEXT_CONTENT, _NAMES, st.just(SPAN), _OPT_DURATION, branches
        ),
        st.builds(
            ast.Recognize,
            st.just(SPAN),
            st.lists(st.sampled_from(["platform id", "phone"]), min_size=1).map(tuple),
            branches,
        ),
        st.builds(
            ast.RouteQueue,
            st.just(SPAN),
            _ROUTE_TARGET,
            st.lists(
                st.builds(ast.SkillRequirement, st.just(SPAN), _ROUTE_TARGET, _OPT_INT), max_size=2
            ).map(tuple),
            st.none() | _ROUTE_TARGET,
            st.none() | EXPR,
            st.lists(
                st.builds(ast.PreferredAgent, st.just(SPAN), _ROUTE_TARGET, _OPT_INT), max_size=2
            ).map(tuple),
            st.booleans(),
            _OPT_DURATION,
            st.just(()) | branches,
            agent_steps=st.lists(_AGENT_STEP, max_size=3).map(tuple),
        ),
        st.builds(
            ast.RouteAgent, st.just(SPAN), st.none() | _ROUTE_TARGET, _OPT_DURATION, branches
        ),
        st.builds(ast.BotHandoff, st.just(SPAN), _REF, _OPT_DURATION, branches),
        st.builds(
            ast.DataAction, st.just(SPAN), _REF, _ARGS, st.none() | _NAMES, _OPT_DURATION, branches
        ),
        st.builds(ast.CallTask, st.just(SPAN), _NAMES, st.just(SPAN), branches),
        st.builds(ast.CheckSchedule, st.just(SPAN), _REF, branches),
        st.builds(
            ast.Split,
            st.just(SPAN),
            st.none() | _TEXT,
            st.lists(
                st.builds(ast.SplitBranch, st.just(SPAN), _PERCENT, _NAMES, block),
                min_size=1,
                max_size=3,
            ).map(tuple),
        ),
        st.builds(
            ast.Survey,
            st.just(SPAN),
            _TEXT,
            _OPT_DURATION,
            st.lists(_QUESTION, min_size=1, max_size=3).map(tuple),
            st.just(()) | branches,
        ),
    )


_QUESTION = st.one_of(
    st.builds(
        ast.SurveyQuestion,
        st.just(SPAN),
        st.just("rating"),
        _TEXT_CONTENT,
        _NAMES,
        st.just(SPAN),
        _SMALL,
        _SMALL,
        st.none() | _TEXT,
    ),
    st.builds(
        ast.SurveyQuestion, st.just(SPAN), st.just("comment"), _TEXT_CONTENT, _NAMES, st.just(SPAN)
    ),
)


BLOCK: st.SearchStrategy[ast.Block] = st.recursive(
    st.lists(_SIMPLE, min_size=1, max_size=3).map(tuple),
    lambda inner: st.lists(_SIMPLE | _compound(inner), min_size=1, max_size=3).map(tuple),
    max_leaves=6,
)
_TARGET = st.builds(ast.Target, st.just(SPAN), _NAMES) | st.builds(
    ast.Target,
    st.just(SPAN),
    _NAMES,
    st.sampled_from(["account", "handle", "page", "number"]),
    _TEXT,
)
_DECLARATION: st.SearchStrategy[ast.Declaration] = st.one_of(
    st.builds(ast.Use, st.just(SPAN), _TEXT, st.just(SPAN)),
    st.builds(ast.Description, st.just(SPAN), _TEXT),
    st.builds(
        ast.Serve,
        st.just(SPAN),
        st.lists(st.sampled_from(["messages", "posts", "comments", "mentions"]), min_size=1).map(
            tuple
        ),
        st.lists(_TARGET, min_size=1, max_size=3).map(tuple),
    ),
    st.builds(ast.Threading, st.just(SPAN), _DURATION)
    | st.builds(ast.Threading, st.just(SPAN), st.none(), _NAMES),
    st.builds(ast.Param, st.just(SPAN), _NAMES, _NAMES, st.just(SPAN), _LITERAL),
    st.builds(ast.VarDecl, st.just(SPAN), _NAMES, _NAMES, st.just(SPAN), st.none() | EXPR),
    st.builds(ast.OnError, st.just(SPAN), BLOCK),
    st.builds(ast.OnEvent, st.just(SPAN), st.sampled_from(ast.EVENT_NAMES), BLOCK),
    st.builds(
        ast.InQueue,
        st.just(SPAN),
        st.none() | _TEXT,
        st.none(),
        st.lists(
            st.builds(
                ast.QueueActivity,
                st.just(SPAN),
                st.sampled_from(["every", "after"]),
                _DURATION,
                BLOCK,
            )
            | st.builds(ast.QueueActivity, st.just(SPAN), st.just("writes"), st.none(), BLOCK),
            min_size=1,
            max_size=3,
        ).map(tuple),
    ),
    st.builds(ast.Task, st.just(SPAN), _NAMES, st.lists(_NAMES, max_size=3).map(tuple), BLOCK),
    st.builds(ast.State, st.just(SPAN), _NAMES, BLOCK),
)
FLOW = st.builds(
    ast.Flow,
    st.just(SPAN),
    _TEXT,
    st.lists(_DECLARATION, max_size=5).map(tuple),
    st.just(()),
    st.booleans(),  # a module file (`module "Name"`) or a flow
)


@BOUNDED
@given(FLOW)
def test_generated_flows_round_trip_through_the_formatter(flow: ast.Flow) -> None:
    text = format_flow(flow, ())
    parsed = parse_text(text, "gen.flow")
    assert parsed.ok, ([d.message for d in parsed.diagnostics], text)
    assert same_structure(parsed.flow, flow), text
    assert format_text(text, "gen.flow").text == text


@st.composite
def _commented(draw: st.DrawFn) -> str:
    """A generated flow's text with comments added on their own lines and after code."""
    lines = format_flow(draw(FLOW), ()).rstrip("\n").split("\n")
    for n in range(draw(st.integers(1, 6))):
        i = draw(st.integers(0, len(lines)))
        if draw(st.booleans()) and i < len(lines) and lines[i].strip():
            lines[i] += " " * draw(st.integers(0, 3)) + f"# after {n}"
        else:
            lines.insert(i, " " * draw(st.integers(0, 12)) + f"# own {n}")
        if draw(st.booleans()):
            lines.insert(draw(st.integers(0, len(lines))), "")
    return "\n".join(lines) + "\n"


@BOUNDED
@given(_commented())
def test_comments_survive_and_formatting_is_idempotent(text: str) -> None:
    before = parse_text(text, "c.flow")
    assert before.ok, [d.message for d in before.diagnostics]
    once = format_text(text, "c.flow").text
    assert once is not None
    after = parse_text(once, "c.flow")
    assert sorted(c.text for c in after.comments) == sorted(c.text for c in before.comments)
    assert format_text(once, "c.flow").text == once


# ---------------------------------------------------------------- spans


def test_spans_end_at_the_last_token() -> None:
    text = (
        'flow "S"\n'
        "param p: number = 1   # note\n"
        "\n"
        "state s:\n"
        "    if x:\n"
        '        reply "a"\n'
        "\n"
        "    # comment\n"
        "    end\n"
    )
    flow = parse_text(text, "s.flow").flow
    assert flow is not None
    param, state = flow.declarations
    assert isinstance(state, ast.State)
    assert (param.span.line, param.span.end_line, param.span.end_column) == (2, 2, 20)
    if_stmt, end = state.body
    assert (if_stmt.span.line, if_stmt.span.end_line, if_stmt.span.end_column) == (5, 6, 18)
    assert (state.span.line, state.span.end_line, state.span.end_column) == (4, 9, 8)
    assert (end.span.line, end.span.column) == (9, 5)


def test_columns_after_a_tab_in_indentation_are_those_of_the_line_as_written() -> None:
    text = 'flow "T"\nstate s:\n    call task t:\n\t\t\t\ton ok\n        end\n'
    codes = {d.code: d.span for d in parse_text(text, "t.flow").diagnostics}
    assert (codes["FL003"].line, codes["FL003"].column) == (4, 1)
    assert (codes["FL010"].line, codes["FL010"].column) == (4, len("\t\t\t\ton ok") + 1)
