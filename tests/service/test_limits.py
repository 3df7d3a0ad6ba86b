"""BodyLimits on its own, as the ASGI server calls it: framings that could smuggle a request,
and bodies that trickle in."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from flowlang.service.limits import BodyLimits


def _call(
    headers: list[tuple[bytes, bytes]], chunks: list[bytes], gap: float, timeout: float
) -> tuple[list[bytes], list[Message]]:
    reached: list[bytes] = []
    sent: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append((await receive())["body"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive() -> Message:
        await asyncio.sleep(gap)
        body = chunks.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(chunks)}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: dict[str, Any] = {"type": "http", "method": "POST", "path": "/webhooks/line"}
    scope["headers"] = headers
    asyncio.run(BodyLimits(app, limit=1000, timeout=timeout)(scope, receive, send))
    return reached, sent


def test_content_length_with_transfer_encoding_is_400_and_closes() -> None:
    headers = [(b"content-length", b"4"), (b"transfer-encoding", b"chunked")]
    reached, sent = _call(headers, [b"0\r\n\r\n"], gap=0, timeout=5)
    assert reached == []  # the endpoint never sees it
    start = sent[0]
    assert start["status"] == 400
    assert (b"connection", b"close") in start["headers"]
    assert b"Transfer-Encoding" in sent[1]["body"]


def test_a_body_trickling_past_the_deadline_is_408_though_no_gap_is_long() -> None:
    chunks = [b"x"] * 20  # each gap far under the timeout; the whole far over it
    reached, sent = _call([], chunks, gap=0.05, timeout=0.3)
    assert reached == []
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]


def test_a_prompt_body_reaches_the_endpoint_whole() -> None:
    reached, sent = _call([(b"content-length", b"2")], [b"o", b"k"], gap=0, timeout=5)
    assert reached == [b"ok"] and sent[0]["status"] == 200
