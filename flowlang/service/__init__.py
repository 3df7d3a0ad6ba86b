"""`flowlang serve`: the contact-center service on FastAPI + uvicorn (see docs/service.md)."""

from flowlang.service.app import create_app
from flowlang.service.settings import ServiceConfigError, Settings

__all__ = ["ServiceConfigError", "Settings", "create_app"]
