"""Outbound adapters and each channel's send-API request bodies."""

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
