"""Built-in outbound adapters: console, JSON lines file, HTTP webhook (and recording, for tests).

Every adapter gets only messages the channel policy allowed, from the outbox, once the event
that made them is committed. An adapter raises DeliveryError when it cannot deliver; the Engine
keeps the message in the outbox and retries it, or (after the last attempt, or at once when the
error is `permanent`) keeps it as a dead letter to replay later.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import UTC
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO, Any

from flowlang.channels.outbound.send_bodies import send_request
from flowlang.errors import FlowError
from flowlang.private_files import open_private
from flowlang.runtime.memory import RecordingAdapter
from flowlang.runtime.ports import OutboundMessage

__all__ = ["ConsoleAdapter", "DeliveryError", "HttpAdapter", "JsonLinesAdapter", "RecordingAdapter"]


class DeliveryError(FlowError, RuntimeError):
    """The message could not be delivered; `permanent` when retrying cannot help (4xx);
    `retry_after`: the seconds the receiver asked to wait before the next attempt."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.status = status
        self.retry_after = retry_after


def envelope(message: OutboundMessage) -> dict[str, Any]:
    """What the JSON adapters write: the message, and the channel's own send-API request."""
    request = send_request(message)
    return {
        **asdict(message),
        "send": {"method": request.method, "path": request.path, "body": request.body},
    }


class ConsoleAdapter:
    """Prints each message readably: `-> whatsapp 447700900123 (agent): Hello`."""

    name = "console"

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    def send(self, message: OutboundMessage) -> None:
        content = message.content
        kind = str(content.get("kind", "text"))
        shown = content.get("text") or content.get("url") or content.get("name") or ""
        label = "" if kind == "text" else f"[{kind}] "
        print(
            f"-> {message.channel} {message.recipient} ({message.sender}): {label}{shown}",
            file=self.stream,
        )


class JsonLinesAdapter:
    """Appends one JSON object per message to a file (with the channel's send-API body)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = f"jsonl:{path}"

    def send(self, message: OutboundMessage) -> None:
        line = json.dumps(envelope(message), ensure_ascii=False, default=str)
        with open_private(self.path) as out:
            out.write(line + "\n")


Opener = Callable[[urllib.request.Request, float], Any]


def _urlopen(request: urllib.request.Request, timeout: float) -> Any:
    return urllib.request.urlopen(request, timeout=timeout)


class HttpAdapter:
    """POSTs each message as JSON to a host URL.

    Retries connection errors, timeouts, 429 and 5xx with exponential backoff (honouring
    Retry-After, in seconds or as an HTTP date), never other 4xx. Every attempt of one message,
    in this send and in the engine's later retries, carries the same `Idempotency-Key` (made
    from the message's id), so the receiver can drop duplicates of a retried request.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        headers: Mapping[str, str] | None = None,
        opener: Opener = _urlopen,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.name = f"http:{url}"
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.headers = dict(headers or {})
        self.opener = opener
        self.sleep = sleep
        self.clock = clock

    def send(self, message: OutboundMessage) -> None:
        data = json.dumps(envelope(message), ensure_ascii=False, default=str).encode("utf-8")
        key = idempotency_key(message)
        problem = ""
        told_to_wait: float | None = None  # a 429's Retry-After replaces the backoff
        for attempt in range(self.retries + 1):
            if attempt:
                wait = (
                    told_to_wait if told_to_wait is not None else self.backoff * 2 ** (attempt - 1)
                )
                self.sleep(min(wait, self.max_backoff))
                told_to_wait = None
            request = urllib.request.Request(
                self.url,
                data=data,
                method="POST",
                headers={
                    "Content-Type": "application/json",
                    "Idempotency-Key": key,
                    **self.headers,
                },
            )
            try:
                with self.opener(request, self.timeout):
                    return
            except urllib.error.HTTPError as exc:
                exc.close()
                if exc.code != 429 and exc.code < 500:
                    raise DeliveryError(
                        f"{self.url} refused the message: HTTP {exc.code} {exc.reason}",
                        permanent=True,
                        status=exc.code,
                    ) from None
                problem = f"HTTP {exc.code} {exc.reason}"
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                told_to_wait = retry_after_seconds(retry_after, self.clock())
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                problem = str(getattr(exc, "reason", exc))
        raise DeliveryError(
            f"{self.url}: gave up after {self.retries + 1} attempts: {problem}", permanent=False
        )


def idempotency_key(message: OutboundMessage) -> str:
    """The message's own: every attempt and every later retry of one message repeats it (the
    outbox gives each message its id), a second identical message does not. A message that
    never went through an outbox gets a key of its own for this send's attempts."""
    return f"{message.conversation_id}-{message.message_id or uuid.uuid4().hex}"


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """A Retry-After header's wait in seconds: delay-seconds, or an HTTP date (RFC 9110);
    None when absent or unreadable. A date already passed means no wait."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)
