"""The supervisor's routes: the live dashboard and its stream, real-time and historical
reports, agents and their presence (`/api/supervisor/...`). Admins may use them too."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from flowlang.reporting import Scope
from flowlang.reporting.render import to_data
from flowlang.reporting.requested import period_data, requested_reports
from flowlang.runtime.engine import Engine
from flowlang.service.access import SupervisorUser, credential_of, refused
from flowlang.service.agent_api import (
    ActionResult,
    PresenceRequest,
    PresenceView,
    change_presence,
    now_of,
    presence_of,
    result_of,
)
from flowlang.service.dashboard import STREAMS_PER_USER, Board
from flowlang.service.state import Service, service_of
from flowlang.service.stream import CLOSED, checker, sse

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


@router.get("/dashboard")
async def dashboard(user: SupervisorUser, request: Request) -> dict[str, Any]:
    """What the dashboard shows now: queues (waiting, longest wait, in progress, today's
    service level), the longest active interaction per media type, agents (presence, load per
    media type, the interactions they hold). See docs/api.md."""
    service, board = service_of(request), board_of(request)
    return await service.worker.call(lambda engine: board.snapshot(engine, now_of(engine)))


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
)
async def dashboard_stream(user: SupervisorUser, request: Request) -> StreamingResponse:
    """The dashboard's snapshot as Server-Sent Events: one at once, then one whenever the event
    log changes (at most every `Board`'s `pace` seconds)."""
    service, board = service_of(request), board_of(request)
    changed = board.watch(user.name)
    if changed is None:
        raise refused(
            "too_many_streams",
            f"{user.name} has {STREAMS_PER_USER} dashboard streams open already (other tabs or "
            "windows); close one first",
            status.HTTP_429_TOO_MANY_REQUESTS,
        )

    async def read() -> dict[str, Any]:
        return await service.worker.call(lambda engine: board.snapshot(engine, now_of(engine)))

    return StreamingResponse(
        snapshots(board, changed, read, checker(service, credential_of(request))),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def board_of(request: Request) -> Board:
    board: Board = request.app.state.board
    return board


async def snapshots(
    board: Board,
    changed: asyncio.Event,
    read: Callable[[], Awaitable[dict[str, Any]]],
    valid: Callable[[], Awaitable[bool]],
) -> AsyncIterator[str]:
    """The stream's text: a `snapshot` now and after each change (changes within `board.pace`
    seconds make one), a keep-alive comment every `board.heartbeat` seconds, and a `closed`
    event at the end once `valid()` (awaited every `board.recheck` seconds) says its user is
    signed out (the token revoked or expired, the browser's session ended)."""
    loop = asyncio.get_running_loop()
    try:
        changed.clear()
        yield sse({"type": "snapshot", **await read()})
        next_check = loop.time() + board.recheck
        next_beat = loop.time() + board.heartbeat
        while True:
            wait = min(next_check, next_beat) - loop.time()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=max(wait, 0.0))
            if changed.is_set():
                await asyncio.sleep(board.pace)
                changed.clear()
                yield sse({"type": "snapshot", **await read()})
            if loop.time() >= next_check:
                next_check = loop.time() + board.recheck
                if not await valid():
                    yield sse({"type": "closed", "reason": CLOSED})
                    return
            if loop.time() >= next_beat:
                next_beat = loop.time() + board.heartbeat
                yield ": keep-alive\n\n"
    finally:
        board.unwatch(changed)


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
        return [presence_of(engine, name) for name in sorted(known)]

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


@router.post("/interactions/{conversation_id}/pull-back", response_model=ActionResult)
async def pull_back(
    conversation_id: str, user: SupervisorUser, service: ServiceDep
) -> ActionResult:
    """Take a conversation from the agent who has it back to its queue: another agent gets it
    (never the same one), or it waits. 409 `not_with_agent` when no agent has it (or it was
    routed to one agent alone, with no queue to go back to); nothing changed."""

    def run(engine: Engine) -> ActionResult:
        outcome = engine.pull_back(conversation_id, user.name, now_of(engine))
        if outcome.note:
            raise refused("not_with_agent", outcome.note, status.HTTP_409_CONFLICT)
        return result_of(engine, outcome)

    return await service.worker.call(run)


def _reports(service: Service, engine: Engine, kind: str, scope: Scope) -> ReportsView:
    now = now_of(engine)
    reports, log = requested_reports(  # never writing the stored fold, on the engine's thread
        service.store, kind, scope, now, now, service.project.deployment, store_fold=False
    )
    period = period_data(log, scope)
    return ReportsView(period=period, reports=[to_data(r) for r in reports])


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
