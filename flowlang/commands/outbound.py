"""`--outbound ADAPTER`: where the commands that run flows deliver the messages they allow."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from flowlang.config.models import Deployment

OUTBOUND_OPTION = click.option(
    "--outbound",
    "outbound",
    multiple=True,
    metavar="ADAPTER",
    help="also hand every allowed message to an adapter: console, jsonl:FILE (with each "
    "channel's send-API body), http:URL, or vendor (each channel's real send API, authorised "
    "from the environment variables the deployment's connections name)",
)


def outbound_adapter(
    spec: str, deployment: Deployment | None = None, channels: list[str] | None = None
) -> Any:
    """The adapter an `--outbound` value names; a usage error that says the choices. `vendor`
    sends through the deployment's connections (each of `channels` must have one)."""
    from flowlang.channels.outbound import ConsoleAdapter, HttpAdapter, JsonLinesAdapter

    kind, _, target = spec.partition(":")
    if kind == "console" and not target:
        return ConsoleAdapter()
    if kind == "vendor" and not target:
        return _vendor(deployment, channels)
    if kind == "jsonl" and target:
        return JsonLinesAdapter(target)
    if kind in ("http", "https") and target:
        # Both `http:https://host/path` and a bare `http://host/path` name the URL.
        return HttpAdapter(target if target.startswith(("http://", "https://")) else spec)
    raise click.BadParameter(
        f"{spec!r}: use console, jsonl:FILE, http:URL (e.g. http:https://host/outbound) or vendor",
        param_hint="--outbound",
    )


def _vendor(deployment: Deployment | None, channels: list[str] | None) -> Any:
    from flowlang.channels.senders import SenderSetupError, senders_for

    if deployment is None:
        raise click.BadParameter(
            "vendor sends through a deployment's connections: `flowlang send` and "
            "`flowlang replay` with -d/--deployment",
            param_hint="--outbound",
        )
    try:
        return senders_for(deployment, channels=channels)
    except SenderSetupError as exc:
        raise click.BadParameter(str(exc), param_hint="--outbound vendor") from None
