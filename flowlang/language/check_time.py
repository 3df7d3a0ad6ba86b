"""Time in expressions, statically: `now("Europe/London")`, `date("2026-12-25")`, their fields
(`.hour`, `.weekday`, `.date`, `.time_of_day`) and the time zone names the checker accepts.

The runtime's side is `flowlang/runtime/clock.py`; both read the field names from here.
"""

from __future__ import annotations

from datetime import date
from functools import cache
from zoneinfo import available_timezones

from flowlang import codes
from flowlang.diagnostics import Diagnostic, Span, error, listing, suggest

TIME, DATE = "time", "date"
TIME_TYPES = (TIME, DATE)

# field -> its type; "number", "text", "duration" as in exprtypes
DATE_FIELDS: dict[str, str] = {
    "year": "number",
    "month": "number",
    "day": "number",
    "weekday": "text",  # "Monday" ... "Sunday"
    "day_of_week": "number",  # 1 (Monday) ... 7 (Sunday)
}
TIME_FIELDS: dict[str, str] = {
    **DATE_FIELDS,
    "hour": "number",
    "minute": "number",
    "date": DATE,
    "time_of_day": "duration",  # since midnight, to compare with 9h30m
}
FIELDS: dict[str, dict[str, str]] = {TIME: TIME_FIELDS, DATE: DATE_FIELDS}


@cache
def zones() -> frozenset[str]:
    """The IANA time zone names this machine knows (the system's database or `tzdata`)."""
    return frozenset(available_timezones()) | {"UTC"}


def zone_problem(name: str, span: Span) -> Diagnostic | None:
    """FL126 for a time zone name that is not an IANA name, with the closest one."""
    if name in zones():
        return None
    return error(
        codes.UNKNOWN_TIME_ZONE,
        f"unknown time zone {name!r}",
        span,
        "not an IANA time zone",
        hint=suggest(name, sorted(zones()), 'write a zone like "Europe/London" or "UTC"'),
    )


def date_problem(text: str, span: Span) -> Diagnostic | None:
    """FL212 for a date that is not written as YYYY-MM-DD."""
    try:
        date.fromisoformat(text)
    except ValueError:
        return error(
            codes.BAD_DATE,
            f"{text!r} is not a date",
            span,
            "not YYYY-MM-DD",
            hint='write dates as "2026-12-25"',
        )
    return None


def field_problem(type_name: str, fields: dict[str, str], name: str, span: Span) -> Diagnostic:
    """FL112 for a field a time, a date or a queue's status does not have."""
    return error(
        codes.UNKNOWN_NAME,
        f"{_a(type_name)} has no field {name!r}",
        span,
        "unknown field",
        hint=suggest(name, fields, listing("fields", fields)),
    )


def _a(type_name: str) -> str:
    return f"{'an' if type_name[0] in 'aeiou' else 'a'} {type_name}"
