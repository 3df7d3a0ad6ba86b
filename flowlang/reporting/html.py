"""The HTML report: tables and charts (volume and wait over time, per queue) in one file."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from flowlang.reporting.charts import step_chart
from flowlang.reporting.render import display
from flowlang.reporting.reports import Report
from flowlang.reporting.timeline import Timeline

_ENV = Environment(
    loader=PackageLoader("flowlang.reporting", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def charts(series: Timeline) -> list[str]:
    """SVG charts: interactions routed, average wait of those answered, and interactions
    waiting over time, one line per queue."""
    every = _interval_words(series.interval)
    ticks, clock = time_axis(series)
    x_label = f"time ({series.start.tzname() or 'UTC'})"
    return [
        step_chart(
            values,
            title=title,
            x_label=x_label,
            x_format=clock,
            x_ticks=ticks,
            x_range=(0.0, ticks[-1]) if ticks else None,
            y_label=y_label,
        )
        for values, title, y_label in (
            (series.routed, f"Interactions routed per {every}, per queue", "interactions"),
            (
                series.average_wait,
                f"Average wait of answered interactions per {every} (minutes)",
                "minutes",
            ),
            (series.waiting, "Interactions waiting, per queue", "waiting"),
        )
    ]


TICK_STEPS = tuple(
    timedelta(minutes=m) for m in (15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080, 20160, 40320)
)
MAX_TICKS = 7


def time_axis(series: Timeline) -> tuple[list[float], Callable[[float], str]]:
    """A chart's time axis: ticks on round times (every 15 minutes up to every 4 weeks, at
    most `MAX_TICKS` steps, counted from midnight), the last one at or after the end of the
    data (so every chart of the series ends on the same tick, after the last moment shown), and
    their labels: the time of day; with the date on the first tick and at midnight when the
    period crosses midnight ("04 Jan 00:00"); the date alone when the ticks are days apart."""
    points = [*series.routed.values(), *series.waiting.values()]
    span = max((x for values in points for x, _ in values), default=0.0)
    start = series.start
    step = next(
        (s for s in TICK_STEPS if -(-span // s.total_seconds()) <= MAX_TICKS), TICK_STEPS[-1]
    )
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    every, offset = int(step.total_seconds()), int((start - midnight).total_seconds())
    first = midnight + timedelta(seconds=-(-offset // every) * every)  # the next round time
    ticks: list[float] = []
    moment = first
    while (x := (moment - start).total_seconds()) < span + every:
        ticks.append(x)
        moment += step
        if x >= span:
            break
    last = start + timedelta(seconds=span) - timedelta(microseconds=1 if span else 0)
    crosses = last.date() != start.date()

    def label(x: float) -> str:
        moment = start + timedelta(seconds=x)
        if step >= timedelta(days=1):
            return moment.strftime("%d %b")
        dated = crosses and (x == ticks[0] or moment.time() == midnight.time())
        return moment.strftime("%d %b %H:%M" if dated else "%H:%M")

    return ticks, label


def to_html(reports: Sequence[Report], title: str, period: str, series: Timeline | None) -> str:
    """A self-contained page: no scripts, no external files."""
    return "".join(html_chunks(reports, title, period, series))


def html_chunks(
    reports: Sequence[Report], title: str, period: str, series: Timeline | None
) -> Iterator[str]:
    """`to_html` piece by piece: each table's rows are rendered as they are read."""
    tables = [
        {
            "kind": report.kind,
            "title": report.title,
            "columns": report.columns,
            "notes": report.notes,
            "has_total": report.total is not None,
            "cells": _cells(report),
        }
        for report in reports
    ]
    # The charts are our own SVG, every text in them escaped by `step_chart`.
    svgs = [Markup(svg) for svg in charts(series)] if series is not None else []
    return _ENV.get_template("report.html.j2").generate(
        title=title, period=period, reports=tables, charts=svgs
    )


def _cells(report: Report) -> Iterator[list[tuple[str, bool]]]:
    rows = itertools.chain(report.rows, [report.total] if report.total is not None else [])
    for row in rows:
        yield [
            (display(c, row.get(c.key)), c.kind in ("int", "seconds", "percent"))
            for c in report.columns
        ]


def _interval_words(interval: timedelta) -> str:
    minutes = int(interval.total_seconds() // 60)
    if minutes % 1440 == 0:
        days = minutes // 1440
        return "day" if days == 1 else f"{days} days"
    if minutes % 60 == 0:
        hours = minutes // 60
        return "hour" if hours == 1 else f"{hours} hours"
    return f"{minutes} minutes"
