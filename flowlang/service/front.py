"""The front process of `flowlang serve`: webhooks in, everything else on.

It verifies each webhook request, makes its events durable (the intake's group commit,
`intake.py`: on SQLite in the store's inbox, on PostgreSQL in the shared inbound log) and
answers it, then wakes the engine process (`engine_process.py`), which takes them and runs the
flows (on PostgreSQL, if it leads: docs/scaling.md). Every other request (the API, the pages,
the live streams, `/openapi.json`) goes on to the engine process (`forward.py`; 503 with
`Retry-After: 1` while it restarts) or, on PostgreSQL while that engine follows, straight to
the leader's front (`front_route.py`). `/health` is the front's own; `/ready` is the engine's
answer plus the front's problems (its intake; an engine not answering); `/metrics` adds up the
front's counters (webhooks taken, duplicates, refusals) and the engine's.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from flowlang import __version__
from flowlang.config.models import Access
from flowlang.service import error_responses, webhooks
from flowlang.service.app import (
    Health,
    Readiness,
    health,
    load_projects,
    quiet_http_client_log,
    webhook_accounts,
    webhook_body_limits,
    webhook_channels,
)
from flowlang.service.engine_process import EngineProcess
from flowlang.service.forward import Forwarder, ForwardToLeader
from flowlang.service.front_route import FrontRoute
from flowlang.service.intake import Inbox, Intake
from flowlang.service.limits import BodyLimits
from flowlang.service.log_redaction import redact_access_log
from flowlang.service.metrics import CONTENT_TYPE_LATEST, Metrics, merged_text
from flowlang.service.metrics_access import metrics_refusal, metrics_token
from flowlang.service.settings import ChannelSecrets, ServiceConfigError, Settings, channel_secrets
from flowlang.service.signin_limit import FailedSignIns, SignInLimit
from flowlang.service.state import AccountNames, Gate
from flowlang.store import count_unprocessed, database_errors, is_postgres_url, shown_location
from flowlang.store.inbox import SqliteInbox
from flowlang.store.leadership import FORWARD_NAME, Leadership
from flowlang.store.migrations import StoreError
from flowlang.store.postgres_inbox import PostgresInbox
from flowlang.web.security import SecurityHeaders

ENGINE_DOWN = "the engine process is not running (it is being started again)"


@dataclass
class Front:
    """What the front process knows: the settings, the channels and their secrets, and the
    flows' names and versions (from their files: the engine says which run)."""

    settings: Settings
    secrets: dict[str, ChannelSecrets]
    channels: list[str]
    flows: dict[str, str]
    metrics: Metrics = field(default_factory=Metrics)
    last_ready: dict[str, Any] | None = None  # the engine's last answer to /ready
    accounts: dict[str, AccountNames] = field(default_factory=dict)  # Gate.accounts
    metrics_token: str | None = None  # what /metrics asks of scrapers (None: answers no one)
    failed_signins: FailedSignIns = field(default_factory=lambda: FailedSignIns.of(Access()))
    webhook_limits: dict[str, int] = field(default_factory=dict)  # BodyLimits.webhook_limits

    @staticmethod
    def prepare(settings: Settings) -> Front:
        """Check the flows, the deployment and the channels' secrets; raises ServiceConfigError
        (what to fix) when the service cannot run."""
        quiet_http_client_log()
        projects = load_projects(settings)
        project = projects[0][1]
        assert project.deployment is not None
        secrets = channel_secrets(project.deployment, settings.insecure_dev)
        flows = {p.graph.name: p.graph.version for _, p in projects}
        channels = webhook_channels(project, settings)
        redact_access_log()  # (uvicorn's, --log-level debug)
        return Front(
            settings,
            secrets,
            channels,
            flows,
            accounts=webhook_accounts(project),
            metrics_token=metrics_token(project.deployment),
            failed_signins=FailedSignIns.of(project.deployment.access),
            webhook_limits=webhook_body_limits(project),
        )

    def app(self, engine: EngineProcess) -> FastAPI:
        """The front's app, handing on to `engine` (started: the store exists)."""
        key, who_leads = self._forwarding()
        route = FrontRoute(
            Forwarder(lambda: True, engine.url, key, mark=False),
            None if who_leads is None else Forwarder(lambda: True, who_leads.leader_url, key),
            lambda: engine.leads,
            self.settings.advertised(),
        )
        intake = Intake(self._inbox(engine), engine.wake, self.metrics, self.settings.max_batch)
        client = httpx.AsyncClient(timeout=5.0)

        @asynccontextmanager
        async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
            intake.start()
            try:
                yield
            finally:
                intake.stop()  # the requests waiting made durable and answered first
                await route.aclose()
                await client.aclose()
                if who_leads is not None:
                    who_leads.close()

        app = FastAPI(
            title="flowlang service",
            version=__version__,
            lifespan=lifespan,
            docs_url=None,
            redoc_url=None,
            openapi_url=None,  # the engine's, which describes every endpoint
        )
        app.state.gate = Gate(
            self.settings, self.metrics, self.secrets, self.channels, intake, self.accounts
        )
        error_responses.install(app)
        app.add_middleware(webhooks.WebhookPosts)
        app.add_middleware(ForwardToLeader, forwarder=route)
        app.add_middleware(
            BodyLimits,
            limit=self.settings.body_limit,
            timeout=self.settings.body_timeout,
            webhook_limits=self.webhook_limits,
        )
        # the clients' sign-ins are counted here, at the edge, where their address is known
        app.add_middleware(
            SignInLimit, failures=self.failed_signins, forwarded=route.engine.forwarded
        )
        app.add_middleware(SecurityHeaders)  # the front's own answers too (webhooks, /health)
        app.include_router(webhooks.router)

        async def ready(_request: Request) -> Any:
            """Readiness: the engine's, and the front's intake running."""
            body = await self._engine_ready(engine, client)
            if not intake.alive:
                body["problems"].append("the webhook intake is not running")
            body["ready"] = not body["problems"]
            return JSONResponse(body, status_code=200 if body["ready"] else 503)

        async def metrics_text(request: Request) -> Response:
            """Prometheus text: the front's counters and the engine's, added up (with the
            metrics token, which the engine process asks for too)."""
            refusal = metrics_refusal(request, self.metrics_token)
            if refusal is not None:
                return refusal
            texts = [self.metrics.text().decode()]
            url = engine.url()
            if url is not None:
                # The engine's share is missing while it restarts.
                with contextlib.suppress(httpx.HTTPError):
                    asked = {"Authorization": f"Bearer {self.metrics_token}"}
                    texts.append((await client.get(url + "/metrics", headers=asked)).text)
            return Response(merged_text(*texts), media_type=CONTENT_TYPE_LATEST)

        app.add_api_route("/health", health, methods=["GET"], response_model=Health)
        app.add_api_route("/ready", ready, methods=["GET"], response_model=Readiness)
        app.add_api_route("/metrics", metrics_text, methods=["GET"], response_class=Response)
        return app

    def _inbox(self, engine: EngineProcess) -> Inbox:
        """Where the intake writes. On PostgreSQL its commits wake the engine process through
        its pipe and, while that engine does not lead, the leader by NOTIFY."""
        store = self.settings.store
        try:
            if is_postgres_url(store):
                return PostgresInbox(str(store), announce=lambda: not engine.leads)
            return SqliteInbox(store)
        except StoreError as exc:
            raise ServiceConfigError(str(exc)) from exc

    def _forwarding(self) -> tuple[bytes, Leadership | None]:
        """The mark of a request one process of the service passed to another, and (on
        PostgreSQL) the connection that reads who leads. The mark is the store's on PostgreSQL
        (the fronts pass the API on to the leader's front), on SQLite one of the front's own
        (a client's header of that name is dropped)."""
        store = self.settings.store
        if not is_postgres_url(store):
            return secrets.token_urlsafe(32).encode(), None
        try:
            leadership = Leadership(str(store), self.settings.advertised(), FORWARD_NAME)
            return leadership.forwarding_key(), leadership
        except database_errors() as exc:
            raise ServiceConfigError(f"{shown_location(store)}: cannot connect: {exc}") from exc

    async def _engine_ready(self, engine: EngineProcess, client: httpx.AsyncClient) -> Any:
        url = engine.url()
        if url is not None:
            try:
                answer = await client.get(url + "/ready")
                body: dict[str, Any] = answer.json()
                self.last_ready = dict(body)
                return body
            except (httpx.HTTPError, ValueError):
                pass
        body = dict(self.last_ready) if self.last_ready else self._unseen()
        body["problems"] = [ENGINE_DOWN]
        if is_postgres_url(self.settings.store):
            body["role"] = "follower"  # its engine leads no more: it bids again once started
        try:
            body["unprocessed"] = await asyncio.to_thread(count_unprocessed, self.settings.store)
        except database_errors():
            body["store"], body["unprocessed"] = "unreachable", -1
            body["problems"].append("the store cannot be read")
        return body

    def _unseen(self) -> dict[str, Any]:
        name = next(iter(self.flows))
        return Readiness(
            ready=False,
            flow=name,
            flow_version=self.flows[name],
            flows=self.flows,
            store="ok",
            problems=[],
            unprocessed=-1,
            role="follower" if is_postgres_url(self.settings.store) else "single",
        ).model_dump()
