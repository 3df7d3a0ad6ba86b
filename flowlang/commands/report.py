"""`flowlang report KIND`: interaction details, agent and queue performance, real-time views."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click

from flowlang.commands.deployment import load_or_exit, resolve
from flowlang.commands.options import deployment_option
from flowlang.commands.store import STORE_OPTION, open_store
from flowlang.private_files import open_private
from flowlang.reporting import InteractionLog, Report, Scope, choose_interval, timeline
from flowlang.reporting.html import html_chunks
from flowlang.reporting.render import csv_chunks, json_chunks, table_lines
from flowlang.reporting.requested import KINDS, period_data, requested_reports
from flowlang.reporting.timeline import Timeline

MEDIA = {
    "message": "message",
    "social-public": "social_public",
    "social_public": "social_public",
    "social-dm": "social_dm",
    "social_dm": "social_dm",
}


class Moment(click.ParamType):  # type: ignore[type-arg]
    """An ISO 8601 date or date-time; without a zone it is UTC."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            try:
                day = date.fromisoformat(text)
            except ValueError:
                self.fail(
                    f"{value!r} is not a date or time: use 2026-01-05, 2026-01-05T09:00 or "
                    "2026-01-05T09:00:00+01:00",
                    param,
                    ctx,
                )
            moment = datetime(day.year, day.month, day.day)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@click.command(name="report")
@click.argument("kind", type=click.Choice(KINDS))
@STORE_OPTION
@click.option("--from", "start", type=Moment(), help="start of the period (included)")
@click.option("--to", "end", type=Moment(), help="end of the period (excluded)")
@click.option(
    "--at",
    type=Moment(),
    help="realtime: the moment to show (default: now)",
)
@click.option(
    "--media",
    multiple=True,
    type=click.Choice(sorted(MEDIA)),
    help="only these media types (repeat for several)",
)
@click.option("--queue", "queues", multiple=True, help="only these queues (repeat for several)")
@click.option("--agent", "agents", multiple=True, help="only these agents (repeat for several)")
@deployment_option(
    "take each queue's service-level target (and queue list) from this deployment "
    "(default: deployment.yaml in the working directory)"
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "csv", "json", "html"]),
    default="table",
    show_default=True,
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="write to this file instead of the terminal",
)
@click.option(
    "--checkpoints/--no-checkpoints",
    default=True,
    show_default=True,
    help="start from the store's report checkpoint at or before --from (else from its stored "
    "fold), and leave one at --to when the period is over (docs/reporting.md)",
)
def report_command(
    kind: str,
    store_path: str | Path,
    start: datetime | None,
    end: datetime | None,
    at: datetime | None,
    media: tuple[str, ...],
    queues: tuple[str, ...],
    agents: tuple[str, ...],
    deployment: Path | None,
    output_format: str,
    output: Path | None,
    checkpoints: bool,
) -> None:
    """Reports from a store's event log.

    \b
    KIND is one of:
      interactions  each conversation: channel, customer, queues, agents, skills,
                    transfers, wait, handle time, wrap-up code, flow path
      agents        per agent: offered, answered, handled, messages, handle time,
                    share transferred
      queues        per queue: routed, answered, wait, abandoned, expired,
                    transferred, handle time, service level
      realtime      waiting and in progress per queue, longest waiting, active social
                    conversations and direct messages, agents' states (--at)
      all           every report above
      flows         per flow: milestones reached per day, conversations per split
                    branch (the period's events only)

    \b
    Examples:
      flowlang report queues --store cc.db --from 2026-01-05 --to 2026-01-06
      flowlang report agents --store cc.db --media message --format csv
      flowlang report all --store cc.db -d deployment.yaml --format html -o day.html
    """
    if start is not None and end is not None and end <= start:
        raise click.BadParameter("--to must be after --from", param_hint="--to")
    deployment = resolve(deployment)
    loaded = load_or_exit(deployment) if deployment is not None else None
    scope = Scope(start, end, {MEDIA[m] for m in media}, set(queues), set(agents))
    moment = at or datetime.now(UTC)
    with open_store(store_path) as db:
        reports, history = requested_reports(
            db, kind, scope, moment, datetime.now(UTC), loaded, checkpoints
        )
    period = _period_words(scope)
    chunks = _render(reports, output_format, history, scope, period, kind != "realtime")
    if output is None:
        for chunk in _buffered(chunks):
            click.echo(chunk, nl=False)
        return
    try:
        with open_private(output, "w") as out:
            out.writelines(_buffered(chunks))
    except OSError as exc:
        raise click.BadParameter(f"cannot write {output}: {exc.strerror}", param_hint="-o") from exc
    click.echo(f"{kind} report written to {output}")


def _render(
    reports: list[Report],
    output_format: str,
    log: InteractionLog,
    scope: Scope,
    period: str,
    with_timeline: bool,
) -> Iterator[str]:
    """The output piece by piece: a report over a large log is written as its rows are
    read, never held whole."""
    if output_format == "json":
        yield from json_chunks(reports, period_data(log, scope))
        yield "\n"
    elif output_format == "csv":
        for index, report in enumerate(reports):
            if index:
                yield "\n"
            yield from csv_chunks(report)
    elif output_format == "html":
        series = _period_timeline(log, scope) if with_timeline else None
        yield from html_chunks(reports, "flowlang contact-center report", period, series)
    else:
        for index, report in enumerate(reports):
            lines = table_lines(report)
            yield ("\n\n" if index else "") + next(lines)
            yield from ("\n" + line for line in lines)
        yield "\n"


def _buffered(chunks: Iterable[str], size: int = 1 << 16) -> Iterator[str]:
    """Small pieces gathered into writes of about `size` characters."""
    held: list[str] = []
    length = 0
    for chunk in chunks:
        held.append(chunk)
        length += len(chunk)
        if length >= size:
            yield "".join(held)
            held, length = [], 0
    if held:
        yield "".join(held)


def _period_timeline(log: InteractionLog, scope: Scope) -> Timeline | None:
    first = scope.start or min(
        (i.started_at for i in log.all_interactions() if i.started_at), default=None
    )
    last = scope.end or log.last_event_at
    if first is None or last is None or last <= first:
        return None
    return timeline(log, first, last, scope, choose_interval(last - first))


def _period_words(scope: Scope) -> str:
    start = scope.start.isoformat() if scope.start else "the first event"
    end = scope.end.isoformat() if scope.end else "the last event"
    media = f"; media: {', '.join(sorted(scope.media))}" if scope.media else ""
    return f"From {start} to {end}{media}"
