"""uvicorn's httptools HTTP/1.1 protocol with a deadline for a request's head and a bound on its
size.

uvicorn closes idle keep-alive connections but waits forever for the head of a request that has
begun to arrive (or of a first request that never does): a client that connects and sends
nothing, or a header a byte a minute, would hold the connection. Here a connection that has not
sent a complete request head within `header_timeout` seconds is closed, and a head (request
line and headers) over `HEAD_LIMIT` bytes is answered 400 and closed. httptools (llhttp, in C)
parses requests several times faster than h11 (pure Python), which the webhooks' rate needs;
it refuses a `Content-Length` that is not a number, and one beside `Transfer-Encoding`, with 400.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from flowlang.errors import FlowError

log = logging.getLogger("flowlang.service")

HEAD_LIMIT = 64 * 1024  # bytes of request line and headers


class HeadTooLarge(FlowError, ValueError):
    """A request head over HEAD_LIMIT (httptools turns it into a parser error: 400)."""


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """httptools' protocol with the head's deadline (`header_timeout` seconds) and size bound."""

    header_timeout = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._in_head = True  # waiting for (the rest of) a request's head
        self._head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0
        self._arm()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm()
        super().on_headers_complete()

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > HEAD_LIMIT:
            raise HeadTooLarge(f"request head over {HEAD_LIMIT} bytes")

    def _arm(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _expired(self) -> None:
        self._header_deadline = None
        if self._in_head and not self.transport.is_closing():
            log.warning("%s: request headers too slow, connection closed", self.client)
            self.transport.close()


def with_header_timeout(header_timeout: float) -> type[HttpToolsProtocol]:
    """The protocol class for uvicorn's `http=` setting."""
    return type(
        "HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout": header_timeout}
    )
