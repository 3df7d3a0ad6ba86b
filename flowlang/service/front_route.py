"""Where a front passes on what is not its own (the API, the pages, the live streams).

To its own engine process while that leads (or on SQLite, where it is the only engine). While
it follows, straight to the leader's front (its advertised URL, read from the store), marked
as forwarded, as the engine process would have passed it on: the follower's engine process
takes no part, which saves a hop (an HTTP request parsed and sent again) for every API call
that reaches a follower (docs/scaling.md, "The API and the pages go to the leader"). When the
store does not say who leads, or says this very service leads (its engine has just taken the
lead and not said so yet), the request goes to its own engine process, which decides as
before: runs it, passes it on, or answers 503.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import Receive, Scope, Send

from flowlang.service.forward import Forwarder


class FrontRoute:
    """ASGI forwarder for `ForwardToLeader`: `engine` passes requests to the front's own
    engine process (unmarked), `leader` (None on SQLite) to the leader's front (marked);
    `leads()` says whether the engine process leads; `own_url` is this service's advertised
    URL."""

    def __init__(
        self,
        engine: Forwarder,
        leader: Forwarder | None,
        leads: Callable[[], bool],
        own_url: str,
    ) -> None:
        self.engine = engine
        self.leader = leader
        self.leads = leads
        self.own_url = own_url.rstrip("/")

    def wants(self, scope: Scope) -> bool:
        return self.engine.wants(scope)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.leader is not None and not self.leads():
            url = await self.leader.where()
            if url is not None and url.rstrip("/") != self.own_url:
                await self.leader.forward(url, scope, receive, send)
                return
        await self.engine(scope, receive, send)

    async def aclose(self) -> None:
        await self.engine.aclose()
        if self.leader is not None:
            await self.leader.aclose()
