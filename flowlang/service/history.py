"""The supervisor dashboard's history: a period's figures per queue (today's by default) and
the charts of volume and wait over it.

A period that the live log (`dashboard.Board`) holds whole is read from it, at no cost to the
store; an older one is folded from the store as `flowlang report` folds it (from the latest
report checkpoint before it). Periods are whole days in UTC: `from` at its midnight, `to` to the
end of its day, and never past now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from flowlang.errors import FlowError
from flowlang.reporting.checkpoint import fold_for_report
from flowlang.reporting.html import charts
from flowlang.reporting.reports import Report, Scope, queue_performance
from flowlang.reporting.timeline import choose_interval, timeline
from flowlang.service.dashboard import Board

LONGEST_PERIOD = timedelta(days=92)


class PeriodError(FlowError, ValueError):
    """A period the dashboard cannot show; the message says why."""


@dataclass(frozen=True)
class Period:
    """Whole days in UTC, `first` to `last` included."""

    first: date
    last: date

    def bounds(self, now: datetime) -> tuple[datetime, datetime]:
        """From the first day's midnight to the end of the last day, or to `now` if sooner."""
        start = datetime.combine(self.first, time(), UTC)
        end = datetime.combine(self.last + timedelta(days=1), time(), UTC)
        return start, min(end, now)


def period_of(first: str | None, last: str | None, now: datetime) -> Period:
    """The period of the page's `from` and `to` (ISO dates; either missing: today)."""
    today = now.astimezone(UTC).date()
    start, end = _day(first, "from"), _day(last, "to")
    if start is None:
        start = end or today
    if end is None:
        end = max(start, today)
    if end < start:
        raise PeriodError(f"`to` ({end}) is before `from` ({start})")
    if start > today:
        raise PeriodError(f"`from` ({start}) is after today ({today})")
    if end - start > LONGEST_PERIOD:
        raise PeriodError(f"a period is {LONGEST_PERIOD.days} days at most")
    return Period(start, end)


def _day(text: str | None, name: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"`{name}` is a date written YYYY-MM-DD, not {text!r}") from None


@dataclass(frozen=True)
class History:
    """A period's queue performance and its charts (SVG)."""

    period: Period
    start: datetime
    end: datetime
    queues: Report
    charts: list[str]


def history(board: Board, period: Period, now: datetime) -> History:
    """The period's figures (runs on the worker)."""
    start, end = period.bounds(now)
    if board.complete_from(now) <= start:
        log = board.live(now)
    else:
        # Never the stored fold: writing it takes seconds, and every message would wait.
        ends = [None if end >= now else end]
        (log,) = fold_for_report(board.store, start, ends, now, store_fold=False)
    targets = board.targets()
    report = queue_performance(log, Scope(start, end), targets)
    span = max(end - start, timedelta(minutes=15))
    series = timeline(log, start, start + span, Scope(), choose_interval(span))
    return History(period, start, end, report, charts(series))
