"""A fake vendor API for tests: a local HTTP server that records every request and answers
as it is scripted.

    with FakeVendor() as vendor:                     # or the `fake_vendor` fixture
        vendor.script(Reply.retry_after(5), Reply.error(400, {"error": {"code": 131047}}))
        ... point a sender's api_base at vendor.base_url ...
        vendor.requests[0].path, .headers["authorization"], .json(), .form()

Scripted replies answer the next requests in order; once they are used up every request gets
`vendor.default` (200 with a small JSON body). `Reply.hang(seconds)` answers only after
`seconds`, to outlast a client's timeout; `Reply.held(event)` answers only once the test sets
`event` (closing the server ends any hang at once).
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Reply:
    """One scripted answer: status, JSON (dict/list) or text body, headers, and an optional
    delay before answering."""

    status: int = 200
    body: Any = field(default_factory=lambda: {"id": "fake-message-id"})
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    until: threading.Event | None = None  # answer only once this is set

    @classmethod
    def error(cls, status: int, body: Any = None) -> Reply:
        return cls(status, body if body is not None else {"error": {"message": "fake error"}})

    @classmethod
    def retry_after(cls, value: float | str, status: int = 429) -> Reply:
        """A 429 (or 503) with `Retry-After`: seconds, or an HTTP date given as text."""
        shown = value if isinstance(value, str) else f"{value:g}"
        return cls(status, {"error": {"message": "slow down"}}, {"Retry-After": shown})

    @classmethod
    def hang(cls, seconds: float) -> Reply:
        return cls(delay=seconds)

    @classmethod
    def held(cls, release: threading.Event) -> Reply:
        """200, once the test sets `release`."""
        return cls(until=release)


@dataclass(frozen=True)
class Recorded:
    """One request the fake vendor received (header names in lower case)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode("utf-8"), keep_blank_values=True)


class FakeVendor:
    """The server, on a free loopback port, in a thread; a context manager."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.default = Reply()
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with `replies`, in order."""
        with self._lock:
            self._script.extend(replies)

    def _next(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            return self._script.popleft() if self._script else self.default

    def start(self) -> FakeVendor:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeVendor:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _handler(vendor: FakeVendor) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            url = urlsplit(self.path)
            recorded = Recorded(
                method=self.command,
                path=url.path,
                query=parse_qs(url.query),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=self.rfile.read(length) if length else b"",
            )
            reply = vendor._next(recorded)
            if reply.delay and vendor._closing.wait(reply.delay):
                return
            while reply.until is not None and not reply.until.wait(0.05):
                if vendor._closing.is_set():
                    return
            body = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
            data = body.encode("utf-8")
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client gave up (timed out) before the answer
                pass

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
