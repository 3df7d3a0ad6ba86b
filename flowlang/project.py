"""A runnable project: one checked and compiled flow with the deployment it runs against.

`load_project(flow, deployment)` is what the CLI's compile, graph, dry-run and test commands use;
`Project.engine(...)` builds an Engine wired to the deployment (schedules, templates, agents)
by `flowlang.assembly`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowlang.assembly import EngineParts, assemble_engine, deployment_schedules
from flowlang.batch import collector_paused
from flowlang.compiler.compile import compile_flow
from flowlang.compiler.ir import FlowGraph
from flowlang.runtime.engine import Engine
from flowlang.runtime.program import DeploymentTemplate, Program
from flowlang.workspace import Workspace, validate

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from flowlang.config import Deployment


@dataclass
class Project:
    graph: FlowGraph
    program: Program
    deployment: Deployment | None = None
    environment: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def schedule_state(self, name: str, now: datetime) -> str:
        """open / closed / holiday / emergency for a deployment schedule at `now`."""
        return deployment_schedules(self.deployment)(name, now)

    def engine(self, **parts: Unpack[EngineParts]) -> Engine:
        """An Engine for this project: the parts given (store, adapters, policy, ... as
        `assemble_engine` takes them), the built-in ones for the deployment for the rest."""
        parts.setdefault("params", self.params)
        return assemble_engine(self.program, self.deployment, **parts)


def load_project(
    flow: Path,
    deployment: Path | None = None,
    environment: str | None = None,
    modules_from: Path | None = None,
) -> tuple[Project | None, Workspace]:
    """Validate, compile and prepare one flow; None (with diagnostics) when it has errors.
    `modules_from`: the folder its `use` paths are relative to, when not its own."""
    paths: list[Path] = [flow] + ([deployment] if deployment is not None else [])
    ws = validate(paths, modules_from=modules_from)
    checked = ws.flows.get(str(flow))
    if checked is None or ws.errors:
        return None, ws
    with collector_paused():
        graph = compile_flow(checked)
        templates = _templates(ws.deployment)
        program = Program(graph, templates)
    params: dict[str, Any] = {}
    if ws.deployment is not None and environment is not None:
        params = dict(ws.deployment.environments.get(environment, {}))
    return Project(graph, program, ws.deployment, environment, params), ws


def sending_project(deployment: Deployment) -> Project:
    """A project without a flow, for business-initiated sends (`flowlang send`): the
    deployment's templates, channel rules and portfolios. The customer's reply is handled by
    the host's engine with its flow."""
    graph = FlowGraph(
        name="send",
        entry="",
        nodes={},
        states={},
        tasks={},
        params={},
        variables={},
        on_error=None,
        serve=[],
        threading_window_seconds=int(deployment.threading_window.total_seconds()),
        source_file=deployment.file or "",
    ).seal()
    return Project(graph, Program(graph, _templates(deployment)), deployment)


def _templates(deployment: Deployment | None) -> dict[str, DeploymentTemplate]:
    if deployment is None:
        return {}
    out: dict[str, DeploymentTemplate] = {}
    for name, template in deployment.templates.items():
        whatsapp = getattr(template, "whatsapp", None)
        if whatsapp is not None:
            data = {
                "whatsapp_name": getattr(whatsapp, "name", name),
                "language": getattr(whatsapp, "language", None),
                "category": str(getattr(whatsapp, "category", "") or ""),
                "status": str(getattr(whatsapp, "status", "") or "APPROVED"),
            }
            parameters = tuple(getattr(whatsapp, "parameters", ()) or ())
            out[name] = DeploymentTemplate(name, "whatsapp", None, data, parameters)
            continue
        kind = str(getattr(template, "kind", None) or "text")
        data = {}
        items = getattr(template, "items", None)
        if items:
            data["options"] = [
                getattr(i, "title", i) if not isinstance(i, str) else i for i in items
            ]
            if any(not isinstance(i, str) for i in items):  # links, images: a carousel's columns
                data["items"] = [
                    {"title": i} if isinstance(i, str) else i.model_dump(exclude_none=True)
                    for i in items
                ]
        out[name] = DeploymentTemplate(name, kind, getattr(template, "text", None), data)
    return out
