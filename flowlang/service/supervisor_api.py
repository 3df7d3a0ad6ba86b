"""The supervisor's routes: real-time and historical reports, agents and their presence
(`/api/supervisor/...`). Admins may use them too."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel

from flowlang.acd import SkillsAcd
from flowlang.reporting import Scope
from flowlang.reporting.render import to_data
from flowlang.reporting.requested import period_data, requested_reports
from flowlang.runtime.engine import Engine
from flowlang.service.access import SupervisorUser, refused
from flowlang.service.agent_api import PresenceRequest, PresenceView, change_presence, now_of
from flowlang.service.state import Service, service_of

router = APIRouter(prefix="/api/supervisor", tags=["supervisor"])
ServiceDep = Annotated[Service, Depends(service_of)]
MEDIA = ("message", "social_dm", "social_public")


class ReportsView(BaseModel):
    """Reports as `flowlang report --format json` gives them."""

    period: dict[str, Any]
    reports: list[dict[str, Any]]


@router.get("/realtime", response_model=ReportsView)
async def realtime_view(user: SupervisorUser, service: ServiceDep) -> ReportsView:
    """Now: waiting and in progress per queue, active interactions per media type, each
    agent's state and load."""
    return await service.worker.call(lambda engine: _reports(service, engine, "realtime", Scope()))


@router.get("/reports/{kind}", response_model=ReportsView)
async def reports_view(
    kind: Literal["interactions", "agents", "queues", "all"],
    user: SupervisorUser,
    service: ServiceDep,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
    media: Annotated[list[Literal["message", "social_dm", "social_public"]], Query()] = [],  # noqa: B006
    queue: Annotated[list[str], Query()] = [],  # noqa: B006
    agent: Annotated[list[str], Query()] = [],  # noqa: B006
) -> ReportsView:
    """A period's reports from the event log (`from` and `to` are ISO 8601; without a zone,
    UTC), as `flowlang report KIND --format json`."""
    start, end = _utc(start), _utc(end)
    if start is not None and end is not None and end <= start:
        raise refused(
            "bad_period", "`to` must be after `from`", status.HTTP_422_UNPROCESSABLE_CONTENT
        )
    scope = Scope(start, end, set(media), set(queue), set(agent))
    return await service.worker.call(lambda engine: _reports(service, engine, kind, scope))


@router.get("/agents", response_model=list[PresenceView])
async def agents(user: SupervisorUser, service: ServiceDep) -> list[PresenceView]:
    """Every agent of the deployment and their presence."""

    def read(engine: Engine) -> list[PresenceView]:
        known = service.project.deployment.agents if service.project.deployment else {}
        records = engine.acd.agents if isinstance(engine.acd, SkillsAcd) else {}
        return [
            PresenceView(
                agent=name, state=str(records[name].state) if name in records else "offline"
            )
            for name in sorted(known)
        ]

    return await service.worker.call(read)


@router.put("/agents/{agent}/presence", response_model=PresenceView)
async def agent_presence(
    agent: str, body: PresenceRequest, user: SupervisorUser, service: ServiceDep
) -> PresenceView:
    """Set an agent's presence (e.g. away when they left without saying)."""
    deployment = service.project.deployment
    if deployment is None or agent not in deployment.agents:
        raise refused("unknown_agent", f"there is no agent {agent!r}", status.HTTP_404_NOT_FOUND)
    return await service.worker.call(lambda engine: change_presence(engine, agent, body.state))


def _reports(service: Service, engine: Engine, kind: str, scope: Scope) -> ReportsView:
    now = now_of(engine)
    reports, log = requested_reports(
        service.store, kind, scope, now, now, service.project.deployment
    )
    period = period_data(log, scope)
    return ReportsView(period=period, reports=[to_data(r) for r in reports])


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
