"""The HTTP/1.1 client a process forwards requests with (`forward.py`): kept-alive connections
to one origin, answers parsed by httptools (the C parser uvicorn serves with).

A forwarded request is a few headers and a body already read; its answer is streamed back as it
comes (the live streams' events included). A general client (httpx) spends about a millisecond
of CPU a request on that in Python, more than the leader spends answering an agent's poll; this
one writes the request in one piece and hands the answer's bytes on from the protocol's
callbacks (docs/history/scaling-measurements.md, "What a follower cost, and the cut").

A connection is reused once its answer has been read to the end and the server said it may be;
an idle one is closed after `idle_seconds`, before the server's keep-alive timeout (5 s by
default) would close it under a request. A request that reached a kept connection the server
had closed without answering (a race with that timeout) is sent once more on a new connection
if its method is safe to repeat; otherwise it fails (`UpstreamError`) and the caller answers
503, for the client to retry.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import cast
from urllib.parse import urlsplit

import httptools

from flowlang.errors import FlowError

Headers = Sequence[tuple[bytes, bytes]]
_SAFE = {"GET", "HEAD", "OPTIONS"}
_PAUSE_AT = 64  # chunks waiting for a slow client before the connection stops reading


class UpstreamError(FlowError):
    """The request could not be sent or its answer's head not read."""


class _Lost(UpstreamError):
    """The connection closed before any byte of the answer."""


class Answer:
    """An answer's status and headers; its body from `body()`, which must be read to the end
    (or `close()` called) for the connection to be reused."""

    def __init__(self, connection: _Connection, status: int, headers: list[tuple[bytes, bytes]]):
        self._connection = connection
        self.status = status
        self.headers = headers

    async def body(self) -> AsyncIterator[bytes]:
        """The body's chunks as they come (chunked encoding undone); raises UpstreamError if
        the connection ends before the answer does."""
        connection = self._connection
        while True:
            chunks = await connection.chunks()
            if chunks is None:
                return
            for chunk in chunks:
                yield chunk

    def complete(self) -> bool:
        """Whether the whole body has arrived (every chunk `body` has not yet handed on)."""
        return self._connection.finished

    def close(self) -> None:
        """Done with it: a connection whose answer was read to the end goes back to the pool,
        any other is closed."""
        self._connection.release()


class _Connection(asyncio.Protocol):
    """One connection to the origin; one request at a time (no pipelining)."""

    def __init__(self, pool: Upstream) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.idle_since = 0.0
        self.closed = False
        self.paused = False
        self._head: asyncio.Future[Answer] | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._chunks: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self.finished = False
        self.keep = False
        self._head_only = False

    # ------------------------------------------------------------------ asyncio's callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._head is None:  # bytes nobody asked for: the connection cannot be trusted
            self._close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # no upgrades are forwarded
            self._fail(UpstreamError("the answer asked to upgrade the connection"))
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"the answer could not be read: {exc}"))

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        if self._head is not None and not self.finished:
            if not self._head.done():
                self._fail(_Lost("the connection was closed before an answer"))
            else:
                self._fail(UpstreamError("the connection closed before the answer ended"))

    # ------------------------------------------------------------------ httptools' callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        if self._head is None or self._head.done():
            return
        answer = Answer(self, self.parser.get_status_code(), self._headers)
        self._head.set_result(answer)
        if self._head_only:  # a HEAD's answer has no body, whatever its length says
            self.finished, self.keep = True, False
            self._wake()

    def on_body(self, body: bytes) -> None:
        if self._head_only:
            return
        self._chunks.append(body)
        if len(self._chunks) >= _PAUSE_AT and self.transport is not None and not self.paused:
            self.transport.pause_reading()
            self.paused = True
        self._wake()

    def on_message_complete(self) -> None:
        if not self._head_only:
            self.finished = True
            self.keep = self.parser.should_keep_alive()
            self._wake()

    # ------------------------------------------------------------------ the exchange
    async def send(self, method: str, target: str, headers: Headers, body: bytes) -> Answer:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self._head = loop.create_future()
        self._headers, self._chunks, self._error = [], deque(), None
        self.finished = self.keep = False
        self._head_only = method == "HEAD"
        lines = [f"{method} {target} HTTP/1.1\r\n".encode("latin-1")]
        lines.extend(name + b": " + value + b"\r\n" for name, value in headers)
        if body or method not in _SAFE:
            lines.append(b"content-length: %d\r\n" % len(body))
        lines.append(b"\r\n")
        lines.append(body)
        self.transport.write(b"".join(lines))
        return await self._head

    async def chunks(self) -> list[bytes] | None:
        """The chunks arrived since the last call (waiting for one); None at the end."""
        while not self._chunks:
            if self._error is not None:
                raise UpstreamError(str(self._error)) from self._error
            if self.finished:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        taken = list(self._chunks)
        self._chunks.clear()
        if self.paused and self.transport is not None and not self.closed:
            self.transport.resume_reading()
            self.paused = False
        return taken

    def release(self) -> None:
        if self.finished and self.keep and not self._chunks and not self.closed:
            self._head = None
            self.idle_since = time.monotonic()
            self.pool.keep(self)
        else:
            self._close()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        self._error = exc
        if self._head is not None and not self._head.done():
            self._head.set_exception(exc)
        self._wake()
        self._close()

    def _close(self) -> None:
        self.closed = True
        self.pool.forget(self)
        if self.transport is not None:
            self.transport.close()


class Upstream:
    """Kept-alive connections to one origin (`http://host:port` or `https://...`)."""

    def __init__(
        self, origin: str, connect_timeout: float = 10.0, idle_seconds: float = 2.0, keep: int = 32
    ) -> None:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) origin: {origin!r}")
        self.origin = origin
        self.host = parts.hostname
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        self.authority = parts.netloc.encode("latin-1")
        self.connect_timeout = connect_timeout
        self.idle_seconds = idle_seconds
        self.most_kept = keep
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()
        self.opened = 0  # connections opened in all (for the tests)

    async def request(self, method: str, target: str, headers: Headers, body: bytes) -> Answer:
        """Send the request (`target`: path and query) and read its answer's head. The headers
        are sent as given (a Host header added if there is none). Raises UpstreamError."""
        if not any(name == b"host" for name, _ in headers):
            headers = [(b"host", self.authority), *headers]
        while True:
            connection = self._kept()
            fresh = connection is None
            if connection is None:
                connection = await self._connect()
            try:
                return await connection.send(method, target, headers, body)
            except _Lost:
                if fresh or method not in _SAFE:
                    raise
                # a kept connection the server closed as the request went: once more, anew
            except BaseException:  # cancelled (the client left), or the answer unreadable
                connection._close()
                raise

    def _kept(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and now - connection.idle_since < self.idle_seconds:
                return connection
            connection._close()
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        context = ssl.create_default_context() if self.tls else None
        try:
            transport, protocol = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(self),
                    self.host,
                    self.port,
                    ssl=context,
                    server_hostname=self.host if self.tls else None,
                ),
                self.connect_timeout,
            )
        except (OSError, TimeoutError) as exc:
            raise UpstreamError(f"cannot connect: {exc or type(exc).__name__}") from exc
        protocol.transport = transport  # uvloop may call connection_made after this returns
        self.opened += 1
        self._open.add(protocol)
        return protocol

    def keep(self, connection: _Connection) -> None:
        if len(self._idle) < self.most_kept:
            self._idle.append(connection)
        else:
            connection._close()

    def forget(self, connection: _Connection) -> None:
        self._open.discard(connection)
        if connection in self._idle:
            self._idle.remove(connection)

    def close(self) -> None:
        """Close every connection (answers being read end with UpstreamError)."""
        for connection in list(self._open):
            connection._close()
        self._idle.clear()
