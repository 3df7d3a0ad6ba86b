"""What the endpoints of one app share.

`Service` (`service_of(request)`, or as a FastAPI dependency, `service: Annotated[Service,
Depends(service_of)]`): the project, the store, the worker, the metrics, in the process that
runs the engine. Everything that touches the engine or the store goes through
`service.worker.call(...)`. `Gate` (`gate_of(request)`): what the webhook routes need, in every
process that takes webhooks (the service's front process too: `front.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol, TypeAlias

from fastapi import Request

from flowlang.events import InboundEvent
from flowlang.project import Project
from flowlang.service.dispatcher import Dispatcher
from flowlang.service.metrics import Metrics
from flowlang.service.outage_log import OutageLog
from flowlang.service.sessions import SessionRules
from flowlang.service.settings import ChannelSecrets, Settings
from flowlang.service.tokens import TokenReader
from flowlang.service.worker import Ack, Letter, Worker
from flowlang.store import Store, shown_location

_log = logging.getLogger("flowlang.service")

# A channel's accounts: each name one answers to (an `account_key`; X: its user id only) to all
# the names of that account
AccountNames: TypeAlias = Mapping[str, frozenset[str]]


class Taker(Protocol):
    """Where a webhook request's events are made durable: the intake, or the worker."""

    async def accept(
        self, channel: str, events: list[InboundEvent], letters: list[Letter], at: datetime
    ) -> Ack: ...


@dataclass
class Gate:
    """What the webhook routes need: the settings, the channels taken and their secrets, the
    metrics, and where the events go."""

    settings: Settings
    metrics: Metrics
    secrets: dict[str, ChannelSecrets]
    channels: list[str]  # the channels whose webhooks are taken
    taker: Taker  # the intake (or the worker, when the process has no intake of its own)
    # channel -> the names its accounts answer to (`account_names.account_key`); none: any
    accounts: dict[str, AccountNames] = field(default_factory=dict)

    def serves(self, channel: str) -> bool:
        return channel in self.channels

    def accounts_of(self, channel: str) -> AccountNames | None:
        """The accounts whose events the channel's route takes (None: any)."""
        return self.accounts.get(channel)

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


@dataclass
class Service:
    """One running service: its settings, the loaded project and the engine's worker."""

    settings: Settings
    project: Project
    store: Store
    worker: Worker
    metrics: Metrics
    dispatcher: Dispatcher  # the outbox's thread
    flow_files: dict[str, Path] = field(default_factory=dict)  # each flow's name -> its file
    started: list[str] = field(default_factory=list)  # which version each flow started on, why
    tokens: TokenReader | None = None  # (PostgreSQL) API tokens read off the engine's thread
    session_rules: SessionRules = field(default_factory=SessionRules)  # the browser's sessions
    store_outage: OutageLog = field(init=False)  # /ready's log while the store cannot be read

    def __post_init__(self) -> None:
        where = shown_location(self.store.path)
        self.store_outage = OutageLog(_log, f"/ready: store {where} unreachable")


def service_of(request: Request) -> Service:
    """The Service of the app that took `request`."""
    service: Service = request.app.state.service
    return service


def gate_of(request: Request) -> Gate:
    """The Gate of the app that took `request`."""
    gate: Gate = request.app.state.gate
    return gate
