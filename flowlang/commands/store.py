"""`flowlang store ...` and `flowlang replay`: look into a store, re-run dead letters.

Every command's `--store` takes a SQLite file or a `postgresql://` URL (`STORE_OPTION`,
`StoreLocation`), opened by `open_store`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from flowlang.commands.exits import ExitCode
from flowlang.commands.loading import load_program
from flowlang.commands.options import deployment_option
from flowlang.commands.outbound import OUTBOUND_OPTION, outbound_adapter
from flowlang.events import AgentEvent, BotEvent, InboundEvent, TimerEvent
from flowlang.reporting import stored_fold
from flowlang.reporting.checkpoint import FOLD_VERSION, SPILL_OVER, fold_for_report
from flowlang.store import Store, StoreError, database_errors, is_postgres_url
from flowlang.store import open_store as open_any_store
from flowlang.store.engine_hold import EngineBusy, holding_engine

# A dead letter's source starts with the kind of event it holds ("inbound:web", "agent:conv3").
EVENT_TYPES: dict[str, type[InboundEvent | AgentEvent | BotEvent | TimerEvent]] = {
    "inbound": InboundEvent,
    "agent": AgentEvent,
    "bot": BotEvent,
    "timer": TimerEvent,
}


class StoreLocation(click.ParamType):  # type: ignore[type-arg]
    """A `--store` value: a `postgresql://` URL as given, or the path of a SQLite file (which
    must exist when `exists`)."""

    name = "FILE|URL"

    def __init__(self, exists: bool = False) -> None:
        self.file = click.Path(exists=exists, dir_okay=False, path_type=Path)

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> str | Path:
        if isinstance(value, str) and is_postgres_url(value):
            return value
        path: Path = self.file.convert(str(value), param, ctx)
        return path


STORE_OPTION = click.option(
    "--store",
    "store_path",
    required=True,
    type=StoreLocation(exists=True),
    help="the SQLite store file, or a postgresql:// URL",
)


@contextmanager
def open_store(location: str | Path) -> Iterator[Store]:
    """The store (a SQLite file or a PostgreSQL URL), closed afterwards; a usage error that
    names it, never a traceback."""
    try:
        db = open_any_store(location)
    except StoreError as exc:
        raise click.BadParameter(str(exc), param_hint="--store") from exc
    with db:
        yield db


@contextmanager
def engine_store(location: str | Path, holder: str) -> Iterator[Store]:
    """The store, for a command that runs the engine on it (`holder`), while no service runs
    its engine (`store/engine_hold.py`): else a usage error saying which holds it."""
    with open_store(location) as db:
        try:
            with holding_engine(db, holder):
                yield db
        except EngineBusy as exc:
            raise click.BadParameter(str(exc), param_hint="--store") from None


@click.group()
def store() -> None:
    """Inspect a store file: customers, their history, dead letters, the outbox, report
    checkpoints and the stored fold."""


def _customer_id(db: Store, who: str) -> str:
    """A customer id, or KIND:VALUE of one of their identities (phone:+44..., web:visitor)."""
    if db.get_customer(who) is not None:
        return who
    kind, _, value = who.partition(":")
    found = db.find_customer(kind, value) if value else None
    if found is None:
        raise click.BadParameter(
            f"no customer {who!r}: give a customer id (c12) or an identity such as "
            "phone:+447700900123 or whatsapp:447700900123",
            param_hint="CUSTOMER",
        )
    return found.id


@store.command()
@STORE_OPTION
@click.argument("customer")
@click.option("--limit", default=50, show_default=True, help="messages per page")
@click.option("--before", type=int, help="the cursor printed at the end of the previous page")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
def history(
    store_path: str | Path, customer: str, limit: int, before: int | None, output_format: str
) -> None:
    """A customer's messages across conversations and channels, oldest first, a page at a time.

    CUSTOMER is a customer id or an identity, e.g. phone:+447700900123.
    """
    with open_store(store_path) as db:
        page = db.history(_customer_id(db, customer), before=before, limit=limit)
    if output_format == "json":
        data = {"messages": page.messages, "before": page.before}
        click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
        return
    for m in page.messages:
        arrow = "<-" if m["direction"] == "in" else "->"
        click.echo(f"{m['at']:%Y-%m-%d %H:%M} {m['conversation_id']:>8} {arrow} {_shown(m)}")
    if page.before is not None:
        click.echo(f"(older messages: --before {page.before})")


def _shown(message: dict[str, Any]) -> str:
    content = message["content"]
    if isinstance(content, dict):
        private = f"(privately, by {content['privately_by']}) " if "privately_by" in content else ""
        for key in ("text", "name", "url"):
            if content.get(key):
                return private + str(content[key])
    return json.dumps(content, ensure_ascii=False, default=str)


@store.command()
@STORE_OPTION
@click.argument("who")
def customer(store_path: str | Path, who: str) -> None:
    """A customer, every identity they are known by, what they claimed without proof, and their
    conversations.

    WHO is a customer id or an identity, e.g. phone:+447700900123 or x:4470011.
    """
    with open_store(store_path) as db:
        customer_id = _customer_id(db, who)
        view = db.get_customer(customer_id)
        identities = db.identities_of(customer_id)
        claims = db.claims_of(customer_id)
        conversations = db.conversations_of(customer_id)
    assert view is not None
    click.echo(f"{view.id}  {view.name or '(no name)'}  {view.phone or ''}".rstrip())
    for kind, value in identities:
        click.echo(f"  {kind}: {value}")
    for claim in claims:
        click.echo(
            f"  {claim.kind}: {claim.value} (unverified: claimed in {claim.conversation_id} "
            f"on {claim.at:%Y-%m-%d %H:%M})"
        )
    for conv in conversations:
        agent = f", agent {conv.last_agent}" if conv.last_agent else ""
        click.echo(
            f"  {conv.id}: {conv.channel}, {conv.started_at:%Y-%m-%d %H:%M}, {conv.status}{agent}"
        )


@store.command(name="dead-letters")
@STORE_OPTION
@click.option("--all", "show_all", is_flag=True, help="include those already replayed")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
def dead_letters(store_path: str | Path, show_all: bool, output_format: str) -> None:
    """Events that could not be processed, with the reason; `flowlang replay` re-runs them."""
    with open_store(store_path) as db:
        letters = db.dead_letters(include_replayed=show_all)
    if output_format == "json":
        click.echo(json.dumps(letters, indent=2, ensure_ascii=False, default=str))
        return
    for letter in letters:
        done = f" (replayed {letter['replayed_at']})" if letter["replayed_at"] else ""
        click.echo(f"#{letter['id']} {letter['at']} {letter['source']}: {letter['reason']}{done}")
    click.echo(f"{len(letters)} dead letter(s)")


@store.command()
@STORE_OPTION
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
def outbox(store_path: str | Path, output_format: str) -> None:
    """Messages allowed but not delivered yet: each with its attempts, last error and next try."""
    with open_store(store_path) as db:
        pending = db.pending_outbound()
    if output_format == "json":
        rows = [vars(p) for p in pending]
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False, default=str))
        return
    for p in pending:
        retry = f", next try {p.next_attempt_at:%Y-%m-%d %H:%M:%S}" if p.next_attempt_at else ""
        error = f": {p.last_error}" if p.last_error else ""
        if p.delivered_to:
            error += f" (already delivered to {', '.join(p.delivered_to)})"
        click.echo(
            f"#{p.id} {p.queued_at:%Y-%m-%d %H:%M:%S} {p.conversation_id} "
            f"{p.message.get('channel')} -> {p.message.get('recipient')}: "
            f"{_shown(p.message)}  ({p.attempts} attempt(s){retry}){error}"
        )
    click.echo(f"{len(pending)} message(s) waiting")


@store.command()
@STORE_OPTION
@click.option("--clear", is_flag=True, help="drop them all (reports then fold the whole log)")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
def checkpoints(store_path: str | Path, clear: bool, output_format: str) -> None:
    """The report checkpoints kept: the moment each folds the log up to, latest first."""
    with open_store(store_path) as db:
        if clear:
            try:
                dropped = db.clear_report_checkpoints()
            except database_errors() as exc:
                raise click.ClickException(f"cannot drop the checkpoints: {exc}") from exc
            click.echo(f"{dropped} checkpoint(s) dropped")
            return
        kept = db.report_checkpoints()
    if output_format == "json":
        rows = [
            {**row, "at": row["at"].isoformat(), "used": row["version"] == FOLD_VERSION}
            for row in kept
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    for row in kept:
        unused = (
            f"  (unused: folded by version {row['version']}, reports use {FOLD_VERSION})"
            if row["version"] != FOLD_VERSION
            else ""
        )
        click.echo(
            f"{row['at'].isoformat()}  {row['bytes'] / 1024:,.0f} KiB  "
            f"(taken when the log ended at event #{row['through_seq']:,}){unused}"
        )
    click.echo(f"{len(kept)} checkpoint(s)")


@store.command()
@STORE_OPTION
@click.option("--clear", is_flag=True, help="drop it (reports then fold from the first event)")
def fold(store_path: str | Path, clear: bool) -> None:
    """Fold the whole event log and store the fold: reports then fold only the events written
    after it (a stored fold the log still agrees with is taken up, not folded again)."""
    with open_store(store_path) as db:
        if clear:
            try:
                dropped = db.clear_stored_fold()
            except database_errors() as exc:
                raise click.ClickException(f"cannot drop the stored fold: {exc}") from exc
            click.echo("stored fold dropped" if dropped else "no stored fold")
            return
        fold_for_report(db, None, [None], datetime.now(UTC), True, SPILL_OVER, fold_every=0)
        found = db.stored_fold(stored_fold.VERSION)
    if found is None:
        raise click.ClickException("the fold was not stored: the store is read-only")
    click.echo(
        f"stored fold: {found['items']:,} interactions, {found['events']:,} events "
        f"(through event #{found['through_seq']:,})"
    )


@click.command()
@STORE_OPTION
@click.argument("flow", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@deployment_option()
@click.option("--id", "letter_ids", type=int, multiple=True, help="a dead letter to replay")
@click.option("--all", "replay_all", is_flag=True, help="replay every dead letter")
@OUTBOUND_OPTION
def replay(
    store_path: str | Path,
    flow: Path,
    deployment: Path | None,
    letter_ids: tuple[int, ...],
    replay_all: bool,
    outbound: tuple[str, ...],
) -> ExitCode:
    """Re-run dead letters (after a fix) and the events a crash left unprocessed, and deliver
    the messages waiting in the outbox.

    An `outbound:` letter (a message given up on) is sent again; any other letter's event is
    processed again. A letter that fails again is settled and a new letter with today's reason
    takes its place. Exit 0 when everything replayed, 1 when some failed again.
    """
    if not letter_ids and not replay_all:
        raise click.UsageError("say which: --id N (repeatable) or --all")
    project = load_program(flow, deployment)
    adapters = [outbound_adapter(spec, project.deployment) for spec in outbound]
    with engine_store(store_path, "flowlang replay") as db:
        # Without --outbound the messages stay in the outbox for the host to deliver.
        engine = project.engine(store=db, adapters=adapters, deliver=bool(adapters))
        failed = _replay(engine, db, set(letter_ids), replay_all)
        waiting = len(db.pending_outbound())
    if waiting:
        how = "" if adapters else "; the host delivers them, or replay again with --outbound"
        click.echo(f"{waiting} message(s) wait in the outbox (flowlang store outbox){how}")
    return ExitCode.FINDINGS if failed else ExitCode.OK


def _replay(engine: Any, db: Store, letter_ids: set[int], replay_all: bool) -> int:
    recovered = [o for o in engine.recover() if isinstance(o.event, InboundEvent)]
    if recovered:
        click.echo(f"processed {len(recovered)} event(s) a crash had left unprocessed")
    chosen = [letter for letter in db.dead_letters() if replay_all or letter["id"] in letter_ids]
    failed = 0
    for letter_id in sorted(letter_ids - {letter["id"] for letter in chosen}):
        click.echo(f"#{letter_id}: no such dead letter waiting (see `flowlang store dead-letters`)")
        failed += 1
    for letter in chosen:
        kind = str(letter["source"]).partition(":")[0]
        if kind == "payload":
            failed += _replay_payload(engine, db, letter)
            continue
        if kind == "outbound":
            failed += _resend(engine, db, letter)
            continue
        if kind not in EVENT_TYPES:
            click.echo(f"#{letter['id']}: cannot replay a {letter['source']} letter")
            failed += 1
            continue
        try:
            event = EVENT_TYPES[kind].model_validate(letter["payload"])
        except ValueError as exc:
            click.echo(f"#{letter['id']}: its payload is not a valid {kind} event: {exc}")
            failed += 1
            continue
        outcome = engine.process_inbound(event) if kind == "inbound" else engine.handle(event)
        db.mark_replayed(letter["id"], datetime.now(UTC))
        if outcome.dead_lettered:
            click.echo(f"#{letter['id']}: failed again, kept as a new dead letter: {outcome.note}")
            failed += 1
        else:
            click.echo(f"#{letter['id']}: replayed ({outcome.conversation_id})")
    return failed


def _resend(engine: Any, db: Store, letter: dict[str, Any]) -> int:
    """Send again a message whose delivery was given up on."""
    now = datetime.now(UTC)
    outcome = engine.resend(letter["payload"], now)
    db.mark_replayed(letter["id"], now)
    blocked = [d for d in outcome.deliveries if d.status not in ("sent", "degraded")]
    if blocked:
        why = blocked[0]
        click.echo(f"#{letter['id']}: not sent, blocked ({why.reason_code}): {why.reason}")
        return 1
    if outcome.failed_sends:
        failure = outcome.failed_sends[0]
        kept = "kept in the outbox" if failure.retry_at else "kept as a new dead letter"
        click.echo(f"#{letter['id']}: delivery failed again, {kept}: {failure.reason}")
        return 1
    click.echo(f"#{letter['id']}: delivered ({letter['payload'].get('conversation_id')})")
    return 0


def _replay_payload(engine: Any, db: Store, letter: dict[str, Any]) -> int:
    """Normalise a kept webhook body again (after a normaliser fix) and process its events."""
    from flowlang.channels.ingest import ingest, kept_body

    payload = letter["payload"]
    received = datetime.fromisoformat(str(payload["received_at"]))
    result = ingest(engine, str(payload["channel"]), kept_body(payload), received_at=received)
    db.mark_replayed(letter["id"], datetime.now(UTC))
    if result.error is not None:
        click.echo(f"#{letter['id']}: failed again, kept as a new dead letter: {result.error}")
        return 1
    click.echo(f"#{letter['id']}: replayed, {len(result.outcomes)} event(s)")
    return 0
