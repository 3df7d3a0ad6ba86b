"""The dashboard's history: a period's queue figures are those `flowlang report queues` gives,
from the live log or the store alike; its charts' time axis says the date across midnight and
draws nothing below zero; a period that cannot be shown is refused with the reason."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowlang.config import load_deployment
from flowlang.reporting import InteractionLog, Scope, queue_performance
from flowlang.reporting.reports import DEFAULT_ANSWER_WITHIN, queue_row
from flowlang.service.dashboard import Board, DayTotals
from flowlang.service.history import LONGEST_PERIOD, PeriodError, history, period_of
from flowlang.store import SqliteStore
from tests.reporting import day as d

NOW = d.DAY + timedelta(hours=20)  # Monday evening, after the scripted day
NS = {"svg": "http://www.w3.org/2000/svg"}


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return d.run_day(tmp_path_factory.mktemp("day"))


@pytest.fixture
def board(store_path: Path) -> Board:
    deployment, problems = load_deployment(d.ROOT / "examples" / "deployment.yaml")
    assert deployment is not None, problems
    return Board(SqliteStore(store_path), deployment)


def expected_rows(
    store_path: Path, board: Board, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    with SqliteStore(store_path) as store:
        whole = InteractionLog.from_events(store.iter_events(end=end))
    return list(queue_performance(whole, Scope(start, end), board.targets()).rows)


def test_a_days_figures_are_the_queue_report_of_that_day(board: Board, store_path: Path) -> None:
    monday = history(board, period_of("2026-01-05", "2026-01-05", NOW), NOW)
    assert (monday.start, monday.end) == (d.DAY, NOW)  # today: up to now
    assert monday.queues.rows == expected_rows(store_path, board, d.DAY, NOW)
    retail = next(r for r in monday.queues.rows if r["queue"] == "Retail Banking")
    assert retail["routed"] == 3 and retail["answered"] >= 1


def test_a_period_older_than_the_live_log_is_folded_from_the_store(
    board: Board, store_path: Path
) -> None:
    start = datetime(2025, 12, 20, tzinfo=UTC)
    board.live(NOW)
    board._complete_from = d.SUNDAY  # as after days of running: the live log starts later
    assert board.complete_from(NOW) > start
    older = history(board, period_of("2025-12-20", "2026-01-04", NOW), NOW)
    assert older.end == d.DAY
    assert older.queues.rows == expected_rows(store_path, board, start, d.DAY)
    assert any(r["routed"] for r in older.queues.rows)  # Sunday's interactions are in it


def labels_and_lines(svg: str) -> tuple[list[str], float, list[float]]:
    """A chart's time-axis labels, the y of its x axis and the y of every point drawn."""
    chart = ET.fromstring(svg)
    texts = [t for t in chart.iterfind("svg:text", NS) if t.get("text-anchor") == "middle"]
    axis_y = max(float(line.get("y1", 0)) for line in chart.iterfind("svg:line", NS))
    ys = [
        float(point.split(",")[1])
        for line in chart.iterfind("svg:polyline", NS)
        for point in (line.get("points") or "").split()
    ]
    return [t.text or "" for t in texts], axis_y, ys


def test_charts_say_the_date_across_midnight_and_draw_nothing_below_zero(board: Board) -> None:
    two_days = history(board, period_of("2026-01-04", "2026-01-05", NOW), NOW)
    one_day = history(board, period_of("2026-01-05", None, NOW), NOW)
    assert len(two_days.charts) == len(one_day.charts) == 3
    for svg in two_days.charts:
        labels, axis_y, ys = labels_and_lines(svg)
        ticks = [label for label in labels if label[:1].isdigit()]
        # 44 hours, up to now (20:00): every 12 hours, the date at the first and at midnight
        assert ticks == ["04 Jan 00:00", "12:00", "05 Jan 00:00", "12:00", "06 Jan 00:00"]
        assert "time (UTC)" in labels
        assert ys and all(y <= axis_y for y in ys)  # nothing below zero
    for svg in one_day.charts:
        labels, axis_y, ys = labels_and_lines(svg)
        ticks = [label for label in labels if label[:1].isdigit()]
        assert ticks == ["00:00", "03:00", "06:00", "09:00", "12:00", "15:00", "18:00", "21:00"]
        assert ys and all(y <= axis_y for y in ys)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # 15-minute buckets up to 05:45, the waiting line up to 05:38: hourly ticks to 06:00
        (d.DAY + timedelta(hours=5, minutes=38), [f"0{h}:00" for h in range(7)]),
        # hourly buckets up to 07:00, the waiting line up to 06:07: hourly ticks to 07:00
        (d.DAY + timedelta(hours=6, minutes=7), [f"0{h}:00" for h in range(8)]),
        # hourly buckets up to 11:00, the waiting line up to 10:59:30: every 2 hours to 12:00
        (
            d.DAY + timedelta(hours=10, minutes=59, seconds=30),
            ["00:00", "02:00", "04:00", "06:00", "08:00", "10:00", "12:00"],
        ),
    ],
)
def test_every_chart_of_today_has_the_same_time_axis_reaching_past_now(
    board: Board, now: datetime, expected: list[str]
) -> None:
    """A user trial: at 10:59 the waiting chart's axis ended at 10:00 (its line ends at now,
    the bucketed charts' at the end of the current bucket), an hour before the others'."""
    today = history(board, period_of(None, None, now), now)
    for svg in today.charts:
        labels, _axis_y, _ys = labels_and_lines(svg)
        assert [label for label in labels if label[:1].isdigit()] == expected


@pytest.mark.parametrize(
    ("first", "last", "reason"),
    [
        ("2026-01-06", "2026-01-05", "`to` (2026-01-05) is before `from` (2026-01-06)"),
        ("2026-01-07", None, "`from` (2026-01-07) is after today (2026-01-05)"),
        ("yesterday", None, "`from` is a date written YYYY-MM-DD, not 'yesterday'"),
        ("2025-01-01", "2026-01-05", "a period is 92 days at most"),
    ],
)
def test_a_period_that_cannot_be_shown_says_why(first: str, last: str | None, reason: str) -> None:
    with pytest.raises(PeriodError) as refused:
        period_of(first, last, NOW)
    assert str(refused.value) == reason


DAYS = st.dates(min_value=date(2025, 6, 1), max_value=date(2026, 6, 1))


@given(st.one_of(st.none(), DAYS), st.one_of(st.none(), DAYS))
def test_any_period_given_is_shown_whole_or_refused(first: date | None, last: date | None) -> None:
    today = NOW.date()
    try:
        period = period_of(
            first.isoformat() if first else None, last.isoformat() if last else None, NOW
        )
    except PeriodError:
        start = first or last or today
        end = last or max(start, today)
        assert end < start or start > today or end - start > LONGEST_PERIOD
        return
    assert period.first == (first or last or today)
    assert period.last == (last or max(period.first, today))
    start, end = period.bounds(NOW)
    assert start <= end <= NOW and start.tzinfo is UTC


def test_todays_figures_kept_per_interaction_are_those_of_a_whole_recount(
    store_path: Path,
) -> None:
    """`DayTotals` recounts only the interactions each event changed; after every event of
    the scripted day its rows are those of queue performance over the whole log."""
    targets = {"Retail Banking": timedelta(minutes=5), "Social Public": timedelta(minutes=30)}
    with SqliteStore(store_path) as store:
        events = list(store.iter_events())
    for day in (d.SUNDAY, d.DAY):
        log, kept = InteractionLog(), DayTotals()
        for n, event in enumerate(events):
            log.apply(event)
            if event.get("conversation_id"):
                kept.touch(event["conversation_id"])
            if n % 3 and n != len(events) - 1:
                continue  # several events between two reads, as between two snapshots
            sums = kept.figures(log, day, targets)
            rows = {
                q: queue_row(q, s, targets.get(q, DEFAULT_ANSWER_WITHIN).total_seconds())
                for q, s in sums.items()
            }
            whole = queue_performance(log, Scope(start=day), targets).rows
            for row in whole:
                mine = rows.get(row["queue"]) or queue_row(row["queue"], {}, row["answer_within"])
                assert mine == pytest.approx(row), (n, row["queue"])
