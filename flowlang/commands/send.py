"""`flowlang send`: a business-initiated message (a deployment template) to one customer."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from flowlang.commands.deployment import load_or_exit, require
from flowlang.commands.exits import ExitCode
from flowlang.commands.options import deployment_option
from flowlang.commands.outbound import OUTBOUND_OPTION, outbound_adapter
from flowlang.commands.store import StoreLocation, engine_store

if TYPE_CHECKING:
    from flowlang.config.models import Deployment


@click.command(name="send")
@click.option(
    "--store",
    "store_path",
    required=True,
    type=StoreLocation(),
    help="the SQLite store file (created if missing) or a postgresql:// URL: customers, "
    "opt-outs, limits",
)
@deployment_option(
    "the deployment file (channels, accounts, templates, portfolios; default: "
    "deployment.yaml in the working directory)"
)
@click.option("--channel", required=True, help="whatsapp, sms, ...")
@click.option("--to", "to", required=True, help="the customer: a phone number on WhatsApp and SMS")
@click.option(
    "--from-account",
    "account_name",
    help="the business account (name or id) it goes from; needed when the channel has several",
)
@click.option("--template", required=True, help="a template of the deployment file")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="a template parameter (repeatable)",
)
@OUTBOUND_OPTION
def send_command(
    store_path: str | Path,
    deployment: Path | None,
    channel: str,
    to: str,
    account_name: str | None,
    template: str,
    params: tuple[str, ...],
    outbound: tuple[str, ...],
) -> ExitCode:
    """Send a business-initiated message: a deployment template to a customer who has not
    written (or whose window has closed), through the channel policy like every send.

    WhatsApp allows approved templates, within the business portfolio's messaging limit; SMS
    allows any template to a number that has not opted out; other channels block it with the
    reason. Without --outbound the message waits in the store's outbox for the host to deliver.
    Exit 0 when allowed, 1 when blocked, 2 for a usage error.

    \b
    Example:
      flowlang send --store cc.db -d examples/deployment.yaml --channel whatsapp \\
        --to +447700900123 --template whatsapp_followup --param name=Ben
    """
    from flowlang.channels.policy import address_key
    from flowlang.channels.registry import builtin_registry
    from flowlang.project import sending_project
    from flowlang.runtime.initiate import InitiateError, recipient

    loaded = load_or_exit(require(deployment, [], "flowlang send"))
    registry = builtin_registry()
    if channel not in registry:
        raise click.BadParameter(
            f"{channel!r} is not a channel (channels: {', '.join(sorted(registry))})",
            param_hint="--channel",
        )
    account = _account(loaded, channel, account_name)
    try:
        to, phone = recipient(registry[channel].address, to)
    except InitiateError as exc:
        raise click.BadParameter(str(exc), param_hint="--to") from None
    values = dict(_param(p) for p in params)
    adapters = [outbound_adapter(spec, loaded, [channel]) for spec in outbound]
    project = sending_project(loaded)
    with engine_store(store_path, "flowlang send") as db:
        engine = project.engine(store=db, adapters=adapters, deliver=bool(adapters))
        try:
            outcome = engine.initiate(
                channel, address_key(account), to, template, datetime.now(UTC), values, phone
            )
        except InitiateError as exc:
            raise click.BadParameter(str(exc), param_hint="--template / --param") from None
        waiting = len(db.pending_outbound())
    (delivery,) = outcome.deliveries
    if delivery.status in ("sent", "degraded"):
        note = f" ({delivery.reason})" if delivery.reason else ""
        click.echo(
            f"allowed: {channel} {account} -> {to}, template {template!r} "
            f"({outcome.conversation_id}){note}"
        )
        if outcome.failed_sends:
            click.echo(f"delivery failed, kept in the outbox: {outcome.failed_sends[0].reason}")
        elif waiting and not adapters:
            click.echo(f"{waiting} message(s) wait in the outbox for the host to deliver")
        return ExitCode.OK
    click.echo(f"blocked ({delivery.reason_code}): {delivery.reason}")
    if delivery.suggestion:
        click.echo(f"  = help: {delivery.suggestion}")
    return ExitCode.FINDINGS


def _account(deployment: Deployment, channel: str, name: str | None) -> str:
    """The id of the business account a send goes from; a usage error that lists them."""
    declared = deployment.channels.get(channel)
    accounts = list(declared.accounts) if declared is not None else []
    if name is not None:
        found = next((a for a in accounts if a.is_named(name)), None)
        if found is None:
            listed = ", ".join(a.name for a in accounts) or "none"
            raise click.BadParameter(
                f"{name!r} is not a {channel} account of the deployment (accounts: {listed})",
                param_hint="--from-account",
            )
        return found.id or found.name
    if len(accounts) != 1:
        listed = ", ".join(a.name for a in accounts) or "none declared"
        raise click.BadParameter(
            f"say which {channel} account it goes from (accounts: {listed})",
            param_hint="--from-account",
        )
    return accounts[0].id or accounts[0].name


def _param(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise click.BadParameter(f"{text!r}: write NAME=VALUE", param_hint="--param")
    return name.strip(), value
