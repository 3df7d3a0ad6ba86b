"""Request bodies within bounds: a size limit and a read timeout, before any endpoint runs.

`Content-Length` is checked up front (not a number, or several different ones: 400; over the
limit: 413, without reading the body; together with `Transfer-Encoding`: 400, RFC 9112 §6.1,
since the two framings could be read differently by a proxy), then the bytes are counted as
they arrive (a chunked body over the limit: 413). A body that has not wholly arrived `timeout`
seconds after the headers gets 408 (however steadily it trickles). Each refusal closes the
connection. The endpoint then receives the whole body at once.

A channel's webhooks may be larger: up to what its vendor documents sending
(`webhook_max_bytes` in the channel registry, WhatsApp's 3 MB), since a 413 would only have
the vendor send the same request again until it gives up on it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("flowlang.service")

WEBHOOKS = "/webhooks/"


class BodyLimits:
    """ASGI middleware reading each request's body within `limit` bytes and `timeout` seconds
    for the whole body."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        timeout: float,
        webhook_limits: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.limit = limit
        self.timeout = timeout
        # channel key -> the larger limit of its webhooks (`/webhooks/<key>`)
        self.webhook_limits = {
            key: size for key, size in (webhook_limits or {}).items() if size > limit
        }

    def limit_of(self, path: str) -> int:
        """The body limit of a request to `path`."""
        if self.webhook_limits and path.startswith(WEBHOOKS):
            return self.webhook_limits.get(path[len(WEBHOOKS) :], self.limit)
        return self.limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_of(scope["path"])
        lengths = {v.strip() for k, v in scope["headers"] if k.lower() == b"content-length"}
        if lengths and any(k.lower() == b"transfer-encoding" for k, _v in scope["headers"]):
            await _refuse(send, 400, "Content-Length and Transfer-Encoding together are refused")
            return
        if lengths:
            declared = lengths.pop() if len(lengths) == 1 else b""
            if not declared.isdigit():
                await _refuse(send, 400, "Content-Length must be one whole number of bytes")
                return
            if int(declared) > limit:
                await _refuse(send, 413, _too_large(limit))
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
            if size > limit:
                await _refuse(send, 413, _too_large(limit))
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


def _too_large(limit: int) -> str:
    return f"the request body is larger than the limit of {limit} bytes"


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
