"""Loading a project: flow files and a deployment file -> diagnostics and checked flows.

`validate(paths)` is what `flowlang validate` runs: it expands folders, loads the deployment file
(`*.yaml`/`*.yml`) if one is given, parses and checks every `*.flow` file against it, and returns
every diagnostic with the sources needed to render them.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowlang import codes
from flowlang.batch import collector_paused
from flowlang.diagnostics import Diagnostic, SourceFile, Span, error, sort_key, warning
from flowlang.language.checker import CheckedFlow, check
from flowlang.language.context import ChannelInfo, DataActionInfo, FlowContext, TemplateInfo
from flowlang.language.modules import resolve_uses
from flowlang.language.parser import ParseResult, parse_bytes

if TYPE_CHECKING:
    from flowlang.config import Deployment

FLOW_SUFFIXES = (".flow",)
DEPLOYMENT_SUFFIXES = (".yaml", ".yml")
DEPLOYMENT_NAMES = ("deployment.yaml", "deployment.yml")
"""The file names `find_deployment` looks for when no deployment file is given."""


@dataclass
class Workspace:
    """Everything `validate` found: diagnostics, sources to quote, checked flows."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    sources: dict[str, SourceFile] = field(default_factory=dict)
    flows: dict[str, CheckedFlow] = field(default_factory=dict)
    deployment: Deployment | None = None
    deployment_path: str | None = None
    files_checked: int = 0

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def ok(self) -> bool:
        return not self.errors

    def render(self) -> str:
        """Every diagnostic with its source line quoted, as `flowlang validate` prints them."""
        return render(self)


def expand(paths: Iterable[str | Path]) -> tuple[list[Path], list[Path], list[Diagnostic]]:
    """Split the given paths into flow files and deployment files; folders are searched."""
    flows: list[Path] = []
    deployments: list[Path] = []
    problems: list[Diagnostic] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            problems.append(
                error(
                    codes.CANNOT_READ, f"no such file or folder: {path}", Span.whole_file(str(path))
                )
            )
        elif path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.suffix in FLOW_SUFFIXES and child.is_file():
                    flows.append(child)
        elif path.suffix in FLOW_SUFFIXES:
            flows.append(path)
        elif path.suffix in DEPLOYMENT_SUFFIXES:
            deployments.append(path)
        else:
            problems.append(
                error(
                    codes.NOT_A_FLOW_OR_DEPLOYMENT,
                    f"not a flow (.flow) or deployment (.yaml) file: {path}",
                    Span.whole_file(str(path)),
                )
            )
    return flows, deployments, problems


def find_deployment(paths: Iterable[str | Path], cwd: Path | None = None) -> Path | None:
    """The deployment file a command uses when none is given: `deployment.yaml` beside the
    first flow (in the folder of a flow file, or in a folder given), else in the working
    directory; None when there is none."""
    places: list[Path] = []
    for raw in paths:
        path = Path(raw)
        places.append(path if path.is_dir() else path.parent)
    places.append(cwd if cwd is not None else Path())
    for place in places:
        for name in DEPLOYMENT_NAMES:
            candidate = place / name
            if candidate.is_file():
                return candidate
    return None


def validate(
    paths: Iterable[str | Path],
    deployment: str | Path | None = None,
    *,
    discover: bool = False,
    modules_from: Path | None = None,
) -> Workspace:
    """Parse and check every flow under `paths` against the deployment file among them (or
    `deployment`); with `discover`, one found by `find_deployment` when neither gives one.
    A flow's `use` paths are relative to its folder, or to `modules_from` when given (a flow
    published as text, checked in a temporary folder)."""
    paths = list(paths)
    flows, deployments, problems = expand(paths)
    if deployment is not None:
        deployments.insert(0, Path(deployment))
    if not deployments and discover:
        found = find_deployment(paths)
        if found is not None:
            deployments.append(found)
    ws = Workspace(diagnostics=problems)
    if len(deployments) > 1:
        ws.diagnostics.append(
            error(
                codes.TWO_DEPLOYMENTS,
                "more than one deployment file given: " + ", ".join(map(str, deployments)),
                Span.whole_file(str(deployments[1])),
                hint="validate one deployment at a time",
            )
        )
    context = FlowContext(channels=default_channels())
    if deployments:
        context = load_context(deployments[0], ws)
    elif flows:
        ws.diagnostics.append(
            warning(
                codes.NO_DEPLOYMENT,
                "no deployment file given: queue, skill, template and other names are not checked",
                Span.whole_file(str(flows[0])),
                hint="pass it with -d FILE (e.g. flowlang validate flows/ -d deployment.yaml), "
                "or put a deployment.yaml beside the flows",
            )
        )
    with collector_paused():
        parsed = [(path, parse_file(path)) for path in flows]
    if len(parsed) > 1:  # flows validated together: `transfer to flow` may name any of them
        names = {r.flow.name for _p, r in parsed if r.flow is not None}
        context = dataclasses.replace(context, flows=frozenset(names))
    for path, result in parsed:
        with collector_paused():
            ws.files_checked += 1
            ws.sources[str(path)] = result.source
            ws.diagnostics.extend(result.diagnostics)
            where = path if modules_from is None else modules_from / path.name
            result = with_modules(result, where, ws, modules_from)
            problems, checked = check_parsed(result, context)
        # a problem inside a module is found again by each flow that uses it: shown once
        ws.diagnostics.extend(
            p for p in problems if p.span.file == str(path) or p not in ws.diagnostics
        )
        if checked is not None:
            ws.flows[str(path)] = checked
    ws.diagnostics.sort(key=sort_key)
    return ws


CHECKED_AFTER_SYNTAX_ERRORS = frozenset(
    {
        codes.UNKNOWN_QUEUE,
        codes.UNKNOWN_SKILL,
        codes.UNKNOWN_TEMPLATE,
        codes.UNKNOWN_BOT,
        codes.UNKNOWN_SCHEDULE,
        codes.UNKNOWN_DATA_ACTION,
        codes.UNKNOWN_AGENT,
        codes.UNKNOWN_LANGUAGE,
        codes.UNKNOWN_CHANNEL,
        codes.UNKNOWN_TYPE,
        codes.UNKNOWN_OUTCOME,
        codes.UNKNOWN_FUNCTION,
        codes.UNKNOWN_INPUT,
        codes.UNKNOWN_INTENT,
        codes.WRONG_TYPE,
        codes.NOT_A_CONDITION,
        codes.BAD_PROFICIENCY,
        codes.BAD_REGEX,
        codes.EMPTY_KEYWORD,
        codes.BAD_LOOP_BOUND,
        codes.THREADING_WINDOW_TOO_LONG,
        codes.CONTENT_NO_CHANNEL_CARRIES,
        codes.BAD_REPLY_TEMPLATE,
        codes.TOO_MANY_BUTTONS,
        codes.UNSUPPORTED_SCOPE,
    }
)
"""What is still checked in a file with syntax errors: problems a line has on its own (names
the deployment lacks, types, channel limits). Those that depend on the whole flow (unknown
states and variables, unreachable steps, unused states) wait for the syntax to be fixed, since
a line in error may be the declaration or the jump they would need."""


def check_parsed(
    result: ParseResult, context: FlowContext
) -> tuple[list[Diagnostic], CheckedFlow | None]:
    """The checker's diagnostics for a parsed file (and its checked flow when clean); for a file
    with syntax errors, those of `CHECKED_AFTER_SYNTAX_ERRORS` on the rest of the file."""
    if result.flow is not None:
        checked = check(result.flow, context)
        return checked.diagnostics, checked.checked
    if result.partial is None:
        return [], None
    found = check(result.partial, context).diagnostics
    return [d for d in found if d.is_error and d.code in CHECKED_AFTER_SYNTAX_ERRORS], None


def with_modules(
    result: ParseResult, path: Path, ws: Workspace, inside: Path | None = None
) -> ParseResult:
    """`result` with the tasks and variables of the modules its flow uses (`use`); their
    sources join the workspace's (diagnostics inside them are shown in their own file) and
    what reading them found (a missing file, a cycle) its diagnostics, each once. `inside`:
    the folder modules must be in (a flow published as text: the service's flows folder)."""
    if result.flow is None or not result.flow.uses:
        return result
    resolved = resolve_uses(result.flow, path, parse_file, inside)
    for name, module in resolved.modules.items():
        ws.sources.setdefault(name, module.source)
    for found in resolved.diagnostics:
        if found not in ws.diagnostics:
            ws.diagnostics.append(found)
    return dataclasses.replace(result, flow=resolved.flow)


def parse_file(path: Path) -> ParseResult:
    try:
        data = path.read_bytes()
    except OSError as exc:
        problem = error(
            codes.CANNOT_READ, f"cannot read {path}: {exc.strerror}", Span.whole_file(str(path))
        )
        return ParseResult(None, [problem], SourceFile(str(path), ""))
    return parse_bytes(data, str(path))


def load_context(path: Path, ws: Workspace) -> FlowContext:
    """Load the deployment file into `ws` and build the checker's view of it."""
    from flowlang.config import load_deployment

    deployment, diagnostics = load_deployment(path)
    ws.diagnostics.extend(diagnostics)
    ws.deployment_path = str(path)
    with contextlib.suppress(OSError):
        ws.sources[str(path)] = SourceFile(str(path), path.read_text("utf-8", errors="replace"))
    if deployment is None:
        # Its errors are reported; checking names against what could not be loaded would add
        # an "unknown" error for every queue, skill and account the flow names.
        return FlowContext(channels=default_channels())
    ws.deployment = deployment
    return context_from_deployment(deployment, str(path))


def context_from_deployment(deployment: Deployment, filename: str) -> FlowContext:
    """The names and capabilities a flow may refer to, from a loaded deployment."""
    accounts: dict[str, set[str]] = {}
    for key, channel in deployment.channels.items():
        names: set[str] = set()
        for account in channel.accounts:
            names.update(v for v in (account.name, account.id, account.user_id) if v)
        accounts[key] = names
    templates = {
        name: _template_info(name, t, deployment) for name, t in deployment.templates.items()
    }
    actions = {
        name: DataActionInfo(name, tuple(a.inputs), tuple(a.outputs), a.proves_identity)
        for name, a in deployment.data_actions.items()
    }
    return FlowContext(
        deployment_file=filename,
        queues=set(deployment.queues),
        skills=set(deployment.skills),
        languages=set(deployment.languages),
        agents=set(deployment.agents),
        agent_attributes=dict(deployment.agent_attributes),
        bots=set(deployment.bots),
        bot_intents={name: tuple(bot.intents) for name, bot in deployment.bots.items()},
        schedules=set(deployment.schedules),
        templates=templates,
        data_actions=actions,
        accounts=accounts,
        channels=default_channels(),
        span_of=deployment.span_of,
    )


def _template_info(name: str, template: Any, deployment: Deployment) -> TemplateInfo:
    whatsapp = getattr(template, "whatsapp", None)
    kind = "whatsapp" if whatsapp is not None else (getattr(template, "kind", None) or "text")
    status = str(getattr(template, "status", "APPROVED") or "APPROVED").upper()
    params = tuple(getattr(whatsapp, "parameters", ()) or ()) if whatsapp is not None else ()
    span = deployment.span_of(("templates", name, "text"))
    items = getattr(template, "items", None) or ()
    options = tuple(str(i if isinstance(i, str) else getattr(i, "title", "")) for i in items)
    return TemplateInfo(
        name,
        str(kind),
        getattr(template, "text", None),
        params,
        status == "APPROVED",
        span,
        options,
    )


def default_channels() -> dict[str, ChannelInfo]:
    """Channel capabilities from the channel registry (built-in data)."""
    from flowlang.channels.capabilities import channel_infos

    return channel_infos()


def render(ws: Workspace, diagnostics: Sequence[Diagnostic] | None = None) -> str:
    from flowlang.diagnostics import render_all

    return render_all(list(ws.diagnostics if diagnostics is None else diagnostics), ws.sources)
