"""Value types of the deployment file: durations, threading windows, time zones, hour ranges.

Each raises `PydanticCustomError` with its own error type (`duration`, `threading_window`,
`timezone`, `hours`) so the loader can give it its own FL5xx code; a `hint` in the error's
context becomes the diagnostic's help line.
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from functools import lru_cache
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BeforeValidator, Field, PlainSerializer
from pydantic_core import PydanticCustomError

from flowlang.diagnostics import suggest
from flowlang.durations import format_duration, parse_duration, written

MAX_THREADING_WINDOW = timedelta(hours=72)


def _fail(kind: str, message: str, hint: str) -> PydanticCustomError:
    """An error the loader maps to its own code; the message is used as written."""
    return PydanticCustomError(kind, "{message}", {"message": message, "hint": hint})


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value == 0:
        return timedelta(0)
    if not isinstance(value, str):
        raise _fail("duration", f"{value!r} is not a duration", _duration_hint(str(value)))
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise _fail("duration", str(exc), _duration_hint(value)) from None


def _duration_hint(text: str) -> str:
    if text.strip().isdigit():
        return f"add a unit: {text.strip()}s, {text.strip()}m or {text.strip()}h"
    return "write a number with a unit: 45s, 30m, 72h, 7d, 1h30m"


def _threading_window(value: Any) -> timedelta:
    window = _duration(value)
    if window > MAX_THREADING_WINDOW:
        raise _fail(
            "threading_window",
            f"threading window {written(window)} is longer than 72h",
            "use 0s (every message starts a new conversation) up to 72h",
        )
    return window


def _timezone(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(
            "timezone", f"{value!r} is not a time zone", "use an IANA name such as Europe/London"
        )
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        hint = suggest(
            value,
            _zone_names(),
            "use an IANA name such as Europe/London, America/New_York or Asia/Tokyo",
        )
        raise _fail("timezone", f"unknown time zone {value!r}", hint) from None
    return value


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


_RANGE = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")


def parse_time_range(text: str) -> tuple[time, time | None]:
    """`"08:00-18:00"` -> (08:00, 18:00); an end of `24:00` is returned as None (midnight)."""
    match = _RANGE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not an opening range; write e.g. 08:00-18:00")
    sh, sm, eh, em = (int(g) for g in match.groups())
    if sh > 23 or sm > 59 or em > 59 or eh > 24 or (eh == 24 and em != 0):
        raise ValueError(f"{text!r} has a time that does not exist; hours go 00:00 to 24:00")
    start = time(sh, sm)
    end = None if eh == 24 else time(eh, em)
    if end is not None and end <= start:
        raise ValueError(
            f"{text!r} ends before it starts; split a range past midnight into two days"
        )
    return start, end


def _hours(value: Any) -> str:
    if not isinstance(value, str):
        raise _fail(
            "hours", f"{value!r} is not an opening range", 'write a range such as "08:00-18:00"'
        )
    try:
        parse_time_range(value)
    except ValueError as exc:
        raise _fail("hours", str(exc), 'write e.g. "08:00-18:00"') from None
    return value


_SERIALIZE = PlainSerializer(format_duration, return_type=str)

Duration = Annotated[timedelta, BeforeValidator(_duration), _SERIALIZE]
ThreadingWindow = Annotated[timedelta, BeforeValidator(_threading_window), _SERIALIZE]
TimeZoneName = Annotated[str, BeforeValidator(_timezone)]
HoursRange = Annotated[str, BeforeValidator(_hours)]
Name = Annotated[str, Field(min_length=1)]
Proficiency = Annotated[int, Field(ge=1, le=5)]
