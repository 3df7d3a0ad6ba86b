"""FlowGraph: the executable, serialisable form of a checked flow, and the contract between the
compiler and the runtime.

A graph is nodes with stable ids, each one operation (`Op`) with its typed, frozen arguments (one
`*Args` class per operation), named edges to other nodes, and the source line it came from.
`compiler/compile.py` builds the arguments and `runtime/steps.py` reads them; mypy checks both
sides. Expressions inside arguments are small JSON trees (see `flowlang.compiler.expressions`).

The graph's JSON form (`FlowGraph.to_dict`) is derived from the argument classes; `from_dict`
builds them back (the store keeps every version's graph as JSON). The graph's version is the
SHA-256 of its canonical JSON (without the file's path), so the same flow always compiles to the
same version, wherever its file lies.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from enum import StrEnum
from functools import cache
from typing import Any, ClassVar, TypeAlias, TypedDict, TypeVar, get_args, get_type_hints

from flowlang.errors import FlowError

Json: TypeAlias = dict[str, "Json"] | list["Json"] | str | int | float | bool | None
ExprTree: TypeAlias = dict[str, Json]
"""An expression as the compiler writes it: {"lit": 1}, {"path": ["customer", "name"]}, ..."""


_T = TypeVar("_T")


class GraphError(FlowError, ValueError):
    """A graph's JSON that cannot be read back: an unknown operation, a missing argument."""


class Op(StrEnum):
    """Every kind of node. The value is what the graph's JSON names it."""

    REPLY = "reply"
    ASK = "ask"
    LOG = "log"
    SET_VAR = "set_var"
    SET_PRIORITY = "set_priority"
    SET_LANGUAGE = "set_language"
    SET_DATA = "set_data"
    ADD_SKILL = "add_skill"
    REMOVE_SKILL = "remove_skill"
    LINK = "link"
    GOTO = "goto"
    JUMP = "jump"
    END = "end"
    NOT_ACTIONABLE = "not_actionable"
    CALL = "call"
    OUTCOME = "outcome"
    RETURN = "return"
    BRANCH = "branch"
    SWITCH = "switch"
    LOOP_INIT = "loop_init"
    LOOP_TEST = "loop_test"
    MATCH = "match"
    MATCH_CASE = "match_case"
    MATCH_NONE = "match_none"
    RECOGNIZE = "recognize"
    SCHEDULE = "schedule"
    BOT = "bot"
    DATA_ACTION = "data_action"
    ROUTE_AGENT = "route_agent"
    ROUTE_QUEUE = "route_queue"
    KEEP_WAITING = "keep_waiting"
    SPLIT = "split"
    MILESTONE = "milestone"
    SURVEY = "survey"
    TRANSFER_FLOW = "transfer_flow"


# ---------------------------------------------------------------------------- parts of arguments
@dataclass(frozen=True, slots=True)
class NameRef:
    """A queue, skill, bot, ... name written in the flow, the param (for a routing target, also
    a variable) that names it at run time, or (a routing target) an expression whose value
    names it. JSON: {"name": ...},
    {"param": ...} or {"name": <the expression as written>, "expr": tree}."""

    value: str
    is_param: bool = False
    expr: ExprTree | None = None

    @property
    def written(self) -> bool:
        """Written in the flow (checked against the deployment before it runs)."""
        return not self.is_param and self.expr is None

    def to_json(self) -> dict[str, Json]:
        if self.expr is not None:
            return {"name": self.value, "expr": self.expr}
        return {"param": self.value} if self.is_param else {"name": self.value}

    @classmethod
    def from_json(cls, data: Json) -> NameRef:
        if isinstance(data, dict) and isinstance(tree := data.get("expr"), dict):
            return cls(str(data.get("name") or ""), False, tree)
        if isinstance(data, dict) and isinstance(data.get("param"), str):
            return cls(str(data["param"]), True)
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            return cls(str(data["name"]))
        raise GraphError(f"expected a name or a param, got {data!r}")


@dataclass(frozen=True, slots=True)
class Choices:
    kind: str  # quick_replies | buttons
    options: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TextContent:
    """Text, maybe a Jinja2 template, maybe with choices."""

    text: str
    choices: Choices | None = None
    kind: ClassVar[str] = "text"


@dataclass(frozen=True, slots=True)
class TemplateContent:
    """A deployment template by name (or param), with its arguments."""

    template: NameRef
    args: dict[str, ExprTree]
    kind: ClassVar[str] = "template"


@dataclass(frozen=True, slots=True)
class MediaContent:
    kind: str  # image | video | audio | file | sticker | link
    url: str
    caption: str | None = None


@dataclass(frozen=True, slots=True)
class LocationContent:
    latitude: float
    longitude: float
    kind: ClassVar[str] = "location"


Content: TypeAlias = TextContent | TemplateContent | MediaContent | LocationContent


@dataclass(frozen=True, slots=True)
class Guard:
    """What a reply does when the channel's window is closed: `action` is "template" (send
    `template` with `args` instead) or another policy action."""

    action: str
    template: NameRef | None
    args: dict[str, ExprTree]


@dataclass(frozen=True, slots=True)
class SkillReq:
    skill: NameRef
    min: int | None = None


@dataclass(frozen=True, slots=True)
class PreferredAgent:
    agent: NameRef
    score: int | None = None


@dataclass(frozen=True, slots=True)
class When:
    """One `when` of a keyword match: its keywords and regular expressions."""

    keywords: tuple[str, ...]
    regexes: tuple[str, ...]


# ---------------------------------------------------------------------------- arguments per op
class Args:
    """Base of every operation's arguments; `op` names the operation they belong to."""

    __slots__ = ()
    op: ClassVar[Op]
    omit_when_none: ClassVar[frozenset[str]] = frozenset()
    """Fields left out of the JSON when None (as the graph has always written them)."""

    def to_json(self) -> dict[str, Json]:
        out: dict[str, Json] = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is None and f.name in self.omit_when_none:
                continue
            out[f.name] = to_json(value)
        return out

    def __getitem__(self, key: str) -> Any:
        """Mapping-style read of an argument, for code written before the arguments were typed;
        new code reads the attribute."""
        try:
            return to_json(getattr(self, key))
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default


@dataclass(frozen=True, slots=True)
class ReplyArgs(Args):
    op: ClassVar[Op] = Op.REPLY
    content: Content
    visibility: str
    guard: Guard | None = None


@dataclass(frozen=True, slots=True)
class AskArgs(Args):
    op: ClassVar[Op] = Op.ASK
    prompt: Content
    into: str
    wait: int | None = None


@dataclass(frozen=True, slots=True)
class SurveyQuestion:
    """One question of a survey: `kind` is "rating" (a whole number from `low` to `high`,
    asked once more with `retry` after an answer out of range) or "comment" (any text)."""

    kind: str
    prompt: Content
    into: str
    low: int | None = None
    high: int | None = None
    retry: str | None = None


@dataclass(frozen=True, slots=True)
class SurveyArgs(Args):
    op: ClassVar[Op] = Op.SURVEY
    name: str
    questions: tuple[SurveyQuestion, ...]
    wait: int | None = None


@dataclass(frozen=True, slots=True)
class LogArgs(Args):
    op: ClassVar[Op] = Op.LOG
    message: str


@dataclass(frozen=True, slots=True)
class SetVarArgs(Args):
    op: ClassVar[Op] = Op.SET_VAR
    name: str
    value: ExprTree


@dataclass(frozen=True, slots=True)
class SetPriorityArgs(Args):
    op: ClassVar[Op] = Op.SET_PRIORITY
    value: ExprTree


@dataclass(frozen=True, slots=True)
class SetLanguageArgs(Args):
    op: ClassVar[Op] = Op.SET_LANGUAGE
    value: ExprTree


@dataclass(frozen=True, slots=True)
class SetDataArgs(Args):
    op: ClassVar[Op] = Op.SET_DATA
    scope: str  # participant | conversation
    key: str
    value: ExprTree


@dataclass(frozen=True, slots=True)
class AddSkillArgs(Args):
    op: ClassVar[Op] = Op.ADD_SKILL
    skill: NameRef
    min: int | None = None


@dataclass(frozen=True, slots=True)
class RemoveSkillArgs(Args):
    op: ClassVar[Op] = Op.REMOVE_SKILL
    skill: NameRef


@dataclass(frozen=True, slots=True)
class LinkArgs(Args):
    op: ClassVar[Op] = Op.LINK
    omit_when_none: ClassVar[frozenset[str]] = frozenset({"verified_by"})
    kind: str
    value: ExprTree
    verified_by: NameRef | None = None  # the data action whose result proves the identity


@dataclass(frozen=True, slots=True)
class GotoArgs(Args):
    op: ClassVar[Op] = Op.GOTO
    state: str


@dataclass(frozen=True, slots=True)
class JumpArgs(Args):
    """`break`: to the loop's exit (the node's `target` edge)."""

    op: ClassVar[Op] = Op.JUMP
    why: str = "break"


@dataclass(frozen=True, slots=True)
class EndArgs(Args):
    """`end` written in the flow (with its reason), or the implicit end of a state's body."""

    op: ClassVar[Op] = Op.END
    reason: str | None = None
    implicit: bool = False

    def to_json(self) -> dict[str, Json]:
        return {"implicit": True} if self.implicit else {"reason": self.reason}


@dataclass(frozen=True, slots=True)
class NotActionableArgs(Args):
    op: ClassVar[Op] = Op.NOT_ACTIONABLE
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class CallArgs(Args):
    op: ClassVar[Op] = Op.CALL
    task: str


@dataclass(frozen=True, slots=True)
class OutcomeArgs(Args):
    op: ClassVar[Op] = Op.OUTCOME
    name: str


@dataclass(frozen=True, slots=True)
class ReturnArgs(Args):
    """The end of a task's body without an outcome."""

    op: ClassVar[Op] = Op.RETURN


@dataclass(frozen=True, slots=True)
class BranchArgs(Args):
    """`if`/`else if`: condition i true goes by edge `case{i}`, none by `else`."""

    op: ClassVar[Op] = Op.BRANCH
    conditions: tuple[ExprTree, ...]


@dataclass(frozen=True, slots=True)
class SwitchArgs(Args):
    op: ClassVar[Op] = Op.SWITCH
    subject: ExprTree
    cases: tuple[tuple[Json, ...], ...]  # the literal values of each case


@dataclass(frozen=True, slots=True)
class LoopInitArgs(Args):
    op: ClassVar[Op] = Op.LOOP_INIT
    loop: str


@dataclass(frozen=True, slots=True)
class LoopTestArgs(Args):
    op: ClassVar[Op] = Op.LOOP_TEST
    loop: str
    limit: int
    condition: ExprTree | None = None  # a `while` loop's


@dataclass(frozen=True, slots=True)
class MatchArgs(Args):
    """`match keywords` (every matching `when`) or `match first keyword` (`first`)."""

    op: ClassVar[Op] = Op.MATCH
    first: bool
    subject: ExprTree | None
    whens: tuple[When, ...]


@dataclass(frozen=True, slots=True)
class MatchCaseArgs(Args):
    op: ClassVar[Op] = Op.MATCH_CASE
    match: str
    index: int


@dataclass(frozen=True, slots=True)
class MatchNoneArgs(Args):
    op: ClassVar[Op] = Op.MATCH_NONE
    match: str


@dataclass(frozen=True, slots=True)
class RecognizeArgs(Args):
    op: ClassVar[Op] = Op.RECOGNIZE
    kinds: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ScheduleArgs(Args):
    op: ClassVar[Op] = Op.SCHEDULE
    schedule: NameRef


@dataclass(frozen=True, slots=True)
class BotArgs(Args):
    op: ClassVar[Op] = Op.BOT
    bot: NameRef
    wait: int | None = None


@dataclass(frozen=True, slots=True)
class DataActionArgs(Args):
    op: ClassVar[Op] = Op.DATA_ACTION
    action: NameRef
    into: str | None
    args: dict[str, ExprTree]
    timeout: int | None = None


@dataclass(frozen=True, slots=True)
class RouteAgentArgs(Args):
    """`route to agent` (`agent` set) or `route to last agent` (None)."""

    op: ClassVar[Op] = Op.ROUTE_AGENT
    agent: NameRef | None
    wait: int | None = None


@dataclass(frozen=True, slots=True)
class AgentStep:
    """One step of an ordered routing target: the agents `condition` (an expression on
    `agent.<attribute>` and the flow's values; None: any agent) takes, for `seconds` (None:
    until the route ends)."""

    condition: ExprTree | None
    seconds: int | None = None


@dataclass(frozen=True, slots=True)
class RouteQueueArgs(Args):
    op: ClassVar[Op] = Op.ROUTE_QUEUE
    omit_when_none: ClassVar[frozenset[str]] = frozenset({"agent_steps"})
    queue: NameRef
    skills: tuple[SkillReq, ...] = ()
    language: NameRef | None = None
    priority: ExprTree | None = None
    preferred: tuple[PreferredAgent, ...] = ()
    prefer_last: bool = False
    timeout: int | None = None
    agent_steps: tuple[AgentStep, ...] | None = None  # None: no ordered steps


@dataclass(frozen=True, slots=True)
class KeepWaitingArgs(Args):
    """`keep waiting`: the route to queue (`route`, a node id) whose timeout passed, again."""

    op: ClassVar[Op] = Op.KEEP_WAITING
    route: str


@dataclass(frozen=True, slots=True)
class SplitArgs(Args):
    """A percentage split: branch i (edge `branch:<name>`) takes `shares[i]` of 10,000."""

    op: ClassVar[Op] = Op.SPLIT
    name: str
    branches: tuple[str, ...]
    shares: tuple[int, ...]  # basis points, summing to 10,000


@dataclass(frozen=True, slots=True)
class MilestoneArgs(Args):
    op: ClassVar[Op] = Op.MILESTONE
    name: str


@dataclass(frozen=True, slots=True)
class TransferFlowArgs(Args):
    """`transfer to flow "Name"`: the run ends here and the named flow starts."""

    op: ClassVar[Op] = Op.TRANSFER_FLOW
    flow: str


OpArgs: TypeAlias = (
    ReplyArgs
    | AskArgs
    | LogArgs
    | SetVarArgs
    | SetPriorityArgs
    | SetLanguageArgs
    | SetDataArgs
    | AddSkillArgs
    | RemoveSkillArgs
    | LinkArgs
    | GotoArgs
    | JumpArgs
    | EndArgs
    | NotActionableArgs
    | CallArgs
    | OutcomeArgs
    | ReturnArgs
    | BranchArgs
    | SwitchArgs
    | LoopInitArgs
    | LoopTestArgs
    | MatchArgs
    | MatchCaseArgs
    | MatchNoneArgs
    | RecognizeArgs
    | ScheduleArgs
    | BotArgs
    | DataActionArgs
    | RouteAgentArgs
    | RouteQueueArgs
    | KeepWaitingArgs
    | SplitArgs
    | MilestoneArgs
    | SurveyArgs
    | TransferFlowArgs
)
"""The arguments of any node; `match` on it with `assert_never` to handle every operation."""

ARGS_BY_OP: dict[Op, type[OpArgs]] = {cls.op: cls for cls in get_args(OpArgs)}


# ---------------------------------------------------------------------------- the graph
@dataclass(frozen=True)
class SourceRef:
    file: str
    line: int
    column: int


@dataclass
class Node:
    """One step. `edges` maps an edge name (`next`, `then`, `on:known`, ...) to a node id."""

    id: str
    source: SourceRef
    args: OpArgs
    edges: dict[str, str] = field(default_factory=dict)

    @property
    def op(self) -> Op:
        return self.args.op

    def to_dict(self) -> dict[str, Json]:
        source: dict[str, Json] = {
            "file": self.source.file,
            "line": self.source.line,
            "column": self.source.column,
        }
        edges: dict[str, Json] = dict(self.edges)
        return {
            "id": self.id,
            "op": self.op.value,
            "source": source,
            "args": self.args.to_json(),
            "edges": edges,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Node:
        node_id = data.get("id", "?")
        try:
            op = Op(str(data.get("op")))
        except ValueError:
            known = ", ".join(o.value for o in Op)
            raise GraphError(
                f"node {node_id}: unknown operation {data.get('op')!r} (known: {known})"
            ) from None
        try:
            args = _decode(ARGS_BY_OP[op], data.get("args", {}))
        except GraphError as exc:
            raise GraphError(f"node {node_id} ({op.value}): {exc}") from None
        return cls(node_id, SourceRef(**data["source"]), args, dict(data.get("edges", {})))


class TaskSpec(TypedDict):
    entry: str  # the task's first node
    outcomes: list[str]


class ParamSpec(TypedDict):
    type: str
    value: Json


class VariableSpec(TypedDict):
    type: str
    initial: ExprTree | None


class ServeTarget(TypedDict):
    channel: str
    account: str | None


class InQueueSpec(TypedDict):
    """A `while queued` block: its `every` interval, its `after` delays (in order), and
    whether it has `when customer writes` (their entries are in `FlowGraph.handlers`)."""

    every: int | None
    after: list[int]
    writes: bool


def queue_handler(queue: str, kind: str, index: int | None = None) -> str:
    """The `handlers` key of a `while queued` block's part (`queue` "*": every queue)."""
    return f"in queue|{queue}|{kind}" + ("" if index is None else f"|{index}")


class ServeSpec(TypedDict):
    scopes: list[str]
    targets: list[ServeTarget]


@dataclass
class FlowGraph:
    name: str
    entry: str
    nodes: dict[str, Node]
    states: dict[str, str]  # state name -> first node id
    tasks: dict[str, TaskSpec]
    params: dict[str, ParamSpec]
    variables: dict[str, VariableSpec]
    on_error: str | None
    serve: list[ServeSpec]
    threading_window_seconds: int | None
    source_file: str
    version: str = ""
    # event name ("wrap up", ...) -> the first node of its `on` block
    handlers: dict[str, str] = field(default_factory=dict)
    # queue name ("*": any other queue) -> its `while queued` block
    in_queue: dict[str, InQueueSpec] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        # `handlers` only when the flow has some: the JSON (and version) of a flow without
        # them is what it was before they existed.
        handlers = {"handlers": dict(self.handlers)} if self.handlers else {}
        in_queue = {"in_queue": _copy(self.in_queue)} if self.in_queue else {}
        return {
            **handlers,
            **in_queue,
            "name": self.name,
            "entry": self.entry,
            "nodes": {nid: node.to_dict() for nid, node in self.nodes.items()},
            "states": dict(self.states),
            "tasks": {name: _copy(spec) for name, spec in self.tasks.items()},
            "params": {name: _copy(spec) for name, spec in self.params.items()},
            "variables": {name: _copy(spec) for name, spec in self.variables.items()},
            "on_error": self.on_error,
            "serve": [_copy(spec) for spec in self.serve],
            "threading_window_seconds": self.threading_window_seconds,
            "source_file": self.source_file,
            "version": self.version,
        }

    def canonical_json(self) -> str:
        """What the version hashes: the graph without where its file lies (the same flow in
        another folder is the same version)."""
        data = self.to_dict()
        data.pop("version", None)
        data.pop("source_file", None)
        for node in data["nodes"].values():
            node["source"].pop("file", None)
        return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    def seal(self) -> FlowGraph:
        """Set `version` to the content hash and return self."""
        self.version = hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]
        return self

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FlowGraph:
        """The graph from its JSON form; `GraphError` names the node whose operation or
        arguments cannot be read."""
        nodes = {nid: Node.from_dict(n) for nid, n in data["nodes"].items()}
        graph = cls(
            name=data["name"],
            entry=data["entry"],
            nodes=nodes,
            states=data["states"],
            tasks=data["tasks"],
            params=data["params"],
            variables=data["variables"],
            on_error=data.get("on_error"),
            serve=data.get("serve", []),
            threading_window_seconds=data.get("threading_window_seconds"),
            source_file=data.get("source_file", ""),
            handlers=dict(data.get("handlers") or {}),
            in_queue=dict(data.get("in_queue") or {}),
        )
        graph.seal()
        if data.get("version") and data["version"] != graph.version:
            raise GraphError(
                f"graph version {data['version']} does not match its content "
                f"({graph.version}); the file was edited after compiling"
            )
        return graph


# ---------------------------------------------------------------------------- JSON <-> arguments
def _copy(value: _T) -> _T:
    """A deep copy of plain JSON data, so that the graph's JSON never shares its lists."""
    return copy.deepcopy(value)


def to_json(value: object) -> Json:
    """The JSON form of an argument or a part of one."""
    if isinstance(value, NameRef):
        return value.to_json()
    if isinstance(value, Args):
        return value.to_json()
    if is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Json] = {}
        kind = getattr(type(value), "kind", None)
        if isinstance(kind, str):  # the content kinds fixed by their class
            out["kind"] = kind
        for f in fields(value):
            out[f.name] = to_json(getattr(value, f.name))
        return out
    if isinstance(value, tuple | list):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"not JSON: {value!r}")


_CONTENT_CLASSES = frozenset(get_args(Content))


@cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _decode(tp: Any, value: Any) -> Any:
    """Build the value of type `tp` (an arguments class, a part of one, or plain JSON) from its
    JSON form."""
    if tp is NameRef:
        return NameRef.from_json(value)
    if isinstance(tp, type) and is_dataclass(tp):
        if not isinstance(value, dict):
            raise GraphError(f"expected an object, got {value!r}")
        hints = _hints(tp)
        given: dict[str, Any] = {}
        for f in fields(tp):
            if f.name in value:
                given[f.name] = _decode(hints[f.name], value[f.name])
            elif f.default is MISSING and f.default_factory is MISSING:
                raise GraphError(f"argument {f.name!r} is missing")
        return tp(**given)
    options = frozenset(get_args(tp))
    if getattr(tp, "__origin__", None) is tuple:
        if not isinstance(value, list):
            raise GraphError(f"expected a list, got {value!r}")
        return tuple(_decode(get_args(tp)[0], item) for item in value)
    if type(None) in options and value is None:
        return None
    options -= {type(None)}
    if options == _CONTENT_CLASSES:
        kind = value.get("kind") if isinstance(value, dict) else None
        chosen = {"text": TextContent, "template": TemplateContent, "location": LocationContent}
        return _decode(chosen.get(str(kind), MediaContent), value)
    if len(options) == 1:
        return _decode(next(iter(options)), value)
    return value  # plain JSON: text, numbers, expression trees, literal values
