"""Outbound delivery: takes the messages the channel policy allowed, gives each channel's send-API
request body (`send_request`) and hands messages to an adapter (console, JSON lines, HTTP, or
recorded for tests)."""

from flowlang.channels.outbound.adapters import (
    ConsoleAdapter,
    DeliveryError,
    HttpAdapter,
    JsonLinesAdapter,
    RecordingAdapter,
)
from flowlang.channels.outbound.send_bodies import SendRequest, send_request

__all__ = [
    "ConsoleAdapter",
    "DeliveryError",
    "HttpAdapter",
    "JsonLinesAdapter",
    "RecordingAdapter",
    "SendRequest",
    "send_request",
]
