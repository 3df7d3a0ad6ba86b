"""The text a message's content carries to the customer, as the senders put it in the vendor's
request; the reply policy measures and compares this same text, so no field the policy does
not look at (a caption, a fallback) can carry more than the channel allows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def sent_text(content: Mapping[str, Any]) -> str:
    """The message's text, else its caption, else its fallback; a link's URL after it (a link
    is sent as text with its URL, which the vendor previews)."""
    text = str(content.get("text") or content.get("caption") or content.get("fallback") or "")
    url = str(content.get("url") or "")
    if content.get("kind") == "link" and url and url not in text:
        return f"{text}\n{url}" if text else url
    return text
