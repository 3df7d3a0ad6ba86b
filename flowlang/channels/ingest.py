"""From a webhook request to processed events, losing nothing.

    result = ingest(engine, "whatsapp", body, headers=request.headers, secret=APP_SECRET)

1. With a `secret`, the signature is checked first; a bad one raises SignatureError (answer 401
   and keep nothing: the request may not come from the channel).
2. The request is split into its events (LINE, Meta and X send several in one request) and each
   is normalised on its own. A request that cannot be read at all is kept as a dead letter
   (`payload:<channel>`) with the reason and its bytes exactly as received; an event that
   cannot be read is kept alone, as the request reduced to that event, and the others go on.
   Answer 200 anyway, or the channel retries the same bad payload for days.
3. Each event goes to the engine (receipts are recorded, duplicates dropped); one the engine
   cannot take is kept like an unreadable one.

No body, header or size makes `ingest` raise; only a bad signature does (and a store that
cannot be written, which the host answers with a 5xx so that the channel retries).
`flowlang replay` normalises a kept payload again, after a fix, through this same function.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from flowlang.channels.inbound import Part, PayloadError, read
from flowlang.channels.inbound.sms import form_fields
from flowlang.channels.signatures import SignatureError, verify

if TYPE_CHECKING:
    from flowlang.runtime.engine import Engine, Outcome


@dataclass
class IngestResult:
    """What became of each event of the request: processed (`outcomes`), kept aside as a dead
    letter (`dead_letters`: the reasons) or ignored by design (`ignored`: the reasons)."""

    outcomes: list[Outcome] = field(default_factory=list)
    dead_letters: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    @property
    def error(self) -> str | None:
        """The first reason an event of the request was kept aside, if any."""
        return self.dead_letters[0] if self.dead_letters else None


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
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body)
    received = received_at or datetime.now(UTC)
    if secret is not None:
        verify_request(channel, raw, headers or {}, secret, url)
    result = IngestResult()
    for part in read(channel, raw, received_at=received):
        if part.error is not None:
            _keep(engine, channel, raw, part, str(part.error), received, result)
        result.ignored.extend(part.ignored)
        for event in part.events:
            try:
                result.outcomes.append(engine.handle(event))
            except Exception as exc:  # the engine could not even store it: keep it here
                reason = f"{channel} event {part.where}: {type(exc).__name__}: {exc}"
                _keep(engine, channel, raw, part, reason, received, result)
    return result


def verify_request(
    channel: str, raw: bytes, headers: Mapping[str, str], secret: str, url: str = ""
) -> None:
    """Raise SignatureError unless the request carries `channel`'s valid signature (Twilio's is
    of `url`, the public URL the request was sent to, and the form fields, read as `read`
    reads them: a body that is not one Twilio form cannot be checked)."""
    try:
        params: dict[str, str] = {}
        if channel == "sms":  # Twilio signs the URL and the form fields
            params = form_fields(raw, channel)
        verify(channel, raw, headers, secret, url=url, params=params)
    except SignatureError:
        raise
    except PayloadError as exc:
        raise SignatureError(
            f"{channel}: the signature cannot be checked: {exc.field}: {exc.problem}"
        ) from None
    except Exception as exc:  # headers of a shape no channel sends
        raise SignatureError(f"{channel}: the signature cannot be checked: {exc}") from None


def _keep(
    engine: Engine,
    channel: str,
    raw: bytes,
    part: Part,
    reason: str,
    at: datetime,
    result: IngestResult,
) -> None:
    source, payload, reason = part_letter(channel, raw, part, reason, at)
    _store_letter(engine, source, payload, reason, at)
    result.dead_letters.append(reason)


def part_letter(
    channel: str, raw: bytes, part: Part, reason: str, at: datetime
) -> tuple[str, dict[str, Any], str]:
    """The dead letter (source, payload, reason) keeping one unreadable event of a request: the
    request reduced to that event when it can be written alone, else the whole request."""
    body: bytes | str = raw  # whole, if the event cannot be written on its own
    if part.body is not None:
        # ASCII-escaped, so that even a lone surrogate is kept.
        with contextlib.suppress(ValueError, TypeError, RecursionError):
            body = json.dumps(part.body, ensure_ascii=True)
    event = None if part.body is None else part.where
    return payload_letter(channel, body, _printable(reason), at, event=event)


def payload_letter(
    channel: str, raw: bytes | str, reason: str, at: datetime, event: str | None = None
) -> tuple[str, dict[str, Any], str]:
    """The dead letter (source, payload, reason) keeping a payload for a later replay: its
    text, or its bytes in base64 when they are not UTF-8 (nothing is changed or lost)."""
    payload: dict[str, Any] = {"channel": channel, "received_at": at}
    if isinstance(raw, str):
        payload["body"] = raw
    else:
        try:
            payload["body"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            payload["body_base64"] = base64.b64encode(raw).decode("ascii")
    if event is not None:
        payload["event"] = event
    return f"payload:{channel}", payload, reason


def keep_payload(
    engine: Engine,
    channel: str,
    raw: bytes | str,
    reason: str,
    at: datetime,
    event: str | None = None,
) -> None:
    """Store a payload as a dead letter for a later replay (see `payload_letter`)."""
    source, payload, reason = payload_letter(channel, raw, reason, at, event)
    _store_letter(engine, source, payload, reason, at)


def _store_letter(
    engine: Engine, source: str, payload: dict[str, Any], reason: str, at: datetime
) -> None:
    transaction = getattr(engine.store, "transaction", None)
    if transaction is None:
        engine.store.dead_letter(source, payload, reason, at)
        return
    with transaction():
        engine.store.dead_letter(source, payload, reason, at)


def kept_body(payload: Mapping[str, Any]) -> bytes:
    """The request body a `payload:` dead letter keeps, byte for byte."""
    if "body_base64" in payload:
        return base64.b64decode(str(payload["body_base64"]))
    return str(payload["body"]).encode("utf-8")


def _printable(text: str) -> str:
    """`text` as UTF-8 can store it (a lone surrogate in an error message becomes \\udxxx)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
