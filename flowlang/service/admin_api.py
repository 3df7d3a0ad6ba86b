"""The admin's routes: publish a flow version, roll back (or forward) to one kept before, list
them (`/api/admin/flows...`).

A flow posted is checked as `flowlang validate` checks it, against the service's deployment:
with errors it is refused (422) with every diagnostic as JSON, and nothing changes. Once
published, a version is the one new conversations of its flow (the flow of its name, among those
the service runs) start on; conversations in flight keep the version they started on (the store
keeps every version's graph, so a restart keeps them too). Each flow's active version, who
published it and when are kept in the store, so a restart runs it (docs/service.md, "Flow
versions across restarts"); each publication is also written to the event log (`flow_published`:
version, flow, who).
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, Field

from flowlang.compiler.ir import FlowGraph
from flowlang.errors import InputError
from flowlang.language.parser import parse_text
from flowlang.project import load_project
from flowlang.runtime.engine import Engine
from flowlang.runtime.program import Program
from flowlang.service.access import AdminUser, refused
from flowlang.service.agent_api import now_of
from flowlang.service.state import Service, service_of

router = APIRouter(prefix="/api/admin", tags=["admin"])
ServiceDep = Annotated[Service, Depends(service_of)]
MAX_FLOW = 1024 * 1024


class FlowSource(BaseModel):
    text: str = Field(description="the flow's source, as in a .flow file", max_length=MAX_FLOW)


class Published(BaseModel):
    version: str
    flow: str
    previous: str


class VersionView(BaseModel):
    version: str
    flow: str
    current: bool
    published: list[datetime] = Field(description="when it was published over the API")
    published_by: list[str]


class FlowView(BaseModel):
    """One flow the service runs: the version new conversations start on, who made it the
    active one and when (an admin, or `file:<path>` when the file's version was taken at a
    start), and its file."""

    flow: str
    version: str
    published_by: str
    published_at: datetime | None
    file: str


class VersionsView(BaseModel):
    current: str = Field(description="the active version of the first flow given")
    flows: list[FlowView]
    versions: list[VersionView]


class FlowErrors(BaseModel):
    """Why a flow was refused: every diagnostic, as `flowlang validate --format json` gives
    them."""

    code: str
    reason: str
    diagnostics: list[dict[str, object]]


class FlowErrorsView(BaseModel):
    detail: FlowErrors


@router.get("/flows", response_model=VersionsView)
async def versions(user: AdminUser, service: ServiceDep) -> VersionsView:
    """Every flow the service runs with its active version, and every version the store keeps
    (in the order first run or published) with whether it is active."""

    def read(engine: Engine) -> VersionsView:
        published = service.store.flow_publications()
        active = service.store.active_flows()
        currents = {name: program.graph.version for name, program in engine.flows.items()}
        flows = []
        for name, version in currents.items():
            kept = active.get(name)
            ours = kept is not None and kept.version == version
            flows.append(
                FlowView(
                    flow=name,
                    version=version,
                    published_by=kept.by if kept is not None and ours else "",
                    published_at=kept.at if kept is not None and ours else None,
                    file=str(service.flow_files.get(name, "")),
                )
            )
        views = []
        for version, name in service.store.flow_versions():
            mine = [p for p in published if p["version"] == version]
            views.append(
                VersionView(
                    version=version,
                    flow=name,
                    current=currents.get(name) == version,
                    published=[p["at"] for p in mine],
                    published_by=[str(p.get("by", "")) for p in mine],
                )
            )
        first = next(iter(currents.values()))
        return VersionsView(current=first, flows=flows, versions=views)

    return await service.worker.call(read)


@router.post(
    "/flows",
    response_model=Published,
    status_code=status.HTTP_201_CREATED,
    responses={
        422: {
            "model": FlowErrorsView,
            "description": "the flow has errors, or is not one the service runs",
        }
    },
)
async def publish(body: FlowSource, user: AdminUser, service: ServiceDep) -> Published:
    """Check a flow against the deployment and publish it for the new conversations of the
    flow of its name."""
    program = await asyncio.to_thread(_checked, service, body.text)  # parsing is CPU work
    return await service.worker.call(lambda engine: _publish(engine, service, program, user.name))


@router.post(
    "/flows/{version}/publish",
    response_model=Published,
    responses={404: {"description": "no such version is kept"}},
)
async def republish(version: str, user: AdminUser, service: ServiceDep) -> Published:
    """Publish a version kept before (a rollback): new conversations of its flow start on it."""

    def run(engine: Engine) -> Published:
        graph = service.store.flow_version(version)
        if graph is None:
            raise refused(
                "unknown_version",
                f"no flow version {version} is kept",
                status.HTTP_404_NOT_FOUND,
            )
        program = Program(FlowGraph.from_dict(graph), engine.program.templates)
        return _publish(engine, service, program, user.name)

    return await service.worker.call(run)


def _checked(service: Service, text: str) -> Program:
    """The flow compiled for the deployment, or 422 with its diagnostics."""
    original = service.settings.flows[0]
    parsed = parse_text(text, original.name).flow
    served = service.flow_files.get(parsed.name) if parsed is not None else None
    # `use` paths are relative to the served file of that flow (the first flow's, for a new
    # name): the modules are read from the server's flows folder
    modules_from = (served or original).parent
    with tempfile.TemporaryDirectory(prefix="flowlang-publish-") as folder:
        flow = Path(folder) / original.name
        flow.write_text(text, "utf-8")
        project, ws = load_project(
            flow, service.settings.deployment, service.settings.environment, modules_from
        )
        diagnostics = [d.to_dict() for d in ws.diagnostics]
    if project is None:
        for d in diagnostics:
            if d["file"] == str(flow):
                d["file"] = original.name
        errors = FlowErrors(
            code="flow_has_errors",
            reason="the flow has errors; nothing was published",
            diagnostics=diagnostics,
        )
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=errors.model_dump())
    return project.program


def _publish(engine: Engine, service: Service, program: Program, by: str) -> Published:
    name = program.graph.name
    current = engine.flows.get(name)
    if current is None:
        try:
            engine.publish(program)  # refuses it, saying which flows run here
        except InputError as exc:
            errors = FlowErrors(code="unknown_flow", reason=str(exc), diagnostics=[])
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, detail=errors.model_dump()
            ) from None
    assert current is not None
    now = now_of(engine)
    with service.store.transaction():
        engine.publish(program)
        service.store.set_active_flow(name, program.graph.version, by, now)
        service.store.append_event(
            "flow_published",
            now,
            None,
            {"version": program.graph.version, "flow": name, "by": by},
        )
    return Published(version=program.graph.version, flow=name, previous=current.graph.version)
