"""`--outbound ADAPTER`: where the commands that run flows deliver the messages they allow."""

from __future__ import annotations

from typing import Any

import click

OUTBOUND_OPTION = click.option(
    "--outbound",
    "outbound",
    multiple=True,
    metavar="ADAPTER",
    help="also hand every allowed message to an adapter: console, jsonl:FILE (with each "
    "channel's send-API body) or http:URL",
)


def outbound_adapter(spec: str) -> Any:
    """The adapter an `--outbound` value names; a usage error that says the choices."""
    from flowlang.channels.outbound import ConsoleAdapter, HttpAdapter, JsonLinesAdapter

    kind, _, target = spec.partition(":")
    if kind == "console" and not target:
        return ConsoleAdapter()
    if kind == "jsonl" and target:
        return JsonLinesAdapter(target)
    if kind in ("http", "https") and target:
        # Both `http:https://host/path` and a bare `http://host/path` name the URL.
        return HttpAdapter(target if target.startswith(("http://", "https://")) else spec)
    raise click.BadParameter(
        f"{spec!r}: use console, jsonl:FILE or http:URL (e.g. http:https://host/outbound)",
        param_hint="--outbound",
    )
