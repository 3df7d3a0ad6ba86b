"""Inbound normalisers: each channel's own webhook payload in, `InboundEvent`s out.

    events = normalise("whatsapp", request_body)        # bytes, str or an already-parsed dict
    parts = read("line", request_body)                  # event by event; never raises

A payload that cannot be read raises `PayloadError` naming the field (`entry[0].changes[0]
.value.messages[0].from: missing`). `read` splits a request into its events first (LINE, Meta
and X send several in one request), so one bad event fails alone; `flowlang.channels.ingest`
keeps each such event as a dead letter. One webhook can carry events of sibling channels (a Meta
page webhook has Messenger messages and page-feed comments; X's has DMs and public posts): each
event names its channel.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from flowlang.channels.inbound import line, meta, sms, web, x
from flowlang.channels.inbound.fields import Ignored, Node, PayloadError, unstorable
from flowlang.errors import InputError
from flowlang.events import InboundEvent

Normaliser = Callable[[Node, datetime], Sequence[InboundEvent | Ignored]]

NORMALISERS: dict[str, Normaliser] = {
    "whatsapp": meta.whatsapp,
    "messenger": meta.page,
    "instagram": meta.page,
    "facebook_page": meta.page,
    "x_dm": x.account_activity,
    "x_public": x.account_activity,
    "line": line.webhook,
    "sms": sms.twilio,
    "web": web.widget,
}

EVENT_LISTS: dict[str, tuple[str, ...]] = {
    "whatsapp": ("entry[]", "changes[]", "value", "messages[]|statuses[]"),
    "messenger": ("entry[]", "messaging[]|changes[]"),
    "instagram": ("entry[]", "messaging[]|changes[]"),
    "facebook_page": ("entry[]", "messaging[]|changes[]"),
    "x_dm": (x.EVENT_LISTS,),
    "x_public": (x.EVENT_LISTS,),
    "line": ("events[]",),
}
"""Where each channel's request holds its events: the path through the envelope, level by level
(`name[]` a list, `a[]|b[]` lists side by side); channels not named send one event a request."""

__all__ = ["NORMALISERS", "Ignored", "Part", "PayloadError", "decode", "normalise", "read"]


@dataclass
class Part:
    """One event of a request as the channel sent it, and what it reads as.

    `body` is the request reduced to this event alone (None: the request as a whole could not be
    read), so that it can be kept and replayed on its own. At most one of `error`, `events` and
    `ignored` says what it is.
    """

    where: str
    body: dict[str, Any] | None
    events: list[InboundEvent] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    error: PayloadError | None = None


def normalise(
    channel: str, body: bytes | str | dict[str, Any], *, received_at: datetime | None = None
) -> list[InboundEvent]:
    """The events in one webhook request body of `channel` (receipts included, marked RECEIPT).

    `received_at` stands in for channels that send no time (Twilio); default: now.
    """
    normaliser = _normaliser(channel)
    data = decode(channel, body)
    problem = unstorable(channel, data)
    if problem is not None:
        raise problem
    results = _normalised(channel, normaliser, data, received_at or datetime.now(UTC))
    return [r for r in results if isinstance(r, InboundEvent)]


def read(
    channel: str,
    body: bytes | str | dict[str, Any],
    *,
    received_at: datetime | None = None,
    max_events: int | None = None,
) -> list[Part]:
    """The events of one request, each read on its own; never raises. A request that cannot be
    read as a whole (not JSON, a wrong envelope, an unknown channel, more than `max_events`
    events) is one failed part."""
    received = received_at or datetime.now(UTC)
    try:
        normaliser = _normaliser(channel)
        data = decode(channel, body)
        levels = EVENT_LISTS.get(channel, ())
        _check_envelope(channel, normaliser, data, levels, received)
    except Exception as exc:  # anything unreadable about the request as a whole
        return [Part("(body)", None, error=_as_payload_error(channel, "(body)", exc))]
    if not levels:
        return [_read_part(channel, normaliser, ("", "", data), received)]
    pieces = _split(data, levels)
    if max_events is not None and len(pieces) > max_events:
        problem = f"{len(pieces)} events in one request, over the limit of {max_events}"
        return [Part("(body)", None, error=PayloadError(channel, "(body)", problem))]
    return [_read_part(channel, normaliser, piece, received) for piece in pieces]


def _normaliser(channel: str) -> Normaliser:
    normaliser = NORMALISERS.get(channel)
    if normaliser is None:
        known = ", ".join(sorted(NORMALISERS))
        raise PayloadError(channel, "(channel)", f"no normaliser for this channel (known: {known})")
    return normaliser


def _check_envelope(
    channel: str,
    normaliser: Normaliser,
    data: dict[str, Any],
    levels: Sequence[str],
    received: datetime,
) -> None:
    """Raise what is wrong with the request around its events (`object`, `destination`...)."""
    if not levels:
        return
    lists = [k.removesuffix("[]") for k in levels[0].split("|")]
    shell = {k: ([] if k in lists and isinstance(v, list) else v) for k, v in data.items()}
    problem = unstorable(channel, shell)
    if problem is not None:
        raise problem
    _normalised(channel, normaliser, shell, received)


def _split(data: dict[str, Any], levels: Sequence[str]) -> list[tuple[str, str, dict[str, Any]]]:
    """(where the event is, where it is in its reduced body, the reduced body) for each event.

    An element of the wrong shape on the way is a part of its own, which its normaliser then
    reports (`entry[1]: expected an object`)."""

    def walk(node: Any, depth: int, where: str, reduced: str) -> list[tuple[str, str, Any]]:
        if depth == len(levels) or not isinstance(node, dict):
            return [(where, reduced, node)]
        keys = [k.removesuffix("[]") for k in levels[depth].split("|")]
        rest = {k: v for k, v in node.items() if k not in keys}
        found: list[tuple[str, str, Any]] = []
        present = False
        for level_key, key in zip(levels[depth].split("|"), keys, strict=True):
            child = node.get(key)
            path, reduced_path = _join(where, key), _join(reduced, key)
            if child is None:
                continue
            present = True
            if not level_key.endswith("[]"):
                for w, r, sub in walk(child, depth + 1, path, reduced_path):
                    found.append((w, r, {**rest, key: sub}))
            elif not isinstance(child, list):
                found.append((path, reduced_path, {**rest, key: child}))
            else:
                for i, item in enumerate(child):
                    inner = walk(item, depth + 1, f"{path}[{i}]", f"{reduced_path}[0]")
                    found.extend((w, r, {**rest, key: [sub]}) for w, r, sub in inner)
        if not present:  # none of this level's keys: the normaliser says whether that is wrong
            return [(where, reduced, node)]
        return found

    return [(w, r, body) for w, r, body in walk(data, 0, "", "") if isinstance(body, dict)]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _read_part(
    channel: str,
    normaliser: Normaliser,
    piece: tuple[str, str, dict[str, Any]],
    received: datetime,
) -> Part:
    where, reduced, body = piece
    part = Part(where or "(body)", body)
    try:
        problem = unstorable(channel, body)
        if problem is not None:
            raise problem
        for result in _normalised(channel, normaliser, body, received):
            if isinstance(result, Ignored):
                part.ignored.append(result.reason)
            else:
                part.events.append(result)
        for event in part.events:
            if "\x00" in event.event_id:  # PostgreSQL's text refuses it: the commit would fail
                raise PayloadError(
                    channel,
                    where or "(body)",
                    f"the event id {event.event_id!r} holds a NUL character, which a store's "
                    "text cannot hold",
                )
        if not part.events and not part.ignored:
            part.ignored.append("nothing in it to process")
    except Exception as exc:  # a bad event fails alone; the request's others go on
        part.events.clear()
        error = _as_payload_error(channel, where or "(body)", exc)
        if reduced:
            error = PayloadError(channel, _relocated(error.field, reduced, where), error.problem)
        part.error = error
    return part


def _relocated(field: str, reduced: str, where: str) -> str:
    """`field` of a reduced body as the request has it: the reduced body numbers its one event
    `[0]` at each level (`entry[0].changes[0]...`) where the request says `entry[1]...`."""
    in_field, in_reduced, in_request = (_SEGMENT.findall(p) for p in (field, reduced, where))
    same = 0
    for a, b in zip(in_field, in_reduced, strict=False):
        if a != b:
            break
        same += 1
    return "".join(in_request[:same] + in_field[same:])


_SEGMENT = re.compile(r"\[\d+\]|\.?[^.\[]+")


def _normalised(
    channel: str, normaliser: Normaliser, data: dict[str, Any], received: datetime
) -> Sequence[InboundEvent | Ignored]:
    try:
        return normaliser(Node(channel, data), received)
    except ValidationError as exc:  # a value of the right shape but not a usable one
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(event)"
        raise PayloadError(channel, where, first["msg"]) from None


def _as_payload_error(channel: str, where: str, exc: Exception) -> PayloadError:
    if isinstance(exc, PayloadError):
        return exc
    if isinstance(exc, RecursionError):
        return PayloadError(channel, where, "nested too deeply to read")
    return PayloadError(channel, where, f"cannot be read: {type(exc).__name__}: {exc}")


def decode(channel: str, body: bytes | str | dict[str, Any]) -> dict[str, Any]:
    """The payload as a dict: JSON, or form fields for Twilio's SMS webhook (only: a JSON
    body there is refused, `sms.form_fields`)."""
    if isinstance(body, dict):
        return body
    if channel == "sms":  # read as its signature is checked (`ingest.verify_request`)
        return sms.form_fields(body, channel)
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PayloadError(channel, "(body)", f"not UTF-8 (byte {exc.start})") from None
    try:
        data = json.loads(body, object_pairs_hook=_once_each)
    except json.JSONDecodeError as exc:
        raise PayloadError(
            channel, "(body)", f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except _RepeatedKey as exc:
        problem = (
            f"the key {exc.key!r} twice in one object: which of its values counts is undefined"
        )
        raise PayloadError(channel, "(body)", problem) from None
    except RecursionError:
        raise PayloadError(channel, "(body)", "not JSON we can read: nested too deeply") from None
    except ValueError as exc:  # e.g. a number of more than 4,300 digits
        raise PayloadError(channel, "(body)", f"not JSON we can read: {exc}") from None
    if not isinstance(data, dict):
        raise PayloadError(channel, "(body)", "expected a JSON object")
    return data


class _RepeatedKey(InputError, ValueError):
    """A JSON object giving one key twice (turned into a `PayloadError` by `decode`)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _once_each(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are each given once: the signature covers both values of a
    repeated key, and which one a reader keeps is its own choice (RFC 8259 §4)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedKey(key)
            seen.add(key)
    return obj
