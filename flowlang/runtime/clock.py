"""Values read at run time by expressions: `now(zone)` from the run's clock (`Facts.now`, the
Engine's injected clock, so dry-runs and tests are deterministic), `date(text)`, `queue(name)`
from the ACD (`Facts.queue_status`), and the fields of times, dates and queue statuses
(`flowlang/language/check_time.py` and `check_queue.py` type them)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flowlang.errors import FlowRuntimeError

NOW = "$now"
"""The name a run's clock is read under (no flow name can be spelt so)."""
QUEUES = "$queues"
"""The name the ACD's queue status is read under: `queue(name)`."""

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@cache
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise FlowRuntimeError(f"unknown time zone {name!r}") from exc


def now_in(clock: Any, zone: Any = "UTC") -> datetime:
    """The run's time in `zone` (an IANA name)."""
    if not isinstance(clock, datetime):
        raise FlowRuntimeError("no clock: now() is only known while a flow runs")
    if not isinstance(zone, str):
        raise FlowRuntimeError(f"now() needs a time zone name, got {zone!r}")
    aware = clock if clock.tzinfo is not None else clock.replace(tzinfo=UTC)
    return aware.astimezone(_zone(zone))


def parse_date(text: Any) -> date:
    try:
        return date.fromisoformat(str(text).strip())
    except ValueError as exc:
        raise FlowRuntimeError(f"{text!r} is not a date (write YYYY-MM-DD)") from exc


_DATE_FIELDS: dict[str, Callable[[date], Any]] = {
    "year": lambda d: d.year,
    "month": lambda d: d.month,
    "day": lambda d: d.day,
    "weekday": lambda d: WEEKDAYS[d.weekday()],
    "day_of_week": lambda d: d.isoweekday(),
}
_TIME_FIELDS: dict[str, Callable[[datetime], Any]] = {
    **_DATE_FIELDS,
    "hour": lambda t: t.hour,
    "minute": lambda t: t.minute,
    "date": lambda t: t.date(),
    "time_of_day": lambda t: timedelta(hours=t.hour, minutes=t.minute, seconds=t.second),
}


def queue_status(read: Any, name: Any) -> dict[str, Any]:
    """`queue(name)`: the queue's figures from the ACD, by field name (all not set when the
    ACD knows nothing)."""
    if not isinstance(name, str):
        raise FlowRuntimeError(f"queue() needs a queue name, got {name!r}")
    status = read(name) if callable(read) else None
    if status is None:
        return {}
    return {
        "waiting": status.waiting,
        "agents_on_queue": status.agents_on_queue,
        "agents_available": status.agents_available,
        "estimated_wait": status.estimated_wait,
        "service_level": status.service_level,
    }


def field(value: Any, name: str) -> Any:
    """`value.name` for a time, a date or a queue's status; not set stays not set."""
    if value is None:
        return None
    if isinstance(value, dict):
        return value.get(name)
    if isinstance(value, datetime):
        return _TIME_FIELDS[name](value)
    if isinstance(value, date) and name in _DATE_FIELDS:
        return _DATE_FIELDS[name](value)
    raise FlowRuntimeError(f"{value!r} has no field {name!r}")
