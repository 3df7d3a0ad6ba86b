"""The service's ASGI app: `create_app(settings)` builds everything one process runs.

    app = create_app(Settings(flows=(Path("flows/messaging.flow"),),
                              deployment=Path("deployment.yaml"), store=Path("cc.sqlite")))

Endpoints: the channel webhooks (`webhooks.py`), the API (`api.py`), the browser pages
(`flowlang/web/`: `/signin`, `/agent`, `/supervisor`), `GET /health` (the process answers), `GET
/ready` (the store answers and the flow is loaded; 503 otherwise), `GET /metrics` (Prometheus
text, for the scrapers with the metrics token: `metrics_access.py`). The worker thread
(`worker.py`) starts with the app's lifespan and stops with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from flowlang import __version__
from flowlang.account_names import account_key
from flowlang.channels.senders import SenderSetupError, VendorSenders, senders_for
from flowlang.config import Deployment
from flowlang.flow_routes import FlowRoutes, unloaded_transfers
from flowlang.project import Project, load_project
from flowlang.runtime.ports import OutboundAdapter, OutboundMessage
from flowlang.service import error_responses, webhooks
from flowlang.service.api import mount_api
from flowlang.service.dispatcher import APPLICATION_NAME as OUTBOX_NAME
from flowlang.service.dispatcher import Dispatcher
from flowlang.service.forward import Forwarder, ForwardToLeader
from flowlang.service.intake import Inbox, Intake
from flowlang.service.limits import BodyLimits
from flowlang.service.log_redaction import redact_access_log
from flowlang.service.metrics import CONTENT_TYPE_LATEST, Metrics
from flowlang.service.metrics_access import metrics_refusal, metrics_token
from flowlang.service.sessions import SessionRules
from flowlang.service.settings import ServiceConfigError, Settings, channel_secrets
from flowlang.service.signin_limit import FailedSignIns, SignInLimit
from flowlang.service.state import AccountNames, Gate, Service, service_of
from flowlang.service.tokens import TokenReader
from flowlang.service.versions import Started, starting_versions
from flowlang.service.worker import ENGINE_NAME, Cluster, UtcClock, Worker
from flowlang.store import (
    Store,
    count_unprocessed,
    database_errors,
    open_store,
)
from flowlang.store.inbox import InboxReader, SqliteInbox
from flowlang.store.leadership import Leadership
from flowlang.store.migrations import StoreError
from flowlang.store.postgres import PostgresStore
from flowlang.store.postgres_inbox import PostgresInbox
from flowlang.web.mount import mount_web

log = logging.getLogger("flowlang.service")


class Health(BaseModel):
    """The process answers."""

    status: str
    version: str


class Readiness(BaseModel):
    """Whether the service can take traffic, and why not."""

    ready: bool
    flow: str  # the first flow given
    flow_version: str
    flows: dict[str, str]  # each flow's name -> the version new conversations start on
    store: str  # "ok", or "unreachable" (the reason is in the service's log)
    problems: list[str]
    unprocessed: int  # inbound events made durable and not processed yet
    role: str  # single (its own store), leader or follower (sharing a PostgreSQL store)


class LogAdapter:
    """Logs each allowed message of a channel with no vendor send API (the web widget)."""

    name = "log"

    def send(self, message: OutboundMessage) -> None:
        log.info("-> %s %s: %s", message.channel, message.recipient, message.content)


def _senders(deployment: Deployment) -> VendorSenders:
    """Each channel's vendor sender, authorised from the environment (docs/senders.md); the web
    widget's messages are logged. A channel whose connection names no send credentials has no
    sender: its messages are kept as dead letters, for `flowlang replay` once it has one."""
    try:
        senders = senders_for(deployment, fallback=LogAdapter())
    except SenderSetupError as exc:
        raise ServiceConfigError(str(exc)) from None
    for key in deployment.channels:
        if key in senders.vendor_channels and key not in senders.senders:
            log.warning(
                "channel %s: no send credentials (channels.%s.connection.access_token_env); "
                "its messages are kept as dead letters, not sent",
                key,
                key,
            )
    return senders


def quiet_http_client_log() -> None:
    """Keep httpx's log to warnings: it logs every request's URL at INFO, query included (a
    live stream's one-use ticket is in its query). The vendors' senders use httpx, and so do
    the front process's calls to its engine (/ready, /metrics, its start)."""
    logging.getLogger("httpx").setLevel(logging.WARNING)


def create_app(
    settings: Settings,
    adapters: Sequence[OutboundAdapter] | None = None,
    on_deposed: Callable[[], None] | None = None,
    own_intake: bool = True,
) -> FastAPI:
    """The app for `settings`: the flow loaded and checked, the deployment's secrets read, the
    store opened. On a PostgreSQL store the process joins the others sharing it (the leader
    runs the engine; `on_deposed` is called if this one loses the lead, whose engine has then
    stopped; without it the process follows again and bids for the lead on new connections).
    The webhooks are made durable (in a SQLite store's inbox, in a PostgreSQL store's shared
    inbound log) by an intake thread of this app, unless `own_intake` is False: the engine
    process of `flowlang serve`, whose front process does it (`front.py`), and which wakes the
    worker (`worker.wake`). Raises ServiceConfigError (what to fix) when it cannot run."""
    quiet_http_client_log()
    projects = load_projects(settings)
    project = offline_until_signed_in(projects[0][1])
    assert project.deployment is not None
    secrets = channel_secrets(project.deployment, settings.insecure_dev)
    channels = webhook_channels(project, settings)
    accounts = webhook_accounts(project)
    senders = _senders(project.deployment) if adapters is None else None
    try:
        # the engine's: lookups mapped
        store = open_store(settings.store, mapped=True, name=ENGINE_NAME)
    except StoreError as exc:
        if senders is not None:
            senders.close()
        raise ServiceConfigError(str(exc)) from exc
    outbound = list(adapters or [senders or LogAdapter()])
    started = starting_versions(projects, store, datetime.now(UTC))
    first = replace(project, graph=started[0].program.graph, program=started[0].program)
    engine = first.engine(
        store=store,
        clock=UtcClock(),
        adapters=outbound,
        deliver=False,
        flows=[each.program for each in started[1:]],
    )
    metrics = Metrics()
    engine.listen(metrics.count_status)
    dispatcher = Dispatcher(
        lambda: open_store(settings.store, name=OUTBOX_NAME),
        outbound,
        metrics,
        retry=engine.deliverer.retry,
        interval=settings.delivery_interval,
        may_deliver=lambda outbox: _leads(worker, outbox),
    )
    reader, inbox = _inbox(store, own_intake)
    worker = Worker(
        engine,
        store,
        metrics,
        on_commit=dispatcher.wake,
        max_batch=settings.max_batch,
        cluster=_cluster(store, settings),
        on_deposed=on_deposed,
        inbox=reader,
    )
    if isinstance(inbox, PostgresInbox):  # the leader's own webhooks wake its engine directly
        inbox.announce = lambda: worker.role != "leader"
    intake = Intake(inbox, worker.wake, metrics, settings.max_batch) if inbox is not None else None
    service = Service(
        settings,
        project,
        store,
        worker,
        metrics,
        dispatcher,
        flow_files={p.graph.name: path for path, p in projects},
        started=[each.said for each in started]
        + _overlaps(started, project)
        + unloaded_transfers([each.program for each in started]),
        tokens=TokenReader(store.path) if isinstance(store, PostgresStore) else None,
        session_rules=SessionRules.of(project.deployment.access),
    )
    forwarder = (
        Forwarder(
            lambda: worker.role == "follower",
            worker.cluster.leadership.leader_url,
            worker.cluster.leadership.forwarding_key(),
        )
        if worker.cluster is not None
        else None
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        worker.start()
        try:
            dispatcher.start()
        except BaseException:
            worker.stop()
            raise
        if intake is not None:
            intake.start()
        if settings.insecure_dev:
            log.warning("--insecure-dev: webhooks without a configured secret are NOT verified")
        try:
            yield
        finally:
            if forwarder is not None:
                await forwarder.aclose()
            if intake is not None:
                intake.stop()  # the requests waiting made durable and answered first
            worker.stop()
            dispatcher.stop()
            store.close()
            if service.tokens is not None:
                service.tokens.close()
            if senders is not None:
                senders.close()

    app = FastAPI(
        title="flowlang service",
        version=__version__,
        description="Channel webhooks in; agents, supervisors and admins over the API.",
        lifespan=lifespan,
        # Swagger UI and ReDoc would load their scripts from a CDN into the service's origin;
        # the description stays at /openapi.json for any OpenAPI viewer (docs/service.md).
        docs_url=None,
        redoc_url=None,
    )
    redact_access_log()  # (uvicorn's, --log-level debug)
    app.state.service = service
    app.state.gate = Gate(settings, metrics, secrets, channels, intake or worker, accounts)
    error_responses.install(app)
    app.add_middleware(webhooks.WebhookPosts)  # innermost: inside the limits and headers
    if forwarder is not None:
        app.add_middleware(ForwardToLeader, forwarder=forwarder)
    app.add_middleware(
        BodyLimits,
        limit=settings.body_limit,
        timeout=settings.body_timeout,
        webhook_limits=webhook_body_limits(project),
    )
    if own_intake:  # it takes the clients' requests itself (else its front counts them)
        app.state.failed_signins = FailedSignIns.of(project.deployment.access)
        forwarded = forwarder.forwarded if forwarder is not None else None
        app.add_middleware(SignInLimit, failures=app.state.failed_signins, forwarded=forwarded)
    app.include_router(webhooks.router)
    mount_api(app, service)
    mount_web(app)
    app.add_api_route("/health", health, methods=["GET"], response_model=Health, tags=["ops"])
    app.add_api_route(
        "/ready",
        ready,
        methods=["GET"],
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "Not ready (see problems)"}},
        tags=["ops"],
    )
    app.add_api_route(
        "/metrics",
        metrics_route(metrics_token(project.deployment)),
        methods=["GET"],
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
        tags=["ops"],
    )
    return app


async def health() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok", version=__version__)


async def ready(request: Request) -> Any:
    """Readiness: the store answers and the flow is loaded (503 with the problems otherwise)."""
    service = service_of(request)
    problems: list[str] = []
    unprocessed = -1
    role = service.worker.role  # read once, before the store is: the answer agrees with itself
    if not service.worker.alive or role == "deposed":
        problems.append("the engine worker is not running")
    if not service.dispatcher.alive:
        problems.append("the outbox's delivery thread is not running")
    store = "ok"
    try:
        unprocessed = await asyncio.to_thread(count_unprocessed, service.store.path)
    except database_errors() as exc:  # the store cannot be read
        # Where the store is and why it failed are for the operator's log, not for any caller.
        service.store_outage.failed(exc)
        store = "unreachable"
        problems.append("the store cannot be read")
    else:
        service.store_outage.recovered()
    flows = {name: program.graph.version for name, program in service.worker.engine.flows.items()}
    name = next(iter(flows))
    body = Readiness(
        ready=not problems,
        flow=name,
        flow_version=flows[name],
        flows=flows,
        store=store,
        problems=problems,
        unprocessed=unprocessed,
        role=role,
    )
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)


def metrics_route(token: str | None) -> Callable[[Request], Awaitable[Response]]:
    """`GET /metrics` for the scrapers that send `token` (`metrics_access.py`)."""

    async def metrics_text(request: Request) -> Response:
        """Prometheus text: inbound events, processing latency, backlog, queues, deliveries
        (with the metrics token: Authorization: Bearer)."""
        refusal = metrics_refusal(request, token)
        if refusal is not None:
            return refusal
        return Response(service_of(request).metrics.text(), media_type=CONTENT_TYPE_LATEST)

    return metrics_text


def offline_until_signed_in(project: Project) -> Project:
    """In the service an agent is offline until they say they are available (the workspace's
    presence, or the API): work is never offered, nor auto-answered, for someone who is not
    there. An agent whose deployment entry sets `state:` starts in it; one who set their
    presence before a restart gets it back (`Engine.recover`)."""
    deployment = project.deployment
    if deployment is None:
        return project
    agents = {
        name: agent
        if "state" in agent.model_fields_set
        else agent.model_copy(update={"state": "offline"})
        for name, agent in deployment.agents.items()
    }
    return replace(project, deployment=deployment.model_copy(update={"agents": agents}))


def _leads(worker: Worker, outbox: Store) -> bool:
    """Whether this process delivers the outbox: alone on its store, or as the leader (its
    outbox connection fenced by the leader's epoch, as the engine's)."""
    if worker.cluster is None:
        return True
    if worker.role != "leader":
        return False
    if isinstance(outbox, PostgresStore):
        outbox.fence = worker.cluster.leadership.epoch
    return True


def _inbox(store: Store, writes: bool) -> tuple[InboxReader | None, Inbox | None]:
    """Where this process's intake, when it `writes`, makes its webhooks durable: on a SQLite
    store its inbox (`store/inbox.py`), read by the worker; on a PostgreSQL store the shared
    inbound log, on a connection of the intake's own, which the worker of whichever process
    leads reads (`store/postgres_inbox.py`)."""
    if isinstance(store, PostgresStore):
        if not writes:
            return None, None
        try:
            return None, PostgresInbox(store.path)
        except StoreError as exc:
            store.close()
            raise ServiceConfigError(str(exc)) from exc
    try:
        reader = InboxReader(store.path)
    except StoreError as exc:
        store.close()
        raise ServiceConfigError(str(exc)) from exc
    try:
        return reader, SqliteInbox(store.path) if writes else None
    except StoreError as exc:
        reader.close()
        store.close()
        raise ServiceConfigError(str(exc)) from exc


def _cluster(store: Store, settings: Settings) -> Cluster | None:
    """On PostgreSQL, this process's bid for the engine's lead among those sharing the store."""
    if not isinstance(store, PostgresStore):
        return None
    try:
        leadership = Leadership(store.path, settings.advertised())
    except database_errors() as exc:
        store.close()
        raise ServiceConfigError(f"{store.shown}: cannot connect: {exc}") from exc
    return Cluster(store, leadership)


def _overlaps(started: list[Started], project: Project) -> list[str]:
    """What several flows serve alike, and which of them takes it."""
    if len(started) < 2:
        return []
    routes = FlowRoutes([each.program for each in started], project.deployment)
    return [f"served by several flows: {overlap}" for overlap in routes.overlaps()]


def load_projects(settings: Settings) -> list[tuple[Path, Project]]:
    """Each flow given, checked and compiled against the deployment (in the order given)."""
    if not settings.flows:
        raise ServiceConfigError("no flow given: name at least one .flow file")
    for path, what in ((settings.deployment, "deployment"), *((f, "flow") for f in settings.flows)):
        if not path.is_file():
            raise ServiceConfigError(f"{path}: no such {what} file")
    projects: list[tuple[Path, Project]] = []
    names: dict[str, Path] = {}
    for flow in settings.flows:
        project, ws = load_project(flow, settings.deployment, settings.environment)
        if project is None or project.deployment is None:
            from flowlang.diagnostics import render_all

            shown = render_all(ws.errors, ws.sources) if ws.errors else "no deployment loaded"
            raise ServiceConfigError(f"the flow or deployment has errors:\n{shown}")
        name = project.graph.name
        if name in names:
            raise ServiceConfigError(
                f"{flow} and {names[name]} are both named {name!r}: a flow's name is what its "
                "versions are published under, so each flow needs its own"
            )
        names[name] = flow
        projects.append((flow, project))
    return projects


def webhook_accounts(project: Project) -> dict[str, AccountNames]:
    """Each channel's accounts in the deployment, by the names they answer to
    (`Account.answers_to`), each to all the names of its account: an event for none of them is
    kept as a dead letter, not processed.
    X's by their `user_id` only: every X
    webhook names the account it is for by that numeric id (`for_user_id`), and its handle
    only when an event happens to carry it. Raises ServiceConfigError for an X account
    without a `user_id`, whose events could not be told from other accounts'."""
    if project.deployment is None:
        return {}
    accounts: dict[str, AccountNames] = {}
    unnamed: list[str] = []
    for channel, entry in project.deployment.channels.items():
        if not entry.accounts:
            continue
        if channel in webhooks.X_CHANNELS:
            unnamed += [
                f"channels.{channel}.accounts[{i}] ({a.name})"
                for i, a in enumerate(entry.accounts)
                if a.user_id is None
            ]
            accounts[channel] = {
                account_key(a.user_id): a.answers_to() for a in entry.accounts if a.user_id
            }
        else:
            accounts[channel] = {n: a.answers_to() for a in entry.accounts for n in a.answers_to()}
    if unnamed:
        raise ServiceConfigError(
            "X accounts without their user_id, so the service cannot tell their webhooks from "
            "other accounts' (X names the account by that numeric id, for_user_id): "
            + ", ".join(unnamed)
            + '; give each its numeric X user id (user_id: "1450000000000000001")'
        )
    return accounts


def webhook_body_limits(project: Project) -> dict[str, int]:
    """Each channel's documented largest webhook request (`webhook_max_bytes`, the deployment's
    `channels.<key>.rules` over the registry's), for `BodyLimits`."""
    from flowlang.channels.registry import builtin_registry, load_registry

    assert project.deployment is not None
    overrides = {key: dict(c.rules) for key, c in project.deployment.channels.items()}
    registry = load_registry(overrides) if any(overrides.values()) else builtin_registry()
    return {k: r.webhook_max_bytes for k, r in registry.items() if r.webhook_max_bytes}


def webhook_channels(project: Project, settings: Settings) -> list[str]:
    """The channels whose webhooks are taken: the deployment's that the registry knows (every
    registry channel under --insecure-dev)."""
    from flowlang.channels.registry import builtin_registry

    registry = builtin_registry()
    if settings.insecure_dev:
        return sorted(registry)
    assert project.deployment is not None
    return sorted(c for c in project.deployment.channels if c in registry)
