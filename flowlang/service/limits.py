"""Request bodies within bounds: a size limit and a read timeout, before any endpoint runs.

`Content-Length` is checked up front (not a number, or several different ones: 400; over the
limit: 413, without reading the body; together with `Transfer-Encoding`: 400, RFC 9112 §6.1,
since the two framings could be read differently by a proxy), then the bytes are counted as
they arrive (a chunked body over the limit: 413). A body that has not wholly arrived `timeout`
seconds after the headers gets 408 (however steadily it trickles). Each refusal closes the
connection. The endpoint then receives the whole body at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("flowlang.service")


class BodyLimits:
    """ASGI middleware reading each request's body within `limit` bytes and `timeout` seconds
    for the whole body."""

    def __init__(self, app: ASGIApp, limit: int, timeout: float) -> None:
        self.app = app
        self.limit = limit
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        lengths = {v.strip() for k, v in scope["headers"] if k.lower() == b"content-length"}
        if lengths and any(k.lower() == b"transfer-encoding" for k, _v in scope["headers"]):
            await _refuse(send, 400, "Content-Length and Transfer-Encoding together are refused")
            return
        if lengths:
            declared = lengths.pop() if len(lengths) == 1 else b""
            if not declared.isdigit():
                await _refuse(send, 400, "Content-Length must be one whole number of bytes")
                return
            if int(declared) > self.limit:
                await _refuse(send, 413, self._too_large())
                return
        chunks: list[bytes] = []
        size = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0))
            except TimeoutError:
                log.warning("%s %s: request body too slow, closed", scope["method"], scope["path"])
                await _refuse(
                    send, 408, f"the request body did not arrive within {self.timeout:g} s"
                )
                return
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.limit:
                await _refuse(send, 413, self._too_large())
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        whole = b"".join(chunks)
        given = False

        async def replay() -> Message:
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": whole, "more_body": False}
            return await receive()  # after the body: only the disconnect is left

        await self.app(scope, replay, send)

    def _too_large(self) -> str:
        return f"the request body is larger than the limit of {self.limit} bytes"


async def _refuse(send: Send, status: int, error: str) -> None:
    """Answer with `error` and close the connection (the rest of the body is not read)."""
    body = json.dumps({"error": error}).encode("utf-8")
    headers: list[Any] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
