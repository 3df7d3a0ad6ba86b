"""Inbound normalisers: each channel's own webhook payload in, `InboundEvent`s out.

    events = normalise("whatsapp", request_body)        # bytes, str or an already-parsed dict

A payload that cannot be read raises `PayloadError` naming the field (`entry[0].changes[0]
.value.messages[0].from: missing`); `flowlang.channels.ingest` keeps such payloads as dead
letters. One webhook can carry events of sibling channels (a Meta page webhook has Messenger
messages and page-feed comments; X's has DMs and public posts): each event names its channel.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from pydantic import ValidationError

from flowlang.channels.inbound import line, meta, sms, web, x
from flowlang.channels.inbound.fields import Node, PayloadError
from flowlang.events import InboundEvent

Normaliser = Callable[[Node, datetime], list[InboundEvent]]

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

__all__ = ["NORMALISERS", "PayloadError", "decode", "normalise"]


def normalise(
    channel: str, body: bytes | str | dict[str, Any], *, received_at: datetime | None = None
) -> list[InboundEvent]:
    """The events in one webhook request body of `channel` (receipts included, marked RECEIPT).

    `received_at` stands in for channels that send no time (Twilio); default: now.
    """
    normaliser = NORMALISERS.get(channel)
    if normaliser is None:
        known = ", ".join(sorted(NORMALISERS))
        raise PayloadError(channel, "(channel)", f"no normaliser for this channel (known: {known})")
    data = decode(channel, body)
    try:
        return normaliser(Node(channel, data), received_at or datetime.now(UTC))
    except ValidationError as exc:  # a value of the right shape but not a usable one
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(event)"
        raise PayloadError(channel, where, first["msg"]) from None


def decode(channel: str, body: bytes | str | dict[str, Any]) -> dict[str, Any]:
    """The payload as a dict: JSON, or form fields for Twilio's SMS webhook."""
    if isinstance(body, dict):
        return body
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PayloadError(channel, "(body)", f"not UTF-8 (byte {exc.start})") from None
    stripped = body.lstrip()
    if channel == "sms" and not stripped.startswith("{"):
        return dict(parse_qsl(body, keep_blank_values=True))
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise PayloadError(
            channel, "(body)", f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(data, dict):
        raise PayloadError(channel, "(body)", "expected a JSON object")
    return data
