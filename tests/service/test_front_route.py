"""Where a front passes the API on (`flowlang/service/front_route.py`), against real uvicorn
servers standing in for its own engine process and for the leader's front: while its engine
follows, straight to the leader's front, marked; while it leads, to the engine, unmarked; a
request another process marked is never passed on a second time (docs/scaling.md)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from flowlang.service.forward import FORWARDED, Forwarder, ForwardToLeader
from flowlang.service.front_route import FrontRoute
from tests.service.forwarding import Leader, lifespan_only, serving

KEY = b"the-service-key"


class Echo(Leader):
    """The echo server, counting the requests it answered."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.requests += 1
        await super().__call__(scope, receive, send)


OWN = "http://front.example:8080"  # this service's advertised URL


@dataclass
class Service:
    """A front, its engine process (an echo server) and the leader's front (another)."""

    engine: Echo
    leader: Echo
    leader_url: str
    front: str
    leads: bool = False
    who_leads: list[str | None] = field(default_factory=list)  # what the store says

    def marks(self, answer: httpx.Response) -> list[str]:
        assert answer.status_code == 200, answer.text
        headers: list[list[str]] = answer.json()["headers"]
        return [v for k, v in headers if k == FORWARDED.decode()]


@pytest.fixture
def service() -> Iterator[Service]:
    engine, leader = Echo(), Echo()
    with serving(engine) as engine_url, serving(leader) as leader_url:
        state = Service(engine, leader, leader_url, "", who_leads=[leader_url])
        with _front(state, engine_url) as front:
            state.front = front
            yield state


@contextmanager
def _front(state: Service, engine_url: str) -> Iterator[str]:
    route = FrontRoute(
        Forwarder(lambda: True, lambda: engine_url, KEY, mark=False),
        Forwarder(lambda: True, lambda: state.who_leads[-1], KEY, cache_seconds=0.0),
        lambda: state.leads,
        OWN + "/",
    )
    own = lifespan_only(route.aclose, "the front answered an API request itself")
    with serving(ForwardToLeader(own, route)) as url:
        yield url


def _seen(app: Echo) -> int:
    return app.requests


def test_while_its_engine_follows_the_api_goes_straight_to_the_leaders_front_marked(
    service: Service,
) -> None:
    for forged in ({}, {"X-Flowlang-Forwarded": "forged"}):  # a client's own header: dropped
        answer = httpx.get(f"{service.front}/api/agent/interactions", headers=forged)
        assert service.marks(answer) == [KEY.decode()]
    assert _seen(service.leader) == 2 and _seen(service.engine) == 0


def test_while_its_engine_leads_the_api_goes_to_it_unmarked(service: Service) -> None:
    service.leads = True
    answer = httpx.get(f"{service.front}/api/agent/interactions")
    assert service.marks(answer) == []
    # marked by another process (which found this one leading): the mark is kept, not doubled
    again = httpx.get(f"{service.front}/api/agent/interactions", headers={FORWARDED: KEY})
    assert service.marks(again) == [KEY.decode()]
    assert _seen(service.engine) == 2 and _seen(service.leader) == 0


def test_a_request_another_process_forwarded_is_not_forwarded_again(service: Service) -> None:
    answer = httpx.get(f"{service.front}/api/agent/interactions", headers={FORWARDED: KEY})
    assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
    assert _seen(service.engine) == 0 and _seen(service.leader) == 0


@pytest.mark.parametrize("says", [None, OWN, OWN + "/"])
def test_with_no_leader_known_or_this_service_leading_the_engine_process_decides(
    service: Service, says: str | None
) -> None:
    service.who_leads.append(says)
    assert service.marks(httpx.get(f"{service.front}/api/agent/interactions")) == []
    assert _seen(service.engine) == 1 and _seen(service.leader) == 0
