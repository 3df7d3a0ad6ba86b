"""The typed syntax tree of a flow: frozen dataclasses, each node with the span it came from.

Produced by `flowlang.language.parser`, read by the checker, the formatter and the compiler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal as TypingLiteral
from typing import TypeAlias

from flowlang.diagnostics import Span

# ---------------------------------------------------------------- expressions


@dataclass(frozen=True, slots=True)
class Literal:
    """A constant: text, number, duration, boolean, or `not set`."""

    span: Span
    kind: TypingLiteral["text", "number", "duration", "boolean", "notset"]
    value: str | float | timedelta | bool | None
    source: str = ""  # the literal as written, for the formatter


@dataclass(frozen=True, slots=True)
class Path:
    """A dotted name: a variable (`tries`), a parameter, or a built-in (`message.text`)."""

    span: Span
    parts: tuple[str, ...]

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True, slots=True)
class Call:
    span: Span
    name: str
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class ListExpr:
    span: Span
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Unary:
    span: Span
    op: TypingLiteral["not", "-"]
    operand: Expr


@dataclass(frozen=True, slots=True)
class Binary:
    """`and`, `or`, comparisons, `contains`, `in`, arithmetic."""

    span: Span
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class IsSet:
    span: Span
    operand: Expr
    negated: bool


@dataclass(frozen=True, slots=True)
class Matches:
    span: Span
    operand: Expr
    pattern: str
    pattern_span: Span


@dataclass(frozen=True, slots=True)
class StoredData:
    """`participant data "key"` / `conversation data "key"`: what the flow stored, as text."""

    span: Span
    scope: TypingLiteral["participant", "conversation"]
    key: str


@dataclass(frozen=True, slots=True)
class Member:
    """Fields of a function's value: `now("Europe/London").hour`, `.date.weekday`."""

    span: Span
    base: Expr
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DetectOption:
    """One option of `detect(...)`: `among ["en", "es"]`, `fallback "en"`, `confidence 0.6`."""

    span: Span
    kind: TypingLiteral["among", "fallback", "confidence"]
    values: tuple[str, ...]  # the language codes, or the confidence as written
    value_spans: tuple[Span, ...]


@dataclass(frozen=True, slots=True)
class Detect:
    """`detect(message.text, ...)`: the language of a text, one of the flow's languages."""

    span: Span
    text: Expr
    options: tuple[DetectOption, ...] = ()

    def option(self, kind: str) -> DetectOption | None:
        """The last option of that kind as written (the checker reports repeats)."""
        found = [o for o in self.options if o.kind == kind]
        return found[-1] if found else None


Expr: TypeAlias = (
    Literal
    | Path
    | Call
    | ListExpr
    | Unary
    | Binary
    | IsSet
    | Matches
    | StoredData
    | Member
    | Detect
)


@dataclass(frozen=True, slots=True)
class NameRef:
    """A name of something declared in the deployment: `"Retail Banking"` or a parameter; for a
    routing target, also a value known only at run time (`crm.product`, `(expr)`): `expr`."""

    span: Span
    name: str
    is_param: bool
    expr: Expr | None = None


# ---------------------------------------------------------------- reply content


@dataclass(frozen=True, slots=True)
class Choices:
    span: Span
    kind: TypingLiteral["quick_replies", "buttons"]
    options: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TextContent:
    """Reply text; a Jinja2 template over the flow's variables. Customer text is data only."""

    span: Span
    text: str
    choices: Choices | None = None


@dataclass(frozen=True, slots=True)
class Arg:
    span: Span
    name: str
    value: Expr


@dataclass(frozen=True, slots=True)
class TemplateContent:
    span: Span
    template: NameRef
    args: tuple[Arg, ...] = ()


@dataclass(frozen=True, slots=True)
class MediaContent:
    span: Span
    kind: TypingLiteral["image", "video", "audio", "file", "sticker", "link"]
    url: str
    caption: str | None = None


@dataclass(frozen=True, slots=True)
class LocationContent:
    span: Span
    latitude: float
    longitude: float


Content: TypeAlias = TextContent | TemplateContent | MediaContent | LocationContent


@dataclass(frozen=True, slots=True)
class WindowGuard:
    """What to do when the channel's reply window is closed."""

    span: Span
    action: TypingLiteral["template", "skip", "record"]
    template: NameRef | None = None
    args: tuple[Arg, ...] = ()


# ---------------------------------------------------------------- statements


@dataclass(frozen=True, slots=True)
class OutcomeBranch:
    span: Span
    name: str
    body: Block


@dataclass(frozen=True, slots=True)
class Reply:
    span: Span
    content: Content
    visibility: TypingLiteral["default", "privately", "publicly"] = "default"
    guard: WindowGuard | None = None


@dataclass(frozen=True, slots=True)
class SetVariable:
    span: Span
    name: str
    name_span: Span
    value: Expr


@dataclass(frozen=True, slots=True)
class SetPriority:
    span: Span
    value: Expr


@dataclass(frozen=True, slots=True)
class SetLanguage:
    span: Span
    value: Expr


@dataclass(frozen=True, slots=True)
class SetData:
    span: Span
    scope: TypingLiteral["participant", "conversation"]
    key: str
    value: Expr


@dataclass(frozen=True, slots=True)
class AddSkill:
    span: Span
    skill: NameRef
    min_proficiency: int | None = None


@dataclass(frozen=True, slots=True)
class RemoveSkill:
    span: Span
    skill: NameRef


@dataclass(frozen=True, slots=True)
class MarkNotActionable:
    span: Span
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class TransferFlow:
    """`transfer to flow "Name"`: the conversation goes on in another loaded flow."""

    span: Span
    flow: str
    flow_span: Span


@dataclass(frozen=True, slots=True)
class LinkCustomer:
    span: Span
    kind: str
    value: Expr
    verified_by: str | None = None  # the data action result that proves the value


@dataclass(frozen=True, slots=True)
class GoToState:
    span: Span
    state: str
    state_span: Span


@dataclass(frozen=True, slots=True)
class OutcomeStmt:
    span: Span
    name: str


@dataclass(frozen=True, slots=True)
class End:
    span: Span
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Break:
    span: Span


@dataclass(frozen=True, slots=True)
class Pass:
    """`pass`: do nothing; a block that deliberately has no step (`on closed: pass`)."""

    span: Span


@dataclass(frozen=True, slots=True)
class KeepWaiting:
    """`keep waiting` in a route to queue's `on timeout`: stay in that queue, in place."""

    span: Span


@dataclass(frozen=True, slots=True)
class Log:
    span: Span
    message: str


@dataclass(frozen=True, slots=True)
class IfBranch:
    span: Span
    condition: Expr
    body: Block


@dataclass(frozen=True, slots=True)
class If:
    span: Span
    branches: tuple[IfBranch, ...]
    else_body: Block | None = None
    else_span: Span | None = None


@dataclass(frozen=True, slots=True)
class Case:
    span: Span
    values: tuple[Literal, ...]
    body: Block


@dataclass(frozen=True, slots=True)
class Switch:
    span: Span
    subject: Expr
    cases: tuple[Case, ...]
    default: Block | None = None
    default_span: Span | None = None


@dataclass(frozen=True, slots=True)
class Pattern:
    span: Span
    kind: TypingLiteral["keyword", "regex"]
    text: str


@dataclass(frozen=True, slots=True)
class When:
    span: Span
    patterns: tuple[Pattern, ...]
    body: Block


@dataclass(frozen=True, slots=True)
class Match:
    """Keyword matching: every `when` whose patterns occur runs (only the first with `first`)."""

    span: Span
    first: bool
    subject: Expr | None
    whens: tuple[When, ...]
    otherwise: Block | None = None
    otherwise_span: Span | None = None


@dataclass(frozen=True, slots=True)
class Repeat:
    span: Span
    times: int
    body: Block


@dataclass(frozen=True, slots=True)
class While:
    span: Span
    condition: Expr
    limit: int
    body: Block


@dataclass(frozen=True, slots=True)
class Ask:
    span: Span
    prompt: TextContent
    into: str
    into_span: Span
    wait: timedelta | None
    branches: tuple[OutcomeBranch, ...]


@dataclass(frozen=True, slots=True)
class Recognize:
    span: Span
    kinds: tuple[str, ...]  # "platform id", "phone", or a volunteered identity kind
    branches: tuple[OutcomeBranch, ...] = ()


@dataclass(frozen=True, slots=True)
class SkillRequirement:
    span: Span
    skill: NameRef
    min_proficiency: int | None = None


@dataclass(frozen=True, slots=True)
class PreferredAgent:
    span: Span
    agent: NameRef
    score: int | None = None


@dataclass(frozen=True, slots=True)
class AgentTarget:
    """One step of an ordered routing target: `prefer agents where <condition> [for <d>]`,
    `then agents where ...` (`then`), or `then any agent` (no condition)."""

    span: Span
    condition: Expr | None
    duration: timedelta | None = None
    then: bool = False


@dataclass(frozen=True, slots=True)
class RouteQueue:
    span: Span
    queue: NameRef
    skills: tuple[SkillRequirement, ...] = ()
    language: NameRef | None = None
    priority: Expr | None = None
    preferred_agents: tuple[PreferredAgent, ...] = ()
    prefer_last_agent: bool = False
    timeout: timedelta | None = None
    branches: tuple[OutcomeBranch, ...] = ()
    option_spans: tuple[Span, ...] = ()
    agent_steps: tuple[AgentTarget, ...] = ()


@dataclass(frozen=True, slots=True)
class RouteAgent:
    span: Span
    agent: NameRef | None  # None: the conversation's last agent
    wait: timedelta | None = None
    branches: tuple[OutcomeBranch, ...] = ()


@dataclass(frozen=True, slots=True)
class BotHandoff:
    span: Span
    bot: NameRef
    wait: timedelta | None
    branches: tuple[OutcomeBranch, ...]


@dataclass(frozen=True, slots=True)
class DataAction:
    span: Span
    action: NameRef
    args: tuple[Arg, ...]
    into: str | None
    timeout: timedelta | None
    branches: tuple[OutcomeBranch, ...]


@dataclass(frozen=True, slots=True)
class CallTask:
    span: Span
    task: str
    task_span: Span
    branches: tuple[OutcomeBranch, ...] = ()


@dataclass(frozen=True, slots=True)
class CheckSchedule:
    span: Span
    schedule: NameRef
    branches: tuple[OutcomeBranch, ...]


@dataclass(frozen=True, slots=True)
class SplitBranch:
    """`80% classic:` and its steps: the share of conversations that take them."""

    span: Span
    percent: float
    name: str
    body: Block
    source: str = ""  # the percentage as written, for the formatter


@dataclass(frozen=True, slots=True)
class Split:
    """`split ["name"]:` an A/B test; each conversation always takes the same branch."""

    span: Span
    name: str | None
    branches: tuple[SplitBranch, ...]


@dataclass(frozen=True, slots=True)
class Milestone:
    """`milestone "identified"`: the conversation reached this point (counted in reports)."""

    span: Span
    name: str


SurveyKind: TypeAlias = TypingLiteral["rating", "comment"]


@dataclass(frozen=True, slots=True)
class SurveyQuestion:
    """One question of a survey: a rating from `low` to `high`, or a free comment."""

    span: Span
    kind: SurveyKind
    prompt: TextContent
    into: str
    into_span: Span
    low: int | None = None
    high: int | None = None
    retry: str | None = None  # what is asked again after an answer out of range


@dataclass(frozen=True, slots=True)
class Survey:
    span: Span
    name: str
    wait: timedelta | None
    questions: tuple[SurveyQuestion, ...]
    branches: tuple[OutcomeBranch, ...]


Statement: TypeAlias = (
    Reply
    | SetVariable
    | SetPriority
    | SetLanguage
    | SetData
    | AddSkill
    | RemoveSkill
    | MarkNotActionable
    | LinkCustomer
    | GoToState
    | OutcomeStmt
    | End
    | Break
    | Pass
    | KeepWaiting
    | Log
    | If
    | Switch
    | Match
    | Repeat
    | While
    | Ask
    | Recognize
    | RouteQueue
    | RouteAgent
    | BotHandoff
    | DataAction
    | CallTask
    | CheckSchedule
    | Split
    | Milestone
    | Survey
    | TransferFlow
)
Block: TypeAlias = tuple[Statement, ...]

# ---------------------------------------------------------------- declarations


@dataclass(frozen=True, slots=True)
class Target:
    span: Span
    channel: str
    account_kind: str | None = None
    account: str | None = None


@dataclass(frozen=True, slots=True)
class Serve:
    span: Span
    scopes: tuple[str, ...]
    targets: tuple[Target, ...]


@dataclass(frozen=True, slots=True)
class Threading:
    span: Span
    window: timedelta | None
    param: str | None = None
    source: str = ""


@dataclass(frozen=True, slots=True)
class Param:
    span: Span
    name: str
    type_name: str
    type_span: Span
    default: Literal


@dataclass(frozen=True, slots=True)
class VarDecl:
    span: Span
    name: str
    type_name: str
    type_span: Span
    initial: Expr | None


@dataclass(frozen=True, slots=True)
class Task:
    span: Span
    name: str
    outcomes: tuple[str, ...]
    body: Block


@dataclass(frozen=True, slots=True)
class State:
    span: Span
    name: str
    body: Block


@dataclass(frozen=True, slots=True)
class Description:
    span: Span
    text: str


@dataclass(frozen=True, slots=True)
class OnError:
    span: Span
    body: Block


EventName: TypeAlias = TypingLiteral[
    "customer closed", "wrap up", "agent disconnected", "window closing"
]
EVENT_NAMES: tuple[EventName, ...] = (
    "customer closed",
    "wrap up",
    "agent disconnected",
    "window closing",
)


@dataclass(frozen=True, slots=True)
class OnEvent:
    """`on wrap up:` and the like: what runs when something other than a message happens."""

    span: Span
    event: EventName
    body: Block


QueueActivityKind: TypeAlias = TypingLiteral["every", "after", "writes"]


@dataclass(frozen=True, slots=True)
class QueueActivity:
    """`every 2m:`, `after 10m:` or `when customer writes:` in a `while queued` block."""

    span: Span
    kind: QueueActivityKind
    interval: timedelta | None  # every / after; None for `when customer writes`
    body: Block


@dataclass(frozen=True, slots=True)
class InQueue:
    """`while queued [in "Queue"]:` what runs beside a conversation's wait in a queue."""

    span: Span
    queue: str | None  # None: every queue without a block of its own
    queue_span: Span | None
    activities: tuple[QueueActivity, ...]


@dataclass(frozen=True, slots=True)
class Use:
    """`use "common/identify.flow"`: a module's tasks and variables, the path relative to the
    file that uses it."""

    span: Span
    path: str
    path_span: Span


Declaration: TypeAlias = (
    Use
    | Description
    | Serve
    | Threading
    | Param
    | VarDecl
    | OnError
    | OnEvent
    | InQueue
    | Task
    | State
)


@dataclass(frozen=True, slots=True)
class Comment:
    line: int
    column: int
    text: str
    own_line: bool


@dataclass(frozen=True, slots=True)
class Flow:
    """A whole flow file, declarations in source order; with `module`, a module file (its
    header `module "Name"`: tasks and variables that flows `use`)."""

    span: Span
    name: str
    declarations: tuple[Declaration, ...]
    comments: tuple[Comment, ...] = field(default=(), compare=False)
    module: bool = field(default=False, metadata={"dump": "when set"})

    @property
    def uses(self) -> list[Use]:
        return [d for d in self.declarations if isinstance(d, Use)]

    def of_type(self, kind: type[Declaration]) -> list[Declaration]:
        return [d for d in self.declarations if isinstance(d, kind)]

    @property
    def states(self) -> list[State]:
        return [d for d in self.declarations if isinstance(d, State)]

    @property
    def tasks(self) -> list[Task]:
        return [d for d in self.declarations if isinstance(d, Task)]

    @property
    def params(self) -> list[Param]:
        return [d for d in self.declarations if isinstance(d, Param)]

    @property
    def variables(self) -> list[VarDecl]:
        return [d for d in self.declarations if isinstance(d, VarDecl)]

    @property
    def serves(self) -> list[Serve]:
        return [d for d in self.declarations if isinstance(d, Serve)]

    @property
    def threading(self) -> Threading | None:
        return next((d for d in self.declarations if isinstance(d, Threading)), None)

    @property
    def on_error(self) -> OnError | None:
        return next((d for d in self.declarations if isinstance(d, OnError)), None)

    @property
    def in_queue(self) -> list[InQueue]:
        return [d for d in self.declarations if isinstance(d, InQueue)]

    @property
    def handlers(self) -> list[OnEvent]:
        return [d for d in self.declarations if isinstance(d, OnEvent)]

    @property
    def description(self) -> str | None:
        return next((d.text for d in self.declarations if isinstance(d, Description)), None)
