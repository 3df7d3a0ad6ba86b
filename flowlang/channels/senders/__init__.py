"""Senders: each channel's vendor send API (WhatsApp Cloud API, Messenger / Instagram Send API,
Facebook comments and Private Replies, LINE, Twilio, X API v2), as outbound adapters.

`senders_for(deployment)` assembles them from the deployment's connections and the environment
(docs/senders.md).
"""

from flowlang.channels.senders.assembly import (
    SenderSetupError,
    VendorSenders,
    senders_for,
    sending_channels,
)
from flowlang.channels.senders.vendor import Credentials, VendorRequest, VendorSender

__all__ = [
    "Credentials",
    "SenderSetupError",
    "VendorRequest",
    "VendorSender",
    "VendorSenders",
    "senders_for",
    "sending_channels",
]
