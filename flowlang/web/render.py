"""The pages' Jinja2 templates (autoescaped) and how one is rendered into a response."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from flowlang import __version__
from flowlang.runtime.ports import User

TEMPLATES = Path(__file__).resolve().parent / "templates"
ENV = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(("html", "j2")),
    undefined=StrictUndefined,
)


def page(
    request: Request,
    template: str,
    user: User | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """`template` rendered for `user` (None: signed out). `context["data"]`, if any, reaches
    the page's script as JSON (`<script type="application/json" id="page-data">`)."""
    context.setdefault("data", None)
    html = ENV.get_template(template).render(
        request=request, user=user, version=__version__, **context
    )
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})
