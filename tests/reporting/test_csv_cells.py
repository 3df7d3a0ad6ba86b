"""A CSV cell is chosen once per column (`render.csv_cell`), and holds for any value what the
per-cell `raw` gives (a list joined with `;`): the report's CSV does not change."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, get_args

from hypothesis import given
from hypothesis import strategies as st

from flowlang.reporting.render import csv_cell, raw
from flowlang.reporting.reports import Column, ColumnKind

VALUES = st.one_of(
    st.none(),
    st.integers(-(10**9), 10**9),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.datetimes(timezones=st.just(UTC)),
    st.lists(st.text(max_size=5), max_size=4),
)


def _per_cell(column: Column, value: Any) -> Any:
    found = raw(column, value)
    return ";".join(found) if isinstance(found, list) else found


@given(st.sampled_from(get_args(ColumnKind)), VALUES)
def test_a_cell_chosen_once_per_column_holds_what_raw_gives(kind: str, value: Any) -> None:
    column = Column("c", "C", kind)  # type: ignore[arg-type]
    try:
        expected = _per_cell(column, value)
    except (TypeError, ValueError) as problem:  # what raw refuses, the cell refuses too
        try:
            csv_cell(column)(value)
        except type(problem):
            return
        raise AssertionError(f"{kind}: {value!r} was refused by raw, not by the cell") from None
    assert csv_cell(column)(value) == expected


def test_the_details_of_a_conversation_as_csv() -> None:
    started = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    cells = [
        csv_cell(Column("started", "Started", "time"))(started),
        csv_cell(Column("wait", "Wait", "seconds"))(12.345678),
        csv_cell(Column("queues", "Queues", "list"))(["Loans", "Cards"]),
        csv_cell(Column("ended", "Ended", "time"))(None),
    ]
    assert cells == ["2026-03-02T09:30:00+00:00", 12.3457, "Loans;Cards", None]
