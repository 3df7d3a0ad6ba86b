"""Flow text -> `ast.Flow`, or located diagnostics.

Reads raw bytes or text, screens out input the grammar cannot meaningfully see (bad encoding, NUL
bytes, tabs in indentation, empty or huge files), parses with the Lark LALR grammar in
`grammar.lark`, recovers from syntax errors line by line so that every syntax error of a file is
reported at once, and builds the typed AST with `_ToAst`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from typing import Any, ClassVar

from lark import (
    Lark,
    Token,
    Tree,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
)
from lark.exceptions import VisitError
from lark.indenter import Indenter

from flowlang import codes
from flowlang.diagnostics import (
    Diagnostic,
    SourceFile,
    Span,
    did_you_mean,
    error,
    source_lines,
    suggest,
)
from flowlang.errors import FlowError
from flowlang.language import ast, mistakes
from flowlang.language.builder import AstBuilder, BuildError

MAX_FLOW_BYTES = 1_000_000
MAX_SYNTAX_ERRORS = 25
INDENT_STEP = 4
"""A block is indented by exactly this many spaces more than the line that opens it."""


class _FlowIndenter(Indenter):
    NL_type = "_NL"
    OPEN_PAREN_types: ClassVar[list[str]] = ["LPAR", "LSQB"]
    CLOSE_PAREN_types: ClassVar[list[str]] = ["RPAR", "RSQB"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 4

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        # blocks indented by other than INDENT_STEP: (line, indent, expected), for FL025; the
        # block is still read as one (the formatter re-indents it)
        self.off_step: list[tuple[int, int, int]] = []
        tokens: Iterator[Token] = super().process(_words_apart(stream))  # type: ignore[no-untyped-call]
        return tokens

    def handle_NL(self, token: Token) -> Iterator[Token]:
        if self.paren_level > 0:
            return
        yield token
        last = token.rsplit("\n", 1)[1]
        indent_str = last.split("#", 1)[0] if "#" in last else last
        indent = len(indent_str)
        where = Token.new_borrow_pos(self.INDENT_type, indent_str, token)
        where.line = where.end_line = token.end_line
        where.column = 1
        where.end_column = indent + 1
        if indent > self.indent_level[-1]:
            if indent != self.indent_level[-1] + INDENT_STEP:
                self.off_step.append((where.line or 1, indent, self.indent_level[-1] + INDENT_STEP))
            self.indent_level.append(indent)
            yield where
            return
        while indent < self.indent_level[-1]:
            self.indent_level.pop()
            yield Token.new_borrow_pos(self.DEDENT_type, indent_str, where)
        if indent != self.indent_level[-1]:
            raise _BadDedent(where.line or 1, indent, self.indent_level[-1])


def _words_apart(stream: Iterator[Token]) -> Iterator[Token]:
    """The lexer's tokens, refusing two words with no space between them: where a name cannot
    come, the lexer would read `goto` as the keywords `go` `to` (and `routeto` as `route to`)."""
    previous: Token | None = None
    for token in stream:
        if (
            previous is not None
            and previous.end_pos == token.start_pos
            and _word_char(str(previous)[-1:])
            and _word_char(str(token)[:1])
        ):
            raise _RunTogether(previous.line or 1, previous.column or 1)
        yield token
        previous = token


def _word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


class _RunTogether(FlowError):
    def __init__(self, line: int, column: int) -> None:
        super().__init__(f"line {line}")
        self.line, self.column = line, column


class _BadDedent(FlowError):
    def __init__(self, line: int, got: int, expected: int) -> None:
        super().__init__(f"line {line}")
        self.line, self.got, self.expected = line, got, expected


_LAYOUT_TOKENS = frozenset({"_NL", "_INDENT", "_DEDENT"})


def _takes_space(node: object) -> bool:
    """Layout tokens (newlines, indents, dedents) do not count towards a node's span.

    Without this filter a declaration's span ran on to the next declaration's line and a block
    statement's span ended at the start of the statement after it.
    """
    return not (isinstance(node, Token) and node.type in _LAYOUT_TOKENS)


@lru_cache(maxsize=1)
def _lark() -> Lark:
    grammar = resources.files("flowlang.language").joinpath("grammar.lark").read_text("utf-8")
    return Lark(
        grammar,
        parser="lalr",
        postlex=_FlowIndenter(),
        propagate_positions=_takes_space,
        maybe_placeholders=True,
        cache=False,
    )


@dataclass
class ParseResult:
    """The AST (None when the file had syntax errors), every diagnostic, and the source."""

    flow: ast.Flow | None
    diagnostics: list[Diagnostic]
    source: SourceFile
    comments: list[ast.Comment] = field(default_factory=list)
    partial: ast.Flow | None = None
    """With syntax errors: the AST of the rest of the file (each line in error replaced by a
    harmless one of the same shape), for the checks that still mean something; else None."""

    @property
    def ok(self) -> bool:
        return self.flow is not None and not any(d.is_error for d in self.diagnostics)


def parse_bytes(data: bytes, filename: str) -> ParseResult:
    """Decode and parse a flow file's bytes; never raises for bad input."""
    diagnostics: list[Diagnostic] = []
    if len(data) > MAX_FLOW_BYTES:
        span = Span.whole_file(filename)
        diagnostics.append(
            error(
                codes.FLOW_TOO_LARGE,
                f"flow file is too large ({len(data):,} bytes)",
                span,
                hint=f"a flow file may be at most {MAX_FLOW_BYTES:,} bytes; split it into tasks",
            )
        )
        return ParseResult(None, diagnostics, SourceFile(filename, ""))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        text = data.decode("utf-8", errors="replace")
        diagnostics.append(
            error(
                codes.NOT_UTF8,
                f"the file is not valid UTF-8 (byte 0x{data[exc.start]:02x})",
                Span.point(filename, line, col),
                "not UTF-8",
                hint="save the file as UTF-8",
            )
        )
        return ParseResult(None, diagnostics, SourceFile(filename, text))
    return parse_text(text, filename)


def parse_text(text: str, filename: str) -> ParseResult:
    """Parse flow text; collects every syntax error, never raises for bad input."""
    if text.startswith("\ufeff"):
        text = text[1:]
    source = SourceFile(filename, text)
    diagnostics = _screen(text, filename)
    if any(d.code in {codes.EMPTY_FLOW} for d in diagnostics):
        return ParseResult(None, diagnostics, source)
    cleaned = _normalise(text)
    comments: list[ast.Comment] = []
    screened = len(diagnostics)
    tree = _parse_with_recovery(cleaned, filename, source, diagnostics, comments)
    if "\t" in text:
        diagnostics[screened:] = [_untab(d, text) for d in diagnostics[screened:]]
    if tree is None or any(d.is_error for d in diagnostics):
        partial = _partial(tree, filename, comments) if tree is not None else None
        return ParseResult(None, sorted(diagnostics, key=_key), source, comments, partial)
    try:
        flow = AstBuilder(filename).build(tree, tuple(comments))
    except VisitError as exc:
        inner = exc.orig_exc
        if isinstance(inner, BuildError):
            diagnostics.append(inner.diagnostic)
            return ParseResult(None, diagnostics, source, comments)
        raise
    except BuildError as exc:
        diagnostics.append(exc.diagnostic)
        return ParseResult(None, diagnostics, source, comments)
    return ParseResult(flow, diagnostics, source, comments)


def _partial(tree: Tree[Any], filename: str, comments: list[ast.Comment]) -> ast.Flow | None:
    try:
        return AstBuilder(filename).build(tree, tuple(comments))
    except (VisitError, BuildError):
        return None


def _key(d: Diagnostic) -> tuple[int, int]:
    return (d.span.line, d.span.column)


def _screen(text: str, filename: str) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    if not text.strip():
        out.append(
            error(
                codes.EMPTY_FLOW,
                "the flow file is empty",
                Span.whole_file(filename),
                hint='a flow starts with a line like: flow "Customer messaging"',
            )
        )
        return out
    for number, line in enumerate(source_lines(text), 1):
        if "\x00" in line:
            col = line.index("\x00") + 1
            out.append(
                error(
                    codes.NUL_BYTE,
                    "NUL byte in the flow file",
                    Span.point(filename, number, col),
                    "NUL",
                    hint="the file looks binary or corrupted; remove the byte",
                )
            )
        indent = len(line) - len(line.lstrip(" \t"))
        if "\t" in line[:indent]:
            col = line.index("\t") + 1
            out.append(
                error(
                    codes.TAB_INDENT,
                    "tab in indentation",
                    Span.point(filename, number, col),
                    "tab",
                    hint="indent with spaces (4 per level); `flowlang fmt` fixes it",
                )
            )
    return out


def _untab(diagnostic: Diagnostic, text: str) -> Diagnostic:
    """Move a diagnostic's columns from the tab-expanded text back to the text as written."""
    lines = re.split(r"\r\n|\r|\n", text)
    span = diagnostic.span

    def column(line: int, col: int) -> int:
        if not 1 <= line <= len(lines):
            return col
        written = lines[line - 1].replace("\x00", " ")  # as `_normalise` lexed it
        indent = written[: len(written) - len(written.lstrip(" \t"))]
        width = 0
        for index, ch in enumerate(indent):
            step = 4 if ch == "\t" else 1
            if col - 1 < width + step:
                return index + 1
            width += step
        return col - (width - len(indent))

    moved = replace(
        span,
        column=column(span.line, span.column),
        end_column=column(span.end_line, span.end_column),
    )
    return replace(diagnostic, span=moved)


def _normalise(text: str) -> str:
    """Make the text safe to lex: no NULs, tabs expanded, a final newline."""
    lines = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = line.replace("\x00", " ")
        indent = len(line) - len(line.lstrip(" \t"))
        lines.append(line[:indent].replace("\t", "    ") + line[indent:])
    out = "\n".join(lines)
    return out if out.endswith("\n") else out + "\n"


def _parse_with_recovery(
    text: str,
    filename: str,
    source: SourceFile,
    diagnostics: list[Diagnostic],
    comments: list[ast.Comment],
) -> Tree[Any] | None:
    lines = text.split("\n")
    errors = 0
    reported: set[int] = set()
    while True:
        comments.clear()
        # A recovery may add a line to an element of `lines`; `origin` maps the lexer's line
        # numbers back to the file's.
        origin = [n for n, line in enumerate(lines, 1) for _ in range(line.count("\n") + 1)]
        try:
            tree = _parse_collecting(lines, comments)
        except _BadDedent as exc:
            line_no = origin[exc.line - 1]
            diag = error(
                codes.BAD_INDENT,
                "this line's indentation does not match any enclosing block",
                Span.point(filename, line_no, 1, max(exc.got, 1)),
                "unexpected indentation",
                hint=f"indent by {exc.expected} spaces to continue the block above",
            )
            fix: Callable[[list[str], int], bool] = _reindent
        except _RunTogether as exc:
            line_no = origin[exc.line - 1]
            physical = "\n".join(lines).split("\n")
            diag = _run_together(filename, physical, exc.line, exc.column)
            diag = _relocate(diag, origin)
            fix = _neutralise
        except UnexpectedInput as exc:
            physical = "\n".join(lines).split("\n")
            diag, line_no = _syntax_diagnostic(exc, filename, source, physical)
            corrected = _meant(exc, filename, physical)
            diag = _relocate(diag, origin)
            line_no = origin[min(line_no, len(origin)) - 1]
            fix = {codes.MISSING_COLON: _add_colon, codes.EMPTY_BLOCK: _fill_block}.get(
                diag.code, _neutralise
            )
            if corrected is not None:
                fix = _corrector(corrected)
        else:
            diagnostics.extend(_off_step(filename, origin, reported))
            return tree
        errors += 1
        if line_no not in reported:
            diagnostics.append(diag)
            reported.add(line_no)
        if errors >= MAX_SYNTAX_ERRORS or not fix(lines, line_no):
            return None


def _off_step(filename: str, origin: list[int], reported: set[int]) -> list[Diagnostic]:
    """FL025 for each block the last parse found indented by other than `INDENT_STEP`."""
    found = []
    indenter = _lark().options.postlex
    for line, got, expected in getattr(indenter, "off_step", []):
        line_no = origin[line - 1] if 0 < line <= len(origin) else line
        if line_no in reported:
            continue
        found.append(
            error(
                codes.INDENT_NOT_ONE_LEVEL,
                f"this block is indented by {got - expected + INDENT_STEP} spaces more than "
                f"the line that opens it; a block is indented by {INDENT_STEP}",
                Span.point(filename, line_no, 1, max(got, 1)),
                f"indent by {expected} spaces",
                hint=f"flowlang fmt re-indents it (every line of the block by {expected} spaces)",
            )
        )
    return found


def _run_together(filename: str, lines: list[str], line: int, column: int) -> Diagnostic:
    """FL031 for the word at `line`:`column` that runs keywords together, with the words meant
    when the grammar's keywords spell all of it."""
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    end = column - 1
    while end < len(text) and _word_char(text[end]):
        end += 1
    word = text[column - 1 : end]
    meant = _keywords_spelling(word)
    return error(
        codes.WORDS_RUN_TOGETHER,
        f"'{word}' runs words together",
        Span(filename, line, column, line, end + 1),
        "no space between words",
        hint=suggest(word, [" ".join(meant)] if meant else [], "keywords are separate words"),
    )


def _keywords_spelling(word: str) -> list[str] | None:
    """`word` as a sequence of the grammar's keywords ('gotostate' -> go to state), if it is one."""
    keywords = _grammar_keywords()
    spelt: dict[int, list[str]] = {0: []}
    for start in range(len(word)):
        if start in spelt:
            for keyword in keywords:
                if word.startswith(keyword, start) and start + len(keyword) not in spelt:
                    spelt[start + len(keyword)] = [*spelt[start], keyword]
    return spelt.get(len(word)) if len(word) in spelt else None


@lru_cache(maxsize=1)
def _grammar_keywords() -> tuple[str, ...]:
    words = (
        str(t.pattern.value)
        for t in _lark().terminals
        if t.pattern.type == "str" and str(t.pattern.value).isalpha()
    )
    return tuple(sorted(set(words), key=lambda w: (-len(w), w)))


def _meant(exc: UnexpectedInput, filename: str, lines: list[str]) -> str | None:
    """The line as it was meant when the error is a specific mistake ('==' for '=', 30m for
    '30 minutes'), so that recovery goes on with it; else None."""
    if isinstance(exc, UnexpectedCharacters) and 0 < exc.line <= len(lines):
        quoted = mistakes.wrong_quotes(filename, exc.line, exc.column, lines[exc.line - 1])
        return quoted[1] if quoted is not None else None
    if not isinstance(exc, UnexpectedToken) or exc.token.type in _LAYOUT_TOKENS | {"$END"}:
        return None
    tok = exc.token
    line, col = tok.line or 1, tok.column or 1
    if not 0 < line <= len(lines):
        return None
    span = Span(filename, line, col, line, (tok.end_column or col + 1))
    found = _specific_mistake(tok, set(exc.accepts or exc.expected), span, lines[line - 1])
    return found[1] if found is not None else None


def _corrector(corrected: str) -> Callable[[list[str], int], bool]:
    """A recovery that puts the meant line in place of the one in error."""

    def fix(lines: list[str], line_no: int) -> bool:
        idx = line_no - 1
        if not 0 <= idx < len(lines) or "\n" in lines[idx] or lines[idx] == corrected:
            return _neutralise(lines, line_no)
        lines[idx] = corrected
        return True

    return fix


def _relocate(diag: Diagnostic, origin: list[int]) -> Diagnostic:
    span = diag.span

    def line(number: int) -> int:
        return origin[number - 1] if 1 <= number <= len(origin) else number

    if line(span.line) == span.line and line(span.end_line) == span.end_line:
        return diag
    return replace(diag, span=replace(span, line=line(span.line), end_line=line(span.end_line)))


def _fill_block(lines: list[str], line_no: int) -> bool:
    """Give an empty block (after the line `line_no` that ends in ':') a harmless statement."""
    idx = line_no - 1
    if not 0 <= idx < len(lines) or "\n" in lines[idx]:
        return False
    indent = len(lines[idx]) - len(lines[idx].lstrip(" "))
    lines[idx] += "\n" + " " * (indent + 4) + 'log ""'
    return True


def _block_opener(lines: list[str], line: int) -> int:
    """The nearest line at or above `line` whose code ends with ':' (or `line` if none)."""
    for number in range(min(line, len(lines)), 0, -1):
        code = _STRING_OR_COMMENT.sub(
            lambda m: '""' if m.group().startswith('"') else "", lines[number - 1]
        )
        if code.strip():
            return number if code.rstrip().endswith(":") else line
    return line


def _empty_block(filename: str, lines: list[str], line: int) -> tuple[Diagnostic, int]:
    line = _block_opener(lines, line)
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    d = error(
        codes.EMPTY_BLOCK,
        "expected an indented block after this line",
        Span.point(filename, line, len(text.rstrip()) + 1),
        "block is empty",
        hint="indent the statements of the block by 4 spaces more than this line",
    )
    return d, line


def _parse_collecting(lines: list[str], comments: list[ast.Comment]) -> Tree[Any]:
    text = "\n".join(lines)
    for number, line in enumerate(lines, 1):
        _collect_comment(line, number, comments)
    return _lark().parse(text)


_STRING_OR_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"|#.*')


def _collect_comment(line: str, number: int, comments: list[ast.Comment]) -> None:
    for m in _STRING_OR_COMMENT.finditer(line):
        if m.group().startswith("#"):
            own = not line[: m.start()].strip()
            comments.append(ast.Comment(number, m.start() + 1, m.group(), own))
            return


def _reindent(lines: list[str], line_no: int) -> bool:
    """Give a badly indented line the indentation of the previous non-blank line."""
    idx = line_no - 1
    if not 0 <= idx < len(lines):
        return False
    prev = next((lines[i] for i in range(idx - 1, -1, -1) if lines[i].strip()), "")
    indent = len(prev) - len(prev.lstrip(" "))
    if prev.rstrip().endswith(":"):
        indent += 4
    new = " " * indent + lines[idx].lstrip(" ")
    if new == lines[idx]:
        return False
    lines[idx] = new
    return True


def _add_colon(lines: list[str], line_no: int) -> bool:
    idx = line_no - 1
    if not 0 <= idx < len(lines) or lines[idx].rstrip().endswith(":"):
        return False
    lines[idx] = lines[idx].rstrip() + ":"
    return True


def _neutralise(lines: list[str], line_no: int) -> bool:
    """Replace a line that failed to parse with a harmless one of the same shape."""
    idx = line_no - 1
    if not 0 <= idx < len(lines):
        return False
    line = lines[idx]
    indent = len(line) - len(line.lstrip(" "))
    code = _STRING_OR_COMMENT.sub(lambda m: '""' if m.group().startswith('"') else "", line)
    opens_block = code.rstrip().endswith(":")
    if idx == _first_code_line(lines):
        replacement = 'flow "recovered"'
    elif indent == 0:
        replacement = f"state recovered_{line_no}:" if opens_block else 'description ""'
    else:
        replacement = "if true:" if opens_block else 'log ""'
    new = " " * indent + replacement
    if new == line:
        return _reindent(lines, line_no) if indent else False
    lines[idx] = new
    return True


def _first_code_line(lines: list[str]) -> int:
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return i
    return 0


# ------------------------------------------------------------------ syntax messages

_TOKEN_WORDS = {
    "_NL": "end of line",
    "_INDENT": "an indented block",
    "_DEDENT": "the end of the block",
    "$END": "end of file",
    "STRING": 'a quoted text like "Retail Banking"',
    "NAME": "a name",
    "NUMBER": "a number",
    "DURATION": "a duration like 30m or 72h",
    "COLON": '":"',
    "COMMA": '","',
    "LPAR": '"("',
    "RPAR": '")"',
    "LSQB": '"["',
    "RSQB": '"]"',
    "EQUAL": '"="',
    "DOT": '"."',
    "COMP_OP": "a comparison",
    "ADD_OP": '"+" or "-"',
    "MUL_OP": '"*" or "/"',
    "MINUS": '"-"',
    "ACCOUNT_KIND": "account, handle, page or number",
    "VISIBILITY": "privately or publicly",
    "CHOICE_KIND": "quick replies or buttons",
    "MEDIA_KIND": "image, video, audio, file, sticker or link",
    "FIRST": "first",
}


def _word(token_type: str) -> str:
    if token_type in _TOKEN_WORDS:
        return _TOKEN_WORDS[token_type]
    pattern = _lark().get_terminal(token_type).pattern if token_type else None
    if pattern is not None and pattern.type == "str":
        return f'"{pattern.value}"'
    return token_type.lower()


# Words that are also names where a name is expected (`conversation.id`, `crm.queue`): listing
# them beside "a name" only buries it.
_NAME_WORDS = frozenset(
    {
        '"window"',
        '"conversation"',
        '"language"',
        '"priority"',
        '"bot"',
        '"agent"',
        '"queue"',
        '"customer"',
        '"skill"',
        '"data"',
        '"schedule"',
        '"timeout"',
        '"error"',
        '"participant"',
        '"detect"',
    }
)


def _describe_expected(expected: set[str]) -> str:
    found = {_word(t) for t in expected if not t.startswith("__ANON")}
    if "NAME" in expected:
        found -= _NAME_WORDS
    words = sorted(found)
    if len(words) > 8:
        return ", ".join(words[:8]) + ", …"
    return ", ".join(words)


def _syntax_diagnostic(
    exc: UnexpectedInput, filename: str, source: SourceFile, lines: list[str]
) -> tuple[Diagnostic, int]:
    if isinstance(exc, UnexpectedCharacters):
        line, col = exc.line, exc.column
        text = lines[line - 1] if 0 < line <= len(lines) else ""
        char = text[col - 1] if 0 < col <= len(text) else ""
        quoted = mistakes.wrong_quotes(filename, line, col, text)
        if quoted is not None:
            d = quoted[0]
        elif char == '"':
            d = error(
                codes.UNCLOSED_TEXT,
                "unterminated text: the closing quote is missing",
                Span(filename, line, col, line, len(text) + 1),
                "this text never ends",
                hint='close the text with " on the same line',
            )
        else:
            d = error(
                codes.SYNTAX_ERROR,
                f"unexpected character {char!r}",
                Span.point(filename, line, col),
                "not part of the language here",
                hint="names use letters, digits and _; texts go in double quotes",
            )
        return d, line
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        expected = set(exc.accepts or exc.expected)
        if tok.type in {"_INDENT"}:
            line = tok.line or 1
            d = error(
                codes.BAD_INDENT,
                "unexpected indentation",
                Span.point(filename, line, 1, len(tok.value) or 1),
                "this line is indented more than the one above",
                hint="only a line ending in ':' opens an indented block",
            )
            return d, line
        if tok.type in {"_NL", "_DEDENT", "$END"}:
            line = tok.line if tok.type == "_NL" else max((tok.line or 1) - 1, 1)
            if tok.type == "_NL":
                line = tok.line or 1
            line = min(max(line, 1), len(lines))
            text = lines[line - 1]
            col = len(text.rstrip()) + 1
            span = Span.point(filename, line, col)
            if "COLON" in expected and not (expected - {"COLON", "DOT", "LPAR"}) - _OPERATORS:
                d = error(
                    codes.MISSING_COLON,
                    "missing ':' at the end of the line",
                    span,
                    "expected ':' here",
                    hint="a line that opens a block ends with ':'",
                )
            elif "_INDENT" in expected:
                return _empty_block(filename, lines, len(lines) if tok.type == "$END" else line)
            else:
                d = error(
                    codes.INCOMPLETE_LINE,
                    "this line ends too early",
                    span,
                    f"expected {_describe_expected(expected)}",
                    hint=_hint_for(lines[line - 1]),
                )
            return d, line
        line, col = tok.line or 1, tok.column or 1
        if "_INDENT" in expected:
            return _empty_block(filename, lines, line - 1)
        span = Span(filename, line, col, line, (tok.end_column or col + 1))
        found = _specific_mistake(tok, expected, span, lines[line - 1])
        if found is not None:
            return found[0], line
        d = error(
            codes.SYNTAX_ERROR,
            f"unexpected {_shown(tok)}",
            span,
            f"expected {_describe_expected(expected)}",
            hint=_hint_for(lines[line - 1]),
        )
        return d, line
    if isinstance(exc, UnexpectedEOF):
        line = max(len(lines) - 1, 1)
        d = error(
            codes.INCOMPLETE_LINE,
            "the file ends in the middle of a statement",
            Span.point(filename, line, 1),
            "incomplete",
        )
        return d, line
    line = getattr(exc, "line", 1) or 1
    return error(codes.SYNTAX_ERROR, "syntax error", Span.point(filename, line, 1)), line


_OPERATORS = {
    "COMP_OP",
    "ADD_OP",
    "MUL_OP",
    "AND",
    "OR",
    "IS",
    "CONTAINS",
    "MATCHES",
    "IN",
    "WITH",
    "WAIT",
    "INTO",
    "TIMEOUT",
    "MIN",
    "SCORE",
    "COMMA",
}


def _shown(tok: Token) -> str:
    if tok.type == "STRING":
        return f"text {tok}"
    if tok.type == "NAME":
        return f"word {str(tok)!r}"
    if tok.type in _TOKEN_WORDS:
        word = _TOKEN_WORDS[tok.type]
        if word.startswith('"'):
            return word
        return f"{word.removeprefix('a ').removeprefix('an ')} {str(tok)!r}"
    return f'"{tok}"'


_UNIT_WORDS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), "s"),
    **dict.fromkeys(("min", "mins", "minute", "minutes"), "m"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "h"),
    **dict.fromkeys(("d", "day", "days"), "d"),
}
_WORD_AFTER = re.compile(r"[ \t]*([A-Za-z]+)")


def _keywords(expected: set[str]) -> list[str]:
    """The keywords (not symbols) the parser would have accepted instead of a token."""
    found = []
    for name in expected:
        try:
            pattern = _lark().get_terminal(name).pattern
        except KeyError:
            continue
        if pattern.type == "str" and pattern.value.isidentifier():
            found.append(pattern.value)
    return sorted(found)


def _specific_mistake(
    tok: Token, expected: set[str], span: Span, text: str
) -> tuple[Diagnostic, str] | None:
    """A message for the common mistakes ('=' for '==', a duration without its unit or in
    words, a misspelt keyword) and the line as it was meant; None for any other token."""
    if tok.type == "EQUAL" and "COMP_OP" in expected:
        fixed = text[: span.column - 1] + "==" + text[span.column :]
        return error(
            codes.EQUALS_FOR_COMPARISON,
            "'=' does not compare: to test whether two values are equal, write '=='",
            span,
            "write '==' here",
            hint=f"{fixed.strip()}  ('set x to value' gives a variable a value)",
        ), fixed
    if tok.type == "NUMBER" and "DURATION" in expected:
        after = _WORD_AFTER.match(text, span.end_column - 1)
        unit = _UNIT_WORDS.get(after.group(1).lower()) if after else None
        if after is not None and unit is not None:
            wide = Span(span.file, span.line, span.column, span.line, after.end() + 1)
            fixed = text[: span.column - 1] + f"{tok}{unit}" + text[after.end() :]
            return error(
                codes.BAD_DURATION,
                f"a duration is written with its unit letter: {tok}{unit}, not "
                f"'{text[span.column - 1 : after.end()]}'",
                wide,
                f"write {tok}{unit}",
                hint="units: s (seconds), m (minutes), h (hours), d (days); e.g. 1h30m",
            ), fixed
        fixed = text[: span.end_column - 1] + "m" + text[span.end_column - 1 :]
        return error(
            codes.BAD_DURATION,
            f"a duration needs its unit: {tok}s, {tok}m or {tok}h?",
            span,
            "no unit",
            hint="units: s (seconds), m (minutes), h (hours), d (days); e.g. wait 30m",
        ), fixed
    keywords = _keywords(expected)
    if tok.type == "EQUAL":
        return mistakes.set_with_equals(span, text, keywords)
    word, expects_colon = str(tok), "COLON" in expected
    found = mistakes.else_if(span, text, word, expects_colon) or mistakes.then_after_condition(
        span, text, word, expects_colon
    )
    if found is None and tok.type == "NAME":
        found = _misspelt(tok, expected, span, text)
    if found is None and word.isidentifier():
        found = mistakes.unknown_statement(span, text, word, keywords, tok.type != "NAME")
    return found


def _misspelt(
    tok: Token, expected: set[str], span: Span, text: str
) -> tuple[Diagnostic, str] | None:
    start = span.column - 1
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
        start -= 1  # 'too' lexes as the keyword 'to' and a name 'o': take the whole word
    word = text[start : span.end_column - 1]
    keywords = [text[start : span.column - 1]] if start < span.column - 1 else _keywords(expected)
    keyword = did_you_mean(word, keywords)
    if keyword is None:
        return None
    fixed = text[:start] + keyword + text[span.end_column - 1 :]
    return error(
        codes.MISSPELT_KEYWORD,
        f"unknown word {word!r} here",
        Span(span.file, span.line, start + 1, span.line, span.end_column),
        "not a keyword",
        hint=suggest(word, keywords, ""),
    ), fixed


_STATEMENT_HINTS = {
    "route": 'e.g. route to queue "Retail Banking"  or  route to last agent wait 5m',
    "reply": 'e.g. reply "Hello"  or  reply template "welcome"',
    "set": "e.g. set tries to tries + 1  or  set priority to 5",
    "add": 'e.g. add skill "Loans" min 3',
    "ask": 'e.g. ask "Your account number?" into account wait 10m:',
    "hand": 'e.g. hand off to bot "FAQ Bot" wait 10m:',
    "call": 'e.g. call task identify:  or  call data action "CRM Lookup" into crm:',
    "check": 'e.g. check schedule "Contact Center Hours":',
    "match": "e.g. match keywords in message.text:",
    "serve": 'e.g. serve messages on whatsapp, messenger page "GBank"',
    "param": 'e.g. param main_queue: queue = "Retail Banking"',
    "var": "e.g. var tries: number = 0",
    "go": "e.g. go to state routing",
}


def _hint_for(line: str) -> str:
    first = line.strip().split(" ", 1)[0] if line.strip() else ""
    return _STATEMENT_HINTS.get(first, "see docs/language.md for the statement's form")
