"""The agent workspace (`/agent`): the page; what it shows comes from the agent API and the
live stream, which its script (`static/agent.js`) uses with the session cookie."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from flowlang.web.render import page
from flowlang.web.session import signed_in

router = APIRouter(include_in_schema=False)


@router.get("/agent")
async def agent_page(request: Request) -> Response:
    user = await signed_in(request, "agent")
    if isinstance(user, Response):
        return user
    return page(request, "agent.html.j2", user=user, title="Agent", data={"agent": user.name})
