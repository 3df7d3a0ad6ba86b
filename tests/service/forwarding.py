"""Stand-ins for the forwarding tests (`test_forward.py`, `test_front_route.py`): an echo server
for the leader, a real uvicorn server on a free port, and the app a forwarding wrapper is given
when it must pass every request on."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from tests.ports import free_port
from tests.service.threaded_server import threaded_server


class Leader:
    """An ASGI app standing in for the leader: `/stream` sends a chunk each time `go` is set
    (until the client goes away: `left`); anything else echoes the request as JSON."""

    def __init__(self) -> None:
        self.clients: set[tuple[str, int]] = set()  # the connections requests came on
        self.go = threading.Event()
        self.left = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self.clients.add(tuple(scope["client"]))
        if scope["path"] == "/stream":
            await self._stream(receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        echo = {
            "method": scope["method"],
            "raw_path": scope["raw_path"].decode("latin-1"),
            "query": scope["query_string"].decode("latin-1"),
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
            "body": body.decode("latin-1"),
        }
        answer = json.dumps(echo).encode()
        status = int(dict(scope["headers"]).get(b"x-status", b"200"))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"x-echo", b"yes")],
            }
        )
        await send({"type": "http.response.body", "body": answer if status != 204 else b""})

    async def _stream(self, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )

        async def until_gone() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        gone = asyncio.ensure_future(until_gone())
        for number in range(1000):
            while not self.go.is_set():
                if gone.done():
                    self.left.set()
                    return
                await asyncio.sleep(0.01)
            self.go.clear()
            chunk = f"data: {number}\n\n".encode()
            await send({"type": "http.response.body", "body": chunk, "more_body": True})


@contextmanager
def serving(app: Any, keep_alive: int = 5, **config: Any) -> Iterator[str]:
    """`app` on a real uvicorn server on a free loopback port (`config`: more uvicorn
    settings); yields its URL."""
    with threaded_server(app, free_port(), timeout_keep_alive=keep_alive, **config) as port:
        yield f"http://127.0.0.1:{port}"


def lifespan_only(close: Callable[[], Awaitable[None]], refusal: str) -> ASGIApp:
    """An app that answers the server's lifespan alone: started at once, and at shutdown
    `close` awaited first. Any request reaching it fails with `refusal`: the wrapper it is given
    to (`ForwardToLeader`) should have passed the request on."""

    async def lifespan(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "lifespan", refusal
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    return lifespan
