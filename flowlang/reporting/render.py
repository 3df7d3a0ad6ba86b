"""Reports as text tables, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from flowlang.reporting.reports import Column, Report


def format_seconds(value: float) -> str:
    """3725 → 1:02:05, 65 → 1:05, 4.5 → 0:05 (rounded to the second)."""
    total = int(value + 0.5)  # half up: 4.5 s reads 0:05
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{seconds:02}" if hours else f"{minutes}:{seconds:02}"


def display(column: Column, value: Any) -> str:
    """A value as a person reads it in a table cell."""
    if value is None or value == "":
        return "—"
    if column.kind == "seconds":
        return format_seconds(float(value))
    if column.kind == "percent":
        return f"{float(value) * 100:.1f} %"
    if column.kind == "time" and isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if column.kind == "list":
        items = list(value)
        if not items:
            return "—"
        return " › ".join(items) if column.key == "flow_path" else ", ".join(items)
    return str(value)


def raw(column: Column, value: Any) -> Any:
    """A value for machines: seconds as numbers, times in ISO 8601, lists as lists."""
    if isinstance(value, datetime):
        return value.isoformat()
    if column.kind in ("seconds", "percent") and value is not None:
        return round(float(value), 4)
    if column.kind == "list":
        return list(value)
    return value


def to_table(report: Report) -> str:
    """An aligned text table with its title and totals row."""
    headers = [c.header for c in report.columns]
    body = [[display(c, row.get(c.key)) for c in report.columns] for row in report.rows]
    if report.total is not None:
        body.append([display(c, report.total.get(c.key)) for c in report.columns])
    widths = [max([len(h), *(len(r[i]) for r in body)]) for i, h in enumerate(headers)]
    numeric = [c.kind in ("int", "seconds", "percent") for c in report.columns]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(w) if right else cell.ljust(w)
            for cell, w, right in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    out = [report.title, "", line(headers), line(["-" * w for w in widths])]
    if not report.rows:
        out.append("(nothing in this period)")
    for index, cells in enumerate(body):
        if report.total is not None and index == len(body) - 1:
            out.append(line(["-" * w for w in widths]))
        out.append(line(cells))
    out.extend(f"\n{note}" for note in report.notes)
    return "\n".join(out)


def to_csv(report: Report) -> str:
    """CSV with a header row; lists joined with `;`, seconds and shares as numbers."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([c.key for c in report.columns])
    rows = [*report.rows, *([report.total] if report.total is not None else [])]
    for row in rows:
        cells = []
        for column in report.columns:
            value = raw(column, row.get(column.key))
            cells.append(";".join(value) if isinstance(value, list) else value)
        writer.writerow(cells)
    return buffer.getvalue()


def to_data(report: Report) -> dict[str, Any]:
    return {
        "report": report.kind,
        "title": report.title,
        "rows": [{c.key: raw(c, row.get(c.key)) for c in report.columns} for row in report.rows],
        "total": (
            {c.key: raw(c, report.total.get(c.key)) for c in report.columns}
            if report.total is not None
            else None
        ),
        "notes": report.notes,
    }


def to_json(reports: Sequence[Report], period: dict[str, Any]) -> str:
    return json.dumps(
        {"period": period, "reports": [to_data(r) for r in reports]}, indent=2, ensure_ascii=False
    )
