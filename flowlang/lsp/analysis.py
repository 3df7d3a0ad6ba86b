"""What the language server knows of one flow document: its diagnostics (those `flowlang
validate` reports, against the deployment file it would find), the last AST that parsed, and the
deployment; and the answers built from them (completion, hover, definitions, symbols, fixes).

Positions here are the flowlang ones (1-based lines, columns in characters); `server.py` turns
them into the protocol's (0-based, UTF-16 code units).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from flowlang import codes
from flowlang.diagnostics import Diagnostic, SourceFile, Span, suggested_name, warning
from flowlang.language import ast
from flowlang.language.context import FlowContext
from flowlang.language.modules import resolve_uses
from flowlang.language.parser import parse_text
from flowlang.language.walk import walk
from flowlang.workspace import (
    Workspace,
    check_parsed,
    default_channels,
    find_deployment,
    load_context,
    parse_file,
)

if TYPE_CHECKING:
    from flowlang.config import Deployment


@dataclass
class LoadedDeployment:
    """A deployment file as loaded for the checker, kept until the file changes."""

    path: Path
    stamp: float
    context: FlowContext
    deployment: Deployment | None
    diagnostics: list[Diagnostic]
    source: SourceFile | None


class DeploymentCache:
    """Deployment files by path, reloaded when their modification time changes."""

    def __init__(self) -> None:
        self._loaded: dict[Path, LoadedDeployment] = {}

    def get(self, path: Path) -> LoadedDeployment:
        stamp = path.stat().st_mtime if path.exists() else -1.0
        known = self._loaded.get(path)
        if known is not None and known.stamp == stamp:
            return known
        ws = Workspace()
        context = load_context(path, ws)
        loaded = LoadedDeployment(
            path, stamp, context, ws.deployment, ws.diagnostics, ws.sources.get(str(path))
        )
        self._loaded[path] = loaded
        return loaded

    def forget(self, path: Path) -> None:
        self._loaded.pop(path, None)


@dataclass
class Analysis:
    """One version of a flow document, checked."""

    name: str
    text: str
    diagnostics: list[Diagnostic]
    flow: ast.Flow | None
    """This version's AST, or the last version's that parsed (for completion while typing)."""
    deployment: LoadedDeployment | None
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lines = SourceFile(self.name, self.text)._lines


def analyse(
    text: str,
    name: str,
    deployments: DeploymentCache,
    previous: Analysis | None = None,
    deployment_path: Path | None = None,
    root: Path | None = None,
) -> Analysis:
    """Parse and check `text` (the flow file `name`) as `flowlang validate` does: against the
    deployment file `find_deployment` finds beside it, or in `root` (the folder the editor
    opened; default the working directory)."""
    path = deployment_path or find_deployment([Path(name)], cwd=root)
    loaded = deployments.get(path) if path is not None else None
    parsed = parse_text(text, name)
    diagnostics = list(parsed.diagnostics)
    if loaded is None:
        diagnostics.append(
            warning(
                codes.NO_DEPLOYMENT,
                "no deployment file found: queue, skill, template and other names are not checked",
                Span.whole_file(name),
                hint="put a deployment.yaml beside the flow (or in the folder the editor opened)",
            )
        )
        context = FlowContext(channels=default_channels())
    else:
        context = loaded.context
    if parsed.flow is not None and parsed.flow.uses:  # the modules it uses, read from disk
        resolved = resolve_uses(parsed.flow, name, parse_file)
        diagnostics.extend(d for d in resolved.diagnostics if d.span.file == name)
        parsed = dataclasses.replace(parsed, flow=resolved.flow)
    found = check_parsed(parsed, context)[0]
    diagnostics.extend(d for d in found if d.span.file == name)  # a module's: in its own file
    flow = parsed.flow or parsed.partial
    if flow is None and previous is not None:
        flow = previous.flow
    diagnostics.sort(key=lambda d: (d.span.line, d.span.column, d.code))
    return Analysis(name, text, diagnostics, flow, loaded)


# ---------------------------------------------------------------- names in the flow


def states(flow: ast.Flow | None) -> list[ast.State]:
    return [d for d in flow.declarations if isinstance(d, ast.State)] if flow else []


def tasks(flow: ast.Flow | None) -> list[ast.Task]:
    return [d for d in flow.declarations if isinstance(d, ast.Task)] if flow else []


def params(flow: ast.Flow | None) -> list[ast.Param]:
    return [d for d in flow.declarations if isinstance(d, ast.Param)] if flow else []


def variables(flow: ast.Flow | None) -> list[tuple[str, str, Span]]:
    """Every variable the flow declares (`var`) or sets and asks into: name, type, where."""
    if flow is None:
        return []
    found: dict[str, tuple[str, str, Span]] = {}
    for decl in flow.declarations:
        if isinstance(decl, ast.VarDecl):
            found.setdefault(decl.name, (decl.name, decl.type_name, decl.span))
    for block in _blocks(flow):
        for stmt in walk(block):
            if isinstance(stmt, ast.SetVariable):
                found.setdefault(stmt.name, (stmt.name, "", stmt.name_span))
            elif isinstance(stmt, ast.Ask):
                found.setdefault(stmt.into, (stmt.into, "text", stmt.into_span))
            elif isinstance(stmt, ast.DataAction) and stmt.into:
                found.setdefault(stmt.into, (stmt.into, "record", stmt.span))
    return list(found.values())


def _blocks(flow: ast.Flow) -> Iterator[ast.Block]:
    for decl in flow.declarations:
        if isinstance(decl, ast.State | ast.Task | ast.OnError):
            yield decl.body


def name_span(decl: ast.State | ast.Task | ast.Param, lines: list[str]) -> Span:
    """The span of the declared name itself on its line (`state routing:` -> `routing`)."""
    line = lines[decl.span.line - 1] if decl.span.line <= len(lines) else ""
    found = re.search(rf"\b{re.escape(decl.name)}\b", line[decl.span.column - 1 :])
    if found is None:
        return decl.span
    start = decl.span.column + found.start()
    return Span(decl.span.file, decl.span.line, start, decl.span.line, start + len(decl.name))


# ---------------------------------------------------------------- what is under the cursor


WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"?')


def token_at(line: str, column: int) -> tuple[str, int, int] | None:
    """The word or quoted text under 1-based `column` of `line`: (text, start, end) with 1-based
    start and exclusive end columns; a quoted text is returned without its quotes."""
    index = column - 1
    for match in STRING.finditer(line):
        if match.start() < index <= match.end() or (index == match.start() and index < len(line)):
            closed = match.group().endswith('"') and len(match.group()) > 1
            inner = match.group()[1:-1] if closed else match.group()[1:]
            return inner, match.start() + 1, match.end() + 1
    for match in WORD.finditer(line):
        if match.start() <= index <= match.end():
            return match.group(), match.start() + 1, match.end() + 1
    return None


def word_at(line: str, column: int) -> tuple[str, int, int] | None:
    """The name under 1-based `column` (also inside a quoted text: `{{ greeting }}`)."""
    index = column - 1
    for match in WORD.finditer(line):
        if match.start() <= index <= match.end():
            return match.group(), match.start() + 1, match.end() + 1
    return None


def deployment_kind_before(prefix: str) -> str | None:
    """Which deployment name a quoted text after `prefix` (the line up to it) names."""
    for pattern, kind in _DEPLOYMENT_CONTEXTS:
        if re.search(pattern + r'\s*"?[^"]*$', prefix):
            return kind
    return None


_DEPLOYMENT_CONTEXTS: list[tuple[str, str]] = [
    (r"\broute\s+to\s+queue", "queues"),
    (r"\b(?:add|remove)\s+skill", "skills"),
    (r"^\s*skill", "skills"),
    (r"\btemplate", "templates"),
    (r"\bhand\s+off\s+to\s+bot", "bots"),
    (r"\bcheck\s+schedule", "schedules"),
    (r"\bcall\s+data\s+action", "data_actions"),
    (r"^\s*language", "languages"),
    (r"\bset\s+language\s+to", "languages"),
    (r"\b(?:route\s+to|prefer)\s+agent", "agents"),
]


def deployment_names(loaded: LoadedDeployment | None, kind: str) -> list[str]:
    if loaded is None:
        return []
    ctx = loaded.context
    names: dict[str, object] = {
        "queues": ctx.queues,
        "skills": ctx.skills,
        "templates": ctx.templates,
        "bots": ctx.bots,
        "schedules": ctx.schedules,
        "data_actions": ctx.data_actions,
        "languages": ctx.languages,
        "agents": ctx.agents,
    }
    found = names.get(kind, ())
    return sorted(str(n) for n in found)  # type: ignore[attr-defined]


def deployment_span(loaded: LoadedDeployment | None, kind: str, name: str) -> Span | None:
    """Where the deployment file declares `name` among its `kind` (its entry, or its item in
    a list such as `skills:`)."""
    if loaded is None or loaded.deployment is None:
        return None
    entries = getattr(loaded.deployment, kind, None)
    if isinstance(entries, list):
        if name not in entries:
            return None
        return loaded.deployment.span_of((kind, entries.index(name)))
    if not isinstance(entries, dict) or name not in entries:
        return None
    return loaded.deployment.span_of((kind, name))


# ---------------------------------------------------------------- quick fixes


def suggestion(diagnostic: Diagnostic) -> str | None:
    """The name a diagnostic's hint offers instead of the one written, if it offers one."""
    return suggested_name(diagnostic.hint)


def replacement(diagnostic: Diagnostic, lines: list[str], name: str) -> str | None:
    """The text that replaces the diagnostic's span to apply `name`: quoted when the span is a
    quoted text. None when the span is not one name on one line."""
    span = diagnostic.span
    if span.line != span.end_line or span.line > len(lines):
        return None
    written = lines[span.line - 1][span.column - 1 : span.end_column - 1]
    if written.startswith('"'):
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if WORD.fullmatch(written) is None or WORD.fullmatch(name) is None:
        return None
    return name


def declaration_extent(decl: ast.State | ast.Task, lines: list[str]) -> Span:
    """A state or task from its header to its last indented line."""
    last = decl.span.line
    for number in range(decl.span.line + 1, len(lines) + 1):
        text = lines[number - 1]
        if text.strip() and not text.startswith((" ", "\t")) and not text.lstrip().startswith("#"):
            break
        if text.strip():
            last = number
    return Span(decl.span.file, decl.span.line, 1, last, len(lines[last - 1]) + 1)


# ---------------------------------------------------------------- completion


@dataclass(frozen=True)
class Completion:
    """One completion item, independent of the protocol."""

    label: str
    kind: int
    """An `lsprotocol.types.CompletionItemKind` value."""
    detail: str = ""
    insert: str | None = None
    snippet: bool = False
    doc: str = ""
    filter: str = ""


# CompletionItemKind values (lsprotocol's numbering; kept numeric so this module needs no
# protocol types)
KEYWORD, VARIABLE, FUNCTION, CLASS, VALUE, FIELD, CONSTANT, ENUM_MEMBER = 14, 6, 3, 7, 12, 5, 21, 20


def complete(
    result: Analysis, line: str, column: int, before: list[str] | None = None
) -> list[Completion]:
    """What may be written at 1-based `column` of `line` (the lines above are `before`)."""
    from flowlang.lsp import knowledge

    prefix = line[: column - 1]
    flow = result.flow
    if _in_string(prefix):
        opening = prefix.rfind('"')
        inside = prefix[opening + 1 :]
        if "{{" in inside and "}}" not in inside[inside.rfind("{{") :]:
            return _expression_names(result)
        kind = deployment_kind_before(prefix[:opening])
        if kind is None:
            return []
        return [
            Completion(name, VALUE, _DEPLOYMENT_LABELS[kind], name)
            for name in deployment_names(result.deployment, kind)
        ]
    words = prefix.rstrip()
    if re.search(r"\bgo\s+to\s+state\s+\w*$", prefix):
        return [Completion(s.name, CLASS, "state") for s in states(flow)]
    if re.search(r"\bcall\s+task\s+\w*$", prefix):
        return [Completion(t.name, FUNCTION, "task") for t in tasks(flow)]
    kind = deployment_kind_before(prefix)
    if kind is not None and re.search(r"\s\w*$", prefix) and not words.endswith(":"):
        return [
            Completion(name, VALUE, _DEPLOYMENT_LABELS[kind], quote(name), filter=quote(name))
            for name in deployment_names(result.deployment, kind)
        ]
    stripped = prefix.lstrip()
    if re.fullmatch(r"[A-Za-z_]*", stripped):
        if prefix == stripped:  # at the margin: a declaration
            return [
                Completion(k.label, KEYWORD, "declaration", k.snippet, True, k.doc)
                for k in knowledge.DECLARATIONS
            ]
        items = [
            Completion(k.label, KEYWORD, "statement", k.snippet, True, k.doc)
            for k in knowledge.STATEMENTS
        ]
        if stripped == "" or "on".startswith(stripped):
            opener = _opener_above(before or [], len(prefix) - len(stripped))
            items += [
                Completion(f"on {o}", ENUM_MEMBER, "outcome", f"on {o}:\n    ${{1:pass}}", True)
                for o in knowledge.outcomes_of_opener(opener)
            ]
        return items
    if re.search(r"^\s*on\s+\w*$", prefix):
        opener = _opener_above(before or [], len(prefix) - len(stripped))
        return [Completion(o, ENUM_MEMBER, "outcome") for o in knowledge.outcomes_of_opener(opener)]
    return _expression_names(result)


_DEPLOYMENT_LABELS = {
    "queues": "queue",
    "skills": "skill",
    "templates": "template",
    "bots": "bot",
    "schedules": "schedule",
    "data_actions": "data action",
    "languages": "language",
    "agents": "agent",
}


def quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _in_string(prefix: str) -> bool:
    count, index = 0, 0
    while index < len(prefix):
        if prefix[index] == "\\":
            index += 2
            continue
        if prefix[index] == '"':
            count += 1
        elif prefix[index] == "#" and count % 2 == 0:
            return False
        index += 1
    return count % 2 == 1


def _opener_above(before: list[str], indent: int) -> str:
    """The nearest line above that is indented less than `indent`: the statement whose block
    the cursor is in (for `on` outcomes, the one whose outcomes these are)."""
    for text in reversed(before):
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        if len(text) - len(text.lstrip()) < indent:
            return text
    return ""


def _expression_names(result: Analysis) -> list[Completion]:
    from flowlang.lsp import knowledge

    items = [
        Completion(name, VARIABLE, kind or "variable") for name, kind, _ in variables(result.flow)
    ]
    items += [Completion(p.name, CONSTANT, f"param: {p.type_name}") for p in params(result.flow)]
    items += [
        Completion(name, FIELD if "." in name else FUNCTION, kind)
        for name, kind in knowledge.builtin_names()
    ]
    return items


# ---------------------------------------------------------------- hover and definition


def _deployment_name_at(result: Analysis, line: str, column: int) -> tuple[str, str, Span] | None:
    token = token_at(line, column)
    if token is None:
        return None
    text, start, end = token
    if start > len(line) or line[start - 1] != '"':
        return None
    kind = deployment_kind_before(line[: start - 1])
    if kind is None:
        return None
    return kind, text, Span(result.name, 0, start, 0, end)


def hover(result: Analysis, line_no: int, column: int) -> tuple[str, Span] | None:
    """Markdown for what is under the cursor, and the span it is about."""
    from flowlang.lsp import knowledge

    if line_no > len(result.lines):
        return None
    line = result.lines[line_no - 1]
    named = _deployment_name_at(result, line, column)
    if named is not None:
        kind, name, at = named
        span = Span(result.name, line_no, at.column, line_no, at.end_column)
        deployment = result.deployment.deployment if result.deployment else None
        text = knowledge.describe_entry(deployment, kind, name) if deployment else None
        if text is None:
            label = _DEPLOYMENT_LABELS[kind]
            text = f"**{label}** `{name}`: not declared in the deployment file"
        return text, span
    token = word_at(line, column)
    if token is None:
        return None
    word, start, end = token
    span = Span(result.name, line_no, start, line_no, end)
    declared = _declared(result, word)
    if declared is not None:
        return declared[0], span
    phrase = _statement_phrase(line)
    if phrase is not None and line.lstrip().startswith(word):
        return f"**{phrase}**: {knowledge.KEYWORD_DOCS[phrase]}", span
    return None


def _statement_phrase(line: str) -> str | None:
    from flowlang.lsp import knowledge

    text = " ".join(line.split())
    best = None
    for label in knowledge.KEYWORD_DOCS:
        if (text == label or text.startswith(label + " ") or text.startswith(label + ":")) and (
            best is None or len(label) > len(best)
        ):
            best = label
    return best


def _declared(result: Analysis, word: str) -> tuple[str, Span] | None:
    for state in states(result.flow):
        if state.name == word:
            return f"**state** `{word}` (line {state.span.line})", name_span(state, result.lines)
    for task in tasks(result.flow):
        if task.name == word:
            outs = ", ".join(task.outcomes) or "none"
            if task.span.file != result.name:  # from a module the flow uses
                lines = SourceFile(task.span.file, Path(task.span.file).read_text("utf-8"))._lines
                where = f"{task.span.file} line {task.span.line}"
                return f"**task** `{word}` ({where}), outcomes: {outs}", name_span(task, lines)
            return (
                f"**task** `{word}` (line {task.span.line}), outcomes: {outs}",
                name_span(task, result.lines),
            )
    for param in params(result.flow):
        if param.name == word:
            return (
                f"**param** `{word}`: {param.type_name} (line {param.span.line})",
                name_span(param, result.lines),
            )
    for name, kind, span in variables(result.flow):
        if name == word:
            return f"**variable** `{word}`{': ' + kind if kind else ''} (line {span.line})", span
    return None


def definition(result: Analysis, line_no: int, column: int) -> Span | None:
    """Where the name under the cursor is declared: a state, task, param or variable of the
    flow, or a deployment entry in the deployment file."""
    if line_no > len(result.lines):
        return None
    line = result.lines[line_no - 1]
    named = _deployment_name_at(result, line, column)
    if named is not None:
        kind, name, _ = named
        return deployment_span(result.deployment, kind, name)
    token = word_at(line, column)
    if token is None:
        return None
    declared = _declared(result, token[0])
    return declared[1] if declared is not None else None
