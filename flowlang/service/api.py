"""The API for agents, supervisors and admins (docs/api.md), mounted on the service's app."""

from __future__ import annotations

from fastapi import FastAPI

from flowlang.service import admin_api, agent_api, stream, supervisor_api, workspace_api
from flowlang.service.dashboard import Board
from flowlang.service.state import Service
from flowlang.service.stream import AgentFeed
from flowlang.service.work_ends import WorkEnds


def mount_api(app: FastAPI, service: Service) -> AgentFeed:
    """Add the `/api` routes to `app`, and to the engine the feed of the agents' live streams
    (told of messages the outbox gave up on too), the supervisors' dashboard
    (`app.state.agent_feed`, `app.state.board`) and where after-call work's history stops."""
    service.worker.engine.listen(WorkEnds(service.store))
    feed = AgentFeed(service.worker.engine, service.store)
    service.worker.engine.listen(feed)
    service.dispatcher.listen(feed.delivery_failed)
    app.state.agent_feed = feed
    board = Board(service.store, service.project.deployment)
    service.worker.engine.listen(board)
    app.state.board = board
    routers = (agent_api, workspace_api, stream, supervisor_api, admin_api)
    for router in (module.router for module in routers):
        app.include_router(router)
    return feed
