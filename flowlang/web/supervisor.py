"""The supervisor dashboard (`/supervisor`): for now the signed-in frame that the dashboard
fills (issue 22, part "sup")."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from flowlang.web.render import page
from flowlang.web.session import signed_in

router = APIRouter(include_in_schema=False)


@router.get("/supervisor")
async def supervisor_page(request: Request) -> Response:
    user = await signed_in(request, "supervisor", "admin")
    if isinstance(user, Response):
        return user
    return page(request, "supervisor.html.j2", user=user, title="Supervisor")
