"""`flowlang users ...`: the service's agents, supervisors and admins, and their API tokens."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from flowlang.commands.deployment import load_or_exit, require
from flowlang.commands.options import deployment_option
from flowlang.commands.store import STORE_OPTION, StoreLocation, open_store
from flowlang.durations import parse_duration
from flowlang.errors import InputError
from flowlang.runtime.ports import ROLES
from flowlang.runtime.users import new_token, token_hash


@click.group()
def users() -> None:
    """Who may use `flowlang serve`'s API: add a user (their token is printed once), list
    them, revoke a token."""


@users.command()
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLES), help="what the user may do")
@click.option(
    "--store",
    "store_path",
    required=True,
    type=StoreLocation(),
    help="the SQLite store file (created when missing), or a postgresql:// URL",
)
@deployment_option(
    "the deployment file; an agent must be one of its agents (default: deployment.yaml in "
    "the working directory)"
)
@click.option(
    "--expires-in",
    "expires_in",
    metavar="DURATION",
    help="the token stops working after this long (30d, 12h, ...); without it, only when revoked",
)
def add(
    name: str, role: str, store_path: str | Path, deployment: Path | None, expires_in: str | None
) -> None:
    """Add a user and print their API token, once: it is stored only as a hash.

    \b
    Example:
      flowlang users add alice --role agent --store flowlang.db -d examples/deployment.yaml
      flowlang users add crm --role supervisor --store flowlang.db --expires-in 90d
    """
    now = datetime.now(UTC)
    expires_at = None
    if expires_in is not None:
        try:
            lifetime = parse_duration(expires_in)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--expires-in") from exc
        if not lifetime:
            raise click.BadParameter("a token must last longer than 0s", param_hint="--expires-in")
        expires_at = now + lifetime
    if role == "agent":
        deployment = require(deployment, [], "flowlang users add --role agent")
        agents = load_or_exit(deployment).agents
        if name not in agents:
            known = ", ".join(sorted(agents)) or "none"
            raise click.BadParameter(
                f"{name!r} is not an agent of {deployment} (its agents: {known})",
                param_hint="NAME",
            )
    token = new_token()
    with open_store(store_path) as db:
        try:
            db.add_user(name, role, token_hash(token), now, expires_at)
        except InputError as exc:
            raise click.BadParameter(str(exc), param_hint="NAME") from exc
    until = f", valid until {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else ""
    click.echo(f"added {role} {name}{until}; their API token (shown only now):", err=True)
    click.echo(token)


@users.command(name="list")
@STORE_OPTION
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
def list_users(store_path: str | Path, output_format: str) -> None:
    """Every user, their role and whether their token is revoked (never the token)."""
    with open_store(store_path) as db:
        found = db.users()
    if output_format == "json":
        rows = [
            {
                "name": u.name,
                "role": u.role,
                "created_at": u.created_at.isoformat(),
                "revoked_at": u.revoked_at.isoformat() if u.revoked_at else None,
                "expires_at": u.expires_at.isoformat() if u.expires_at else None,
            }
            for u in found
        ]
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for u in found:
        revoked = f"  revoked {u.revoked_at:%Y-%m-%d %H:%M}" if u.revoked_at else ""
        expires = f"  expires {u.expires_at:%Y-%m-%d %H:%M}" if u.expires_at else ""
        click.echo(f"{u.name}  {u.role}  added {u.created_at:%Y-%m-%d %H:%M}{expires}{revoked}")


@users.command()
@click.argument("name")
@STORE_OPTION
def revoke(name: str, store_path: str | Path) -> None:
    """Revoke a user's token: every request with it is refused from now on, their browser
    sessions end and their live stream closes."""
    with open_store(store_path) as db:
        known = db.user(name)
        if known is None:
            raise click.BadParameter(f"there is no user {name!r}", param_hint="NAME")
        if not db.revoke_user(name, datetime.now(UTC)):
            click.echo(f"{name}'s token was already revoked")
            return
    click.echo(f"revoked {name}'s token")
