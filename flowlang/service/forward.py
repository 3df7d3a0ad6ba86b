"""A follower's API and pages go to the leader (several processes on one PostgreSQL store).

Only the leading process runs the engine (the ACD, the agents' live streams, the real-time
reports), so a process that does not lead passes every request but its own webhooks, `/health`,
`/ready` and `/metrics` (the API, the browser pages and their sign-in) on to the leader's
advertised URL and streams the answer back, live streams (Server-Sent Events) included. With no
leader reachable (one is being chosen) the answer is 503 with `Retry-After: 1`. A request that
was forwarded once is never forwarded again (no loops while the lead changes hands): a
forwarding process marks it with the service's key (`x-flowlang-forwarded`), which a client
cannot know; a client's own header of that name is dropped at the edge, never trusted.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flowlang.service.outage_log import OutageLog
from flowlang.service.upstream import Answer, Upstream, UpstreamError

log = logging.getLogger("flowlang.service")

FORWARDED = b"x-flowlang-forwarded"
LOCAL = ("/webhooks/", "/health", "/ready", "/metrics")  # what every process answers itself
_HOP_BY_HOP = {
    b"connection",
    b"keep-alive",
    b"transfer-encoding",
    b"te",
    b"trailer",
    b"upgrade",
    b"content-length",
    b"expect",  # the body is read already: no 100 Continue to wait for
    b"proxy-connection",
}
# What the server of the process answering writes into every answer itself (uvicorn: `date`,
# and `server` unless turned off): the leader's are dropped, or the client would get two.
_SERVERS_OWN = {b"date", b"server"}
_NOT_PASSED_BACK = _HOP_BY_HOP | _SERVERS_OWN
# Who the client is, as the process it came to saw it: written anew on every hop, never the
# client's own (the next process trusts these from loopback: a client's would be believed).
_CLIENT_SEEN = {b"x-forwarded-for", b"x-forwarded-proto"}


class Forwarder:
    """Passes requests to the leader while `follower()` says this process follows;
    `leader_url()` (blocking, run off the event loop) says where the leader is. `aclose` when
    the app stops."""

    def __init__(
        self,
        follower: Callable[[], bool],
        leader_url: Callable[[], str | None],
        key: bytes,
        cache_seconds: float = 1.0,
        mark: bool = True,
    ) -> None:
        self.follower = follower
        self.leader_url = leader_url
        self.key = key  # the service's processes' mark on a request one of them forwarded
        self.cache_seconds = cache_seconds
        # False: the front's hop to its own engine process (`front.py`), which may pass the
        # request on to the leader once: a request keeps the mark it came with, gets none.
        self.mark = mark
        self._leader: tuple[str | None, float] = (None, 0.0)
        self._upstreams: Upstream | None = None
        self._unreadable = OutageLog(log, "cannot read who leads the engine")

    def wants(self, scope: Scope) -> bool:
        if scope["type"] != "http":  # the lifespan's and websockets' scopes have no path
            return False
        path: str = scope["path"]
        return not path.startswith(LOCAL) and self.follower()

    def forwarded(self, scope: Scope) -> bool:
        """Whether a process of this service forwarded the request (its mark is the key)."""
        return any(
            name == FORWARDED and hmac.compare_digest(value, self.key)
            for name, value in scope["headers"]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.mark and self.forwarded(scope):
            await _unavailable(send, "the lead is changing hands; try again")
            return
        leader = await self.where()
        if leader is None:
            await _unavailable(send, "no process leads the engine yet; try again")
            return
        await self._forward(leader, scope, receive, send)

    async def forward(self, leader: str, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on to `leader` (a URL `where` gave), as `__call__` does."""
        if self.mark and self.forwarded(scope):
            await _unavailable(send, "the lead is changing hands; try again")
            return
        await self._forward(leader, scope, receive, send)

    async def where(self) -> str | None:
        """The leader's URL (None: none leads, or the store cannot say), read at most once
        every `cache_seconds`."""
        url, at = self._leader
        if url is None or time.monotonic() - at > self.cache_seconds:
            try:
                url = await asyncio.to_thread(self.leader_url)
            except Exception as exc:  # the store cannot say: as good as no leader
                self._unreadable.failed(exc)
                url = None
            else:
                self._unreadable.recovered()
            self._leader = (url, time.monotonic())
        return url

    async def _forward(self, leader: str, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _body(receive)
        # The Host header is kept: the leader checks a page's Origin against it.
        headers = [
            (k, v)
            for k, v in scope["headers"]
            if k.lower() not in _HOP_BY_HOP
            and k.lower() != FORWARDED
            and k.lower() not in _CLIENT_SEEN
        ]
        headers += _client_seen(scope)
        if self.mark or self.forwarded(scope):
            headers.append((FORWARDED, self.key))
        upstream, prefix = self._upstream(leader)
        raw: bytes | None = scope.get("raw_path")
        target = prefix + (raw.decode("latin-1") if raw else quote(scope["path"]))
        query = scope.get("query_string", b"").decode("latin-1")
        if query:
            target += "?" + query
        try:
            answer = await upstream.request(scope["method"], target, headers, body)
        except UpstreamError as exc:
            self._leader = (None, 0.0)
            await _unavailable(send, f"the leader at {leader} did not answer: {exc}")
            return
        try:
            await _stream(answer, scope, receive, send)
        finally:
            answer.close()

    def _upstream(self, leader: str) -> tuple[Upstream, str]:
        """The connections to `leader` (those to a leader before it closed) and the path its
        URL puts before every request's."""
        parts = urlsplit(leader)
        origin = f"{parts.scheme}://{parts.netloc}"
        if self._upstreams is None or self._upstreams.origin != origin:
            if self._upstreams is not None:
                self._upstreams.close()
            self._upstreams = Upstream(origin)
        return self._upstreams, parts.path.rstrip("/")

    async def aclose(self) -> None:
        if self._upstreams is not None:
            self._upstreams.close()
            self._upstreams = None


class Passing(Protocol):
    """What `ForwardToLeader` hands requests to: a `Forwarder`, or a front's `FrontRoute`."""

    def wants(self, scope: Scope) -> bool: ...

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...


class ForwardToLeader:
    """ASGI middleware: what `forwarder` wants goes to the leader, the rest to `app`."""

    def __init__(self, app: ASGIApp, forwarder: Passing) -> None:
        self.app = app
        self.forwarder = forwarder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.forwarder.wants(scope):
            await self.forwarder(scope, receive, send)
            return
        if scope["type"] == "http" and any(name == FORWARDED for name, _ in scope["headers"]):
            # the app never reads it: a client's own, or the key, goes no further
            headers = [(k, v) for k, v in scope["headers"] if k != FORWARDED]
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


def _client_seen(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The client's address and scheme as this process's server gave them (a proxy's
    `X-Forwarded-For` only where the server trusts it: docs/service.md)."""
    client = scope.get("client")
    seen = [(b"x-forwarded-proto", str(scope.get("scheme", "http")).encode("latin-1"))]
    if client:
        seen.append((b"x-forwarded-for", str(client[0]).encode("latin-1")))
    return seen


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message: Message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _stream(answer: Answer, scope: Scope, receive: Receive, send: Send) -> None:
    """The leader's answer to the client: in one piece when it has all arrived (most API
    answers), else chunk by chunk as it comes (a live stream), until the answer ends or the
    client goes away (the leader's connection is then closed, which ends the stream there)."""
    headers = [(k, v) for k, v in answer.headers if k not in _NOT_PASSED_BACK]
    if answer.complete():
        body = b"".join([chunk async for chunk in answer.body()])
        if scope["method"] != "HEAD" and answer.status not in (204, 304):
            headers.append((b"content-length", b"%d" % len(body)))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})
        return
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    watcher = asyncio.ensure_future(_gone(receive, answer))
    try:
        async for chunk in answer.body():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except UpstreamError:  # the leader (or the client) went away mid-answer: end it there
        pass
    finally:
        watcher.cancel()
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _gone(receive: Receive, answer: Answer) -> None:
    """Close the leader's answer when the client disconnects."""
    while (await receive())["type"] != "http.disconnect":
        pass
    answer.close()


async def _unavailable(send: Send, detail: str) -> None:
    body: dict[str, Any] = {"detail": detail}
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1")],
        }
    )
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})
