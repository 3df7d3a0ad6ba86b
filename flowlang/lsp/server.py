"""`flowlang lsp`: the Language Server Protocol over stdio (pygls), for any editor.

Diagnostics on open and change (those of `flowlang validate`, against the deployment file it
would find), completion, hover, go to definition, document symbols, formatting and quick fixes
for did-you-mean hints. Each request works on the document's last `Analysis`.
"""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from flowlang import __version__
from flowlang.diagnostics import Diagnostic, Severity, Span
from flowlang.language import ast
from flowlang.language.formatter import format_text
from flowlang.lsp import analysis as an

_SEVERITY = {
    Severity.ERROR: types.DiagnosticSeverity.Error,
    Severity.WARNING: types.DiagnosticSeverity.Warning,
    Severity.NOTE: types.DiagnosticSeverity.Information,
}


class FlowServer(LanguageServer):
    """The language server: the analyses of the open flow documents and the deployment files."""

    def __init__(self) -> None:
        super().__init__(
            "flowlang", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Full
        )
        self.analyses: dict[str, an.Analysis] = {}
        self.deployments = an.DeploymentCache()

    # ------------------------------------------------------------ positions

    def to_range(self, span: Span, lines: list[str]) -> types.Range:
        codec = self.workspace.position_codec
        start = _clamp(lines, span.line, span.column)
        end = _clamp(lines, span.end_line, span.end_column)
        if (end.line, end.character) < (start.line, start.character):
            end = start
        return types.Range(
            start=codec.position_to_client_units(lines, start),
            end=codec.position_to_client_units(lines, end),
        )

    def from_position(self, lines: list[str], position: types.Position) -> tuple[int, int]:
        """A client position as a flowlang (line, column), both 1-based, columns in characters."""
        server = self.workspace.position_codec.position_from_client_units(lines, position)
        return server.line + 1, server.character + 1

    # ------------------------------------------------------------ analysis

    def analyse(self, uri: str) -> an.Analysis:
        document = self.workspace.get_text_document(uri)
        name = _display_name(uri)
        root = self.workspace.root_path
        result = an.analyse(
            document.source,
            name,
            self.deployments,
            self.analyses.get(uri),
            root=Path(root) if root else None,
        )
        self.analyses[uri] = result
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(
                uri=uri,
                version=document.version,
                diagnostics=[self.to_lsp(d, result) for d in result.diagnostics],
            )
        )
        if result.deployment is not None:
            self.publish_deployment(result.deployment, result)
        return result

    def publish_deployment(self, loaded: an.LoadedDeployment, result: an.Analysis) -> None:
        """The deployment file's own problems, on that file (its names are not checked in the
        flow while it has errors, as `validate` does)."""
        lines = loaded.source.text.split("\n") if loaded.source is not None else []
        uri = _uri_of(str(loaded.path), result)
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(
                uri=uri,
                diagnostics=[
                    types.Diagnostic(
                        range=self.to_range(d.span, lines),
                        message=d.message + (f"\nhelp: {d.hint}" if d.hint else ""),
                        severity=_SEVERITY[d.severity],
                        code=d.code,
                        source="flowlang",
                    )
                    for d in loaded.diagnostics
                    if d.span.file == str(loaded.path)
                ],
            )
        )

    def to_lsp(self, d: Diagnostic, result: an.Analysis) -> types.Diagnostic:
        message = d.message + (f" ({d.label})" if d.label else "")
        for note in d.notes:
            message += f"\nnote: {note}"
        if d.hint:
            message += f"\nhelp: {d.hint}"
        related = []
        for span, label in d.related:
            lines = result.lines if span.file == result.name else _file_lines(span.file)
            related.append(
                types.DiagnosticRelatedInformation(
                    location=types.Location(
                        uri=_uri_of(span.file, result), range=self.to_range(span, lines)
                    ),
                    message=label,
                )
            )
        return types.Diagnostic(
            range=self.to_range(d.span, result.lines),
            message=message,
            severity=_SEVERITY[d.severity],
            code=d.code,
            source="flowlang",
            related_information=related or None,
        )


def _clamp(lines: list[str], line: int, column: int) -> types.Position:
    row = min(max(line, 1), max(len(lines), 1)) - 1
    text = lines[row] if row < len(lines) else ""
    return types.Position(line=row, character=min(max(column - 1, 0), len(text)))


def _display_name(uri: str) -> str:
    path = to_fs_path(uri) or uri
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return path


def _uri_of(file: str, result: an.Analysis) -> str:
    return from_fs_path(str(Path(file).resolve())) or file


def _file_lines(file: str) -> list[str]:
    try:
        return Path(file).read_text("utf-8", errors="replace").split("\n")
    except OSError:
        return []


server = FlowServer()


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: FlowServer, params: types.DidOpenTextDocumentParams) -> None:
    if params.text_document.uri.endswith((".flow",)):
        ls.analyse(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: FlowServer, params: types.DidChangeTextDocumentParams) -> None:
    if params.text_document.uri.endswith(".flow"):
        ls.analyse(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: FlowServer, params: types.DidSaveTextDocumentParams) -> None:
    # a deployment file saved: check every open flow against it again
    if params.text_document.uri.endswith((".yaml", ".yml")):
        for uri in list(ls.analyses):
            ls.analyse(uri)
    elif params.text_document.uri.endswith(".flow"):
        ls.analyse(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: FlowServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.analyses.pop(params.text_document.uri, None)
    ls.text_document_publish_diagnostics(
        types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[])
    )


def _current(ls: FlowServer, uri: str) -> an.Analysis:
    return ls.analyses.get(uri) or ls.analyse(uri)


# ---------------------------------------------------------------- completion


@server.feature(
    types.TEXT_DOCUMENT_COMPLETION,
    types.CompletionOptions(trigger_characters=['"', " ", "."]),
)
def completion(ls: FlowServer, params: types.CompletionParams) -> types.CompletionList:
    result = _current(ls, params.text_document.uri)
    document = ls.workspace.get_text_document(params.text_document.uri)
    lines = document.source.split("\n")
    line_no, column = ls.from_position(lines, params.position)
    line = lines[line_no - 1] if line_no <= len(lines) else ""
    items = [
        types.CompletionItem(
            label=c.label,
            kind=c.kind,
            detail=c.detail,
            documentation=c.doc or None,
            insert_text=c.insert,
            insert_text_format=(
                types.InsertTextFormat.Snippet if c.snippet else types.InsertTextFormat.PlainText
            ),
            filter_text=c.filter or None,
        )
        for c in an.complete(result, line, column, lines[: line_no - 1])
    ]
    return types.CompletionList(is_incomplete=False, items=items)


# ---------------------------------------------------------------- hover


@server.feature(types.TEXT_DOCUMENT_HOVER)
def hover(ls: FlowServer, params: types.HoverParams) -> types.Hover | None:
    result = _current(ls, params.text_document.uri)
    line_no, column = ls.from_position(result.lines, params.position)
    found = an.hover(result, line_no, column)
    if found is None:
        return None
    text, span = found
    return types.Hover(
        contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text),
        range=ls.to_range(span, result.lines),
    )


# ---------------------------------------------------------------- go to definition


@server.feature(types.TEXT_DOCUMENT_DEFINITION)
def definition(ls: FlowServer, params: types.DefinitionParams) -> types.Location | None:
    result = _current(ls, params.text_document.uri)
    line_no, column = ls.from_position(result.lines, params.position)
    span = an.definition(result, line_no, column)
    if span is None:
        return None
    if span.file == result.name:
        return types.Location(uri=params.text_document.uri, range=ls.to_range(span, result.lines))
    return types.Location(
        uri=_uri_of(span.file, result), range=ls.to_range(span, _file_lines(span.file))
    )


# ---------------------------------------------------------------- symbols


@server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
def document_symbols(
    ls: FlowServer, params: types.DocumentSymbolParams
) -> list[types.DocumentSymbol]:
    result = _current(ls, params.text_document.uri)
    symbols = []
    declared: list[ast.State | ast.Task] = [*an.states(result.flow), *an.tasks(result.flow)]
    for decl in declared:
        name = an.name_span(decl, result.lines)
        whole = an.declaration_extent(decl, result.lines)
        is_state = isinstance(decl, ast.State)
        symbols.append(
            types.DocumentSymbol(
                name=decl.name,
                detail="state" if is_state else "task",
                kind=types.SymbolKind.Class if is_state else types.SymbolKind.Function,
                range=ls.to_range(whole, result.lines),
                selection_range=ls.to_range(name, result.lines),
            )
        )
    return symbols


# ---------------------------------------------------------------- formatting


@server.feature(types.TEXT_DOCUMENT_FORMATTING)
def formatting(ls: FlowServer, params: types.DocumentFormattingParams) -> list[types.TextEdit]:
    document = ls.workspace.get_text_document(params.text_document.uri)
    formatted = format_text(document.source, _display_name(params.text_document.uri))
    if formatted.text is None or formatted.text == document.source:
        return []  # a flow with syntax errors is left as it is (its errors are shown)
    lines = document.source.split("\n")
    end = types.Position(line=len(lines) - 1, character=0)
    end = ls.workspace.position_codec.position_to_client_units(
        lines, types.Position(line=len(lines) - 1, character=len(lines[-1]))
    )
    return [
        types.TextEdit(
            range=types.Range(start=types.Position(line=0, character=0), end=end),
            new_text=formatted.text,
        )
    ]


# ---------------------------------------------------------------- quick fixes


@server.feature(
    types.TEXT_DOCUMENT_CODE_ACTION,
    types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]),
)
def code_actions(ls: FlowServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    result = _current(ls, params.text_document.uri)
    wanted = params.range
    actions = []
    for d in result.diagnostics:
        rng = ls.to_range(d.span, result.lines)
        if (rng.end.line, rng.end.character) < (wanted.start.line, wanted.start.character) or (
            rng.start.line,
            rng.start.character,
        ) > (wanted.end.line, wanted.end.character):
            continue
        name = an.suggestion(d)
        new_text = an.replacement(d, result.lines, name) if name is not None else None
        if name is None or new_text is None:
            continue
        actions.append(
            types.CodeAction(
                title=f"Change to {new_text}",
                kind=types.CodeActionKind.QuickFix,
                diagnostics=[ls.to_lsp(d, result)],
                is_preferred=True,
                edit=types.WorkspaceEdit(
                    changes={
                        params.text_document.uri: [types.TextEdit(range=rng, new_text=new_text)]
                    }
                ),
            )
        )
    return actions


def run() -> None:
    """Serve the protocol on stdin/stdout until the client exits."""
    server.start_io()


__all__ = ["FlowServer", "run", "server"]
