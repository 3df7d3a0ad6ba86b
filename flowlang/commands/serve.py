"""`flowlang serve`: the contact-center service (channel webhooks in, over HTTP)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import click

from flowlang.commands.deployment import require
from flowlang.commands.exits import ExitCode
from flowlang.commands.options import deployment_option
from flowlang.commands.store import StoreLocation

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from flowlang.service.settings import Settings


@click.command(name="serve")
@click.argument("flows", nargs=-1, required=True, type=click.Path(path_type=Path))
@deployment_option(
    "the deployment file (channels and their connections; default: deployment.yaml beside "
    "the first flow, else in the working directory)"
)
@click.option(
    "--store",
    "store",
    required=True,
    type=StoreLocation(),
    help="SQLite store file, or postgresql:// URL",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--public-url",
    default=None,
    help="the URL the vendors call this service at (behind a proxy); Twilio signs it",
)
@click.option(
    "--advertise-url",
    default=None,
    help="(several processes on one PostgreSQL store) the URL the other processes forward "
    "the API to while this one leads  [default: http://HOST:PORT]",
)
@click.option("--environment", "-e", default=None, help="deployment environment for the params")
@click.option(
    "--insecure-dev",
    is_flag=True,
    help="accept webhooks of channels without a configured signing secret (development only)",
)
@click.option(
    "--body-limit", default=1024 * 1024, show_default=True, type=click.IntRange(1), help="bytes"
)
@click.option(
    "--max-events",
    default=1000,
    show_default=True,
    type=click.IntRange(1),
    help="events in one webhook request; a request with more is kept whole as one dead letter",
)
@click.option("--header-timeout", default=10.0, show_default=True, type=click.FloatRange(0.01))
@click.option(
    "--body-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0.01),
    help="seconds for a request's whole body to arrive (408 after)",
)
@click.option(
    "--limit-concurrency",
    default=1000,
    show_default=True,
    type=click.IntRange(1),
    help="open connections at most (agents' live streams and idle keep-alive ones count); "
    "a request beyond gets 503 unread, so nothing is acknowledged and the vendor retries",
)
@click.option(
    "--backlog",
    default=2048,
    show_default=True,
    type=click.IntRange(1),
    help="connections the kernel queues before the service accepts them",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
def serve_command(
    flows: tuple[Path, ...],
    deployment: Path | None,
    store: str | Path,
    host: str,
    port: int,
    public_url: str | None,
    advertise_url: str | None,
    environment: str | None,
    insecure_dev: bool,
    body_limit: int,
    max_events: int,
    header_timeout: float,
    body_timeout: float,
    limit_concurrency: int,
    backlog: int,
    log_level: str,
) -> ExitCode:
    """Run the service: channel webhooks at /webhooks/CHANNEL, /health, /ready, /metrics.

    Signing secrets come from the environment variables the deployment's
    channels.CHANNEL.connection names. One process per SQLite file; several may share a
    PostgreSQL store (docs/scaling.md). Several FLOWS: each conversation starts on the flow
    whose `serve` lines name its channel and account (the first given when several do). A
    version published over the admin API still runs after a restart unless the flow's file
    changed; the choice is printed at start. See docs/service.md.

    \b
    Example:
      WHATSAPP_APP_SECRET=... flowlang serve flows/messaging.flow \\
        -d deployment.yaml --store cc.sqlite --public-url https://cc.example.com
    """
    from flowlang.service.settings import Settings

    deployment_file = require(deployment, flows, "flowlang serve")
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings(
        flows=flows,
        deployment=deployment_file,
        store=store,
        host=host,
        port=port,
        public_url=public_url,
        advertise_url=advertise_url,
        insecure_dev=insecure_dev,
        environment=environment,
        body_limit=body_limit,
        max_events=max_events,
        header_timeout=header_timeout,
        body_timeout=body_timeout,
        limit_concurrency=limit_concurrency,
        backlog=backlog,
    )
    return _serve_in_two_processes(settings, log_level)


def _serve_in_two_processes(settings: Settings, log_level: str) -> ExitCode:
    """This process takes the webhooks, an engine process it starts (and starts again when it
    dies) runs the flows and the API (docs/service.md, "Two processes"); on PostgreSQL when
    it leads, passing the API on to the leader when it follows (docs/scaling.md)."""
    from flowlang.service.engine_process import EngineExited, EngineProcess
    from flowlang.service.front import Front
    from flowlang.service.settings import ServiceConfigError

    try:
        front = Front.prepare(settings)
    except ServiceConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        return ExitCode.USAGE
    engine = EngineProcess(settings, log_level)
    try:
        try:
            engine.start()  # it says which flow versions run, or what stops it
            app = front.app(engine)
        except EngineExited:
            return ExitCode.USAGE
        except ServiceConfigError as exc:
            click.echo(f"error: {exc}", err=True)
            return ExitCode.USAGE
        _run(app, settings, log_level)
    finally:
        engine.stop()
    return ExitCode.OK


def _run(app: ASGIApp, settings: Settings, log_level: str) -> None:
    import uvicorn

    from flowlang.service.protocol import with_header_timeout

    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        http=with_header_timeout(settings.header_timeout),
        loop="uvloop",
        timeout_keep_alive=int(max(1, settings.keep_alive_timeout)),
        limit_concurrency=settings.limit_concurrency,
        backlog=settings.backlog,
        log_level=log_level,
        access_log=log_level == "debug",
        server_header=False,
    )
