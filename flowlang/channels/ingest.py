"""From a webhook request to processed events, losing nothing.

    result = ingest(engine, "whatsapp", body, headers=request.headers, secret=APP_SECRET)

1. With a `secret`, the signature is checked first; a bad one raises SignatureError (answer 401
   and keep nothing: the request may not come from the channel).
2. The body is normalised; a payload that cannot be read is kept as a dead letter
   (`payload:<channel>`) with the reason, and `result.error` says which field was wrong.
   Answer 200 anyway, or the channel retries the same bad payload for days.
3. Each event goes to the engine (receipts are recorded, duplicates dropped).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from flowlang.channels.inbound import PayloadError, normalise
from flowlang.channels.signatures import verify

if TYPE_CHECKING:
    from flowlang.runtime.engine import Engine, Outcome


@dataclass
class IngestResult:
    """The outcome of each event in the request, or the reason the payload was kept aside."""

    outcomes: list[Outcome] = field(default_factory=list)
    error: str | None = None


def ingest(
    engine: Engine,
    channel: str,
    body: bytes | str,
    *,
    headers: Mapping[str, str] | None = None,
    secret: str | None = None,
    url: str = "",
    received_at: datetime | None = None,
) -> IngestResult:
    """Verify, normalise and process one webhook request of `channel` (see the module doc)."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    received = received_at or datetime.now(UTC)
    if secret is not None:
        params: dict[str, str] = {}
        if channel == "sms":  # Twilio signs the URL and the form fields
            from urllib.parse import parse_qsl

            params = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        verify(channel, raw, headers or {}, secret, url=url, params=params)
    try:
        events = normalise(channel, raw, received_at=received)
    except PayloadError as exc:
        keep_payload(engine, channel, raw, str(exc), received)
        return IngestResult(error=str(exc))
    return IngestResult([engine.handle(event) for event in events])


def keep_payload(engine: Engine, channel: str, raw: bytes, reason: str, at: datetime) -> None:
    """Store an unreadable payload as a dead letter, exactly as received, for a later replay."""
    payload = {"channel": channel, "body": raw.decode("utf-8", "replace"), "received_at": at}
    transaction = getattr(engine.store, "transaction", None)
    if transaction is None:
        engine.store.dead_letter(f"payload:{channel}", payload, reason, at)
        return
    with transaction():
        engine.store.dead_letter(f"payload:{channel}", payload, reason, at)
