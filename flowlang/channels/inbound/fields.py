"""Reading a webhook payload field by field, so an error names the exact field that is wrong."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flowlang.errors import InputError

MAX_DEPTH = 100
"""Deepest nesting a payload may have: real webhooks nest about ten levels; hundreds are an
attack or a bug, and cannot be stored as JSON."""


@dataclass(frozen=True)
class Ignored:
    """An event of the channel that is deliberately not processed, and why (docs/channels.md)."""

    reason: str


class PayloadError(InputError, ValueError):
    """A webhook payload that cannot be turned into events; `field` is where it went wrong."""

    def __init__(self, channel: str, field: str, problem: str) -> None:
        self.channel = channel
        self.field = field
        self.problem = problem
        super().__init__(f"{channel} payload: {field}: {problem}")


class Node:
    """A value inside a payload, with the path that led to it (`entry[0].changes[0].value`)."""

    def __init__(self, channel: str, value: Any, path: str = "") -> None:
        self.channel = channel
        self.value = value
        self.path = path

    def _child_path(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    def fail(self, problem: str, key: str | int | None = None) -> PayloadError:
        return PayloadError(
            self.channel,
            self._child_path(key) if key is not None else self.path or "(top)",
            problem,
        )

    def has(self, key: str) -> bool:
        return isinstance(self.value, dict) and self.value.get(key) is not None

    def flag(self, key: str) -> bool:
        """Whether `key` is `true` (a missing key, or anything else, is false)."""
        return isinstance(self.value, dict) and self.value.get(key) is True

    def get(self, key: str) -> Node | None:
        """The child, or None when it is missing or null."""
        if not isinstance(self.value, dict):
            raise self.fail(f"expected an object, got {_kind(self.value)}")
        if self.value.get(key) is None:
            return None
        return Node(self.channel, self.value[key], self._child_path(key))

    def need(self, key: str) -> Node:
        child = self.get(key)
        if child is None:
            raise self.fail("missing", key)
        return child

    def items(self, key: str, required: bool = False) -> list[Node]:
        """The elements of a list child (empty when absent and not required)."""
        child = self.need(key) if required else self.get(key)
        if child is None:
            return []
        if not isinstance(child.value, list):
            raise child.fail(f"expected a list, got {_kind(child.value)}")
        return [Node(self.channel, v, child._child_path(i)) for i, v in enumerate(child.value)]

    def text(self, key: str, default: str | None = None) -> str:
        """The text at `key`; without a `default`, missing or empty text is an error; with one,
        missing or empty text gives the default."""
        child = self.get(key)
        if child is None:
            if default is None:
                raise self.fail("missing", key)
            return default
        if isinstance(child.value, bool) or not isinstance(child.value, str | int):
            raise child.fail(f"expected text, got {_kind(child.value)}")
        if isinstance(child.value, int) and abs(child.value) >= 10**100:
            raise child.fail("expected text, got a number of more than 100 digits")
        if child.value == "":
            if default is None:
                raise child.fail("empty")
            return default
        return str(child.value)

    def optional_text(self, key: str) -> str | None:
        return self.text(key) if self.get(key) is not None else None

    def number(self, key: str) -> float:
        child = self.need(key)
        try:
            value = float(child.value)
        except (TypeError, ValueError, OverflowError):
            raise child.fail(f"expected a number, got {_shown(child.value)}") from None
        if not math.isfinite(value):
            raise child.fail(f"expected a finite number, got {_shown(child.value)}")
        return value

    def count(self, key: str) -> int:
        """A whole number of things, 0 or more (Twilio's `NumMedia`)."""
        value = self.number(key)
        if value < 0 or value != int(value):
            given = _shown(self.value[key])
            raise self.fail(f"expected a whole number, 0 or more, got {given}", key)
        return int(value)

    def epoch(self, key: str, unit: float = 1.0) -> datetime:
        """A Unix time field (seconds, or milliseconds with unit=1000) as a UTC datetime."""
        child = self.need(key)
        try:
            return datetime.fromtimestamp(float(child.value) / unit, UTC)
        except (TypeError, ValueError, OverflowError, OSError):
            raise child.fail(f"expected a Unix time, got {_shown(child.value)}") from None

    def iso_time(self, key: str) -> datetime:
        child = self.need(key)
        if not isinstance(child.value, str):
            raise child.fail(f"expected an ISO 8601 time, got {_kind(child.value)}")
        text = child.value.replace("Z", "+00:00")
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            # Facebook's feed writes "+0000" without a colon, which 3.11 accepts; anything else:
            raise child.fail(f"expected an ISO 8601 time, got {_shown(child.value)}") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _storable(value: Any) -> bool:
    """Whether `value` has no lone surrogate and no nesting deeper than MAX_DEPTH."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            for key, child in item.items():
                stack.append((key, depth + 1))
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return True


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "text", bool: "true/false"}.get(
        type(value), type(value).__name__
    )


def _shown(value: Any) -> str:
    """A value for an error message, cut short."""
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**100 else "a huge number"
    return text if len(text) <= 60 else text[:57] + "..."


def unstorable(channel: str, value: Any) -> PayloadError | None:
    """Why `value` (decoded JSON) cannot be kept as an event: a lone surrogate (half of an
    emoji, not a character; SQLite and UTF-8 refuse it) or nesting deeper than MAX_DEPTH."""
    if _storable(value):  # the usual case, checked without naming every field on the way
        return None
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            return PayloadError(channel, path or "(top)", f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                code = ord(item[exc.start])
                problem = f"contains a lone surrogate \\u{code:04x} (half of a character)"
                return PayloadError(channel, path or "(top)", problem)
        elif isinstance(item, dict):
            for key, child in item.items():
                name = str(key).encode("utf-8", "backslashreplace").decode("utf-8")
                key_path = f"{path}.{name}" if path else name
                stack.append((key, key_path, depth + 1))
                stack.append((child, key_path, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{i}]", depth + 1) for i, child in enumerate(item))
    return None
