"""Mounting the pages on the service's app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from flowlang.web import agent, session, supervisor
from flowlang.web.security import SecurityHeaders

STATIC = Path(__file__).resolve().parent / "static"


def mount_web(app: FastAPI) -> None:
    """Add the pages, their static files and their security headers to the service's app."""
    app.add_middleware(SecurityHeaders)  # every response: the service has no /docs or /redoc
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in (session.router, agent.router, supervisor.router):
        app.include_router(router)
