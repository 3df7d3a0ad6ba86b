"""What every endpoint of one app shares: the project, the store, the worker, the metrics.

An endpoint gets it with `service_of(request)` (or as a FastAPI dependency,
`service: Annotated[Service, Depends(service_of)]`). Everything that touches the engine or the
store goes through `service.worker.call(...)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request

from flowlang.project import Project
from flowlang.service.dispatcher import Dispatcher
from flowlang.service.intake import Intake
from flowlang.service.metrics import Metrics
from flowlang.service.settings import ChannelSecrets, Settings
from flowlang.service.worker import Worker
from flowlang.store import Store


@dataclass
class Service:
    """One running service: its settings, the loaded project and the engine's worker."""

    settings: Settings
    project: Project
    store: Store
    worker: Worker
    metrics: Metrics
    secrets: dict[str, ChannelSecrets]
    channels: list[str]  # the channels whose webhooks are taken
    dispatcher: Dispatcher  # the outbox's thread
    flow_files: dict[str, Path] = field(default_factory=dict)  # each flow's name -> its file
    started: list[str] = field(default_factory=list)  # which version each flow started on, why
    intake: Intake | None = None  # (SQLite store) the thread webhooks are made durable on

    def serves(self, channel: str) -> bool:
        return channel in self.channels

    def signing_secret(self, channel: str) -> str | None:
        """The channel's signing secret; None only under --insecure-dev (checked at start)."""
        secrets = self.secrets.get(channel)
        return secrets.signing_secret if secrets else None

    def verify_token(self, channel: str) -> str | None:
        secrets = self.secrets.get(channel)
        return secrets.verify_token if secrets else None

    def public_url_of(self, request: Request) -> str:
        """The URL the vendor sent the request to: --public-url and the path (a proxy changes
        the host the service sees), else the URL as received."""
        base = self.settings.public_url
        if not base:
            return str(request.url)
        query = request.url.query
        return base.rstrip("/") + request.url.path + (f"?{query}" if query else "")


def service_of(request: Request) -> Service:
    """The Service of the app that took `request`."""
    service: Service = request.app.state.service
    return service
