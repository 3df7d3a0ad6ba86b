"""Durations as admins write them (`30s`, `10m`, `72h`, `7d`, `1h30m`) <-> `timedelta`."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_WHOLE = re.compile(r"(?:\d+[dhms])+")
_PART = re.compile(r"(\d+)([dhms])")


class WrittenDuration(timedelta):
    """A duration that remembers how it was written (`72h` stays `72h` when formatted)."""

    text: str

    def __new__(cls, seconds: int, text: str) -> WrittenDuration:
        value = super().__new__(cls, seconds=seconds)
        value.text = text
        return value

    def __reduce__(self) -> tuple[type[WrittenDuration], tuple[int, str]]:
        return (WrittenDuration, (int(self.total_seconds()), self.text))


def written(value: timedelta) -> str:
    """The duration as its author wrote it, or its canonical text."""
    return value.text if isinstance(value, WrittenDuration) else format_duration(value)


def parse_duration(text: str) -> timedelta:
    """Parse `1h30m`-style text; raises ValueError with a readable reason."""
    cleaned = text.strip()
    if not cleaned or not _WHOLE.fullmatch(cleaned):
        raise ValueError(f"{text!r} is not a duration; write e.g. 30s, 10m, 72h, 7d or 1h30m")
    seen: set[str] = set()
    seconds = 0
    for number, unit in _PART.findall(cleaned):
        if unit in seen:
            raise ValueError(f"{text!r} gives the unit {unit!r} twice")
        seen.add(unit)
        seconds += int(number) * _UNITS[unit]
    return WrittenDuration(seconds, cleaned)


def format_duration(value: timedelta) -> str:
    """Canonical text for a duration: largest units first, `0s` for zero."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    parts = []
    for unit, size in _UNITS.items():
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)
