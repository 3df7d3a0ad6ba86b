"""Reports as text tables, CSV and JSON."""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Callable, Iterator, Sequence
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
    return "\n".join(table_lines(report))


def table_lines(report: Report) -> Iterator[str]:
    """`to_table` line by line: the rows are read twice (widths, then lines), never held."""
    headers = [c.header for c in report.columns]
    widths = [len(h) for h in headers]
    for cells in _cells(report):
        widths = [max(w, len(cell)) for w, cell in zip(widths, cells, strict=True)]
    numeric = [c.kind in ("int", "seconds", "percent") for c in report.columns]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(w) if right else cell.ljust(w)
            for cell, w, right in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    yield from (report.title, "", line(headers), line(["-" * w for w in widths]))
    empty = True
    for row in report.rows:
        empty = False
        yield line([display(c, row.get(c.key)) for c in report.columns])
    if empty:
        yield "(nothing in this period)"
    if report.total is not None:
        yield line(["-" * w for w in widths])
        yield line([display(c, report.total.get(c.key)) for c in report.columns])
    yield from (f"\n{note}" for note in report.notes)


def _cells(report: Report) -> Iterator[list[str]]:
    rows = itertools.chain(report.rows, [report.total] if report.total is not None else [])
    for row in rows:
        yield [display(c, row.get(c.key)) for c in report.columns]


def to_csv(report: Report) -> str:
    """CSV with a header row; lists joined with `;`, seconds and shares as numbers."""
    return "".join(csv_chunks(report))


def csv_chunks(report: Report) -> Iterator[str]:
    """`to_csv` a line at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([c.key for c in report.columns])
    rows = itertools.chain(report.rows, [report.total] if report.total is not None else [])
    cells = [(column.key, csv_cell(column)) for column in report.columns]
    for row in rows:
        get = row.get
        writer.writerow([cell(get(key)) for key, cell in cells])
        if buffer.tell() > 65536:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def csv_cell(column: Column) -> Callable[[Any], Any]:
    """What a CSV cell of `column` holds for a value: `raw`'s value, a list joined with `;`;
    chosen once per column (a report of 100,000 rows has two million cells)."""
    if column.kind in ("seconds", "percent"):

        def number(value: Any) -> Any:
            if value is None:
                return None
            if isinstance(value, datetime):
                return value.isoformat()
            return round(float(value), 4)

        return number
    if column.kind == "list":
        return lambda value: (
            value.isoformat() if isinstance(value, datetime) else ";".join(list(value))
        )

    def plain(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        return ";".join(value) if isinstance(value, list) else value

    return plain


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
    return "".join(json_chunks(reports, period))


def json_chunks(reports: Sequence[Report], period: dict[str, Any]) -> Iterator[str]:
    """`to_json` piece by piece: each report's rows are encoded as they are read."""
    data = {"period": period, "reports": [_streamed_data(r) for r in reports]}
    return json.JSONEncoder(indent=2, ensure_ascii=False).iterencode(data)


def _streamed_data(report: Report) -> dict[str, Any]:
    data = to_data(
        Report(report.kind, report.title, report.columns, [], report.total, report.notes)
    )
    data["rows"] = _EncodedRows(report)
    return data


class _EncodedRows(list):  # type: ignore[type-arg]
    """A report's rows as the JSON encoder takes a list (it checks the type), made as it
    reads them, so a long report is never held."""

    def __init__(self, report: Report) -> None:
        super().__init__()
        self._report = report

    def __iter__(self) -> Iterator[dict[str, Any]]:
        columns = self._report.columns
        return ({c.key: raw(c, row.get(c.key)) for c in columns} for row in self._report.rows)

    def __len__(self) -> int:
        return 1 if self._report.rows else 0  # the encoder only asks whether it is empty
