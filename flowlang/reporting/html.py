"""The HTML report: tables and charts (volume and wait over time, per queue) in one file."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

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
    clock = time_axis(series)
    x_label = f"time ({series.start.tzname() or 'UTC'})"
    return [
        step_chart(
            series.routed,
            title=f"Interactions routed per {every}, per queue",
            x_label=x_label,
            x_format=clock,
            y_label="interactions",
        ),
        step_chart(
            series.average_wait,
            title=f"Average wait of answered interactions per {every} (minutes)",
            x_label=x_label,
            x_format=clock,
            y_label="minutes",
        ),
        step_chart(
            series.waiting,
            title="Interactions waiting, per queue",
            x_label=x_label,
            x_format=clock,
            y_label="waiting",
        ),
    ]


def time_axis(series: Timeline) -> Callable[[float], str]:
    """The label of a moment on a chart's time axis: the time of day within one day; with the
    date ("29 Nov 23:00") when the period crosses midnight; the date alone for daily points."""
    last_x = max((x for points in series.routed.values() for x, _ in points), default=0.0)
    last = series.start + timedelta(seconds=last_x) - timedelta(microseconds=1 if last_x else 0)
    if series.interval >= timedelta(days=1):
        shape = "%d %b"
    elif last.date() != series.start.date():
        shape = "%d %b %H:%M"
    else:
        shape = "%H:%M"

    def label(x: float) -> str:
        return (series.start + timedelta(seconds=x)).strftime(shape)

    return label


def to_html(reports: Sequence[Report], title: str, period: str, series: Timeline | None) -> str:
    """A self-contained page: no scripts, no external files."""
    tables: list[dict[str, Any]] = []
    for report in reports:
        rows = [*report.rows, *([report.total] if report.total is not None else [])]
        tables.append(
            {
                "kind": report.kind,
                "title": report.title,
                "columns": report.columns,
                "notes": report.notes,
                "has_total": report.total is not None,
                "cells": [
                    [
                        (display(c, row.get(c.key)), c.kind in ("int", "seconds", "percent"))
                        for c in report.columns
                    ]
                    for row in rows
                ],
            }
        )
    # The charts are our own SVG, every text in them escaped by `step_chart`.
    svgs = [Markup(svg) for svg in charts(series)] if series is not None else []
    return _ENV.get_template("report.html.j2").render(
        title=title, period=period, reports=tables, charts=svgs
    )


def _interval_words(interval: timedelta) -> str:
    minutes = int(interval.total_seconds() // 60)
    if minutes % 1440 == 0:
        days = minutes // 1440
        return "day" if days == 1 else f"{days} days"
    if minutes % 60 == 0:
        hours = minutes // 60
        return "hour" if hours == 1 else f"{hours} hours"
    return f"{minutes} minutes"
