"""The forwarding path (`flowlang/service/forward.py`, `upstream.py`) against real uvicorn
servers: what a follower passes on reaches the leader unchanged, on kept-alive connections,
and the answer comes back unchanged, live streams chunk by chunk (docs/scaling.md)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowlang.service.forward import FORWARDED, Forwarder, ForwardToLeader
from flowlang.service.upstream import Upstream, UpstreamError
from tests.ports import free_port
from tests.service.forwarding import Leader, lifespan_only, serving

KEY = b"the-service-key"


@pytest.fixture(scope="module")
def leader() -> Iterator[tuple[Leader, str]]:
    app = Leader()
    # its connections as they are (a trusted X-Forwarded-For would stand in for the address)
    with serving(app, proxy_headers=False) as url:
        yield app, url


@contextmanager
def follower(leader_url: str, mark: bool = True, **config: Any) -> Iterator[str]:
    """A process that forwards everything to `leader_url`, as a follower does (`mark`: False
    as a front does to its own engine process; `config`: its uvicorn settings)."""

    forwarder = Forwarder(lambda: True, lambda: leader_url, KEY, mark=mark)
    own = lifespan_only(forwarder.aclose, "a follower's request went to its own app")
    with serving(ForwardToLeader(own, forwarder), **config) as url:
        yield url


def _echo(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    echoed: dict[str, Any] = answer.json()
    return echoed


def test_a_forwarded_request_reaches_the_leader_as_sent_with_the_services_mark(
    leader: tuple[Leader, str],
) -> None:
    _, url = leader
    with follower(url) as front, httpx.Client(base_url=front) as client:
        body = b'{"wrap_up": "Resolved"}'
        answer = client.post(
            "/api/agent/interactions/c%2F1/complete?x=1&y=%20",
            content=body,
            headers={
                "Content-Type": "application/json",
                "Authorization": "Bearer t0k",
                "X-Flowlang-Forwarded": "forged",  # a client's own: never passed on
            },
        )
        echo = _echo(answer)
        assert answer.headers["x-echo"] == "yes"
        assert int(answer.headers["content-length"]) == len(answer.content)
        assert echo["method"] == "POST" and echo["body"] == body.decode()
        assert echo["raw_path"] == "/api/agent/interactions/c%2F1/complete"
        assert echo["query"] == "x=1&y=%20"
        headers = echo["headers"]
        assert ["authorization", "Bearer t0k"] in headers
        assert ["host", front.removeprefix("http://")] in headers  # the client's Host, kept
        assert [v for k, v in headers if k == FORWARDED.decode()] == [KEY.decode()]
        # Answers come back whatever their status, a 204 without a body.
        refused = client.get("/anything", headers={"X-Status": "409"})
        assert refused.status_code == 409 and refused.json()["method"] == "GET"
        empty = client.delete("/anything", headers={"X-Status": "204"})
        assert empty.status_code == 204 and empty.content == b""
        assert client.head("/anything").status_code == 200


def test_the_next_process_is_told_the_client_its_server_saw_never_the_clients_own_claim(
    leader: tuple[Leader, str],
) -> None:
    """The engine process (and a leader's front) trusts `X-Forwarded-For` from loopback, where
    the forwarding process is: a client's own header passed on would make its claimed address
    the one the next process sees (a sign-in limit or a log would believe it). Each hop writes
    the address its server gave; a proxy's header counts only where the server trusts it."""
    _, url = leader
    claim = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}

    def seen(answer: httpx.Response) -> tuple[list[str], list[str]]:
        headers = _echo(answer)["headers"]
        return (
            [v for k, v in headers if k == "x-forwarded-for"],
            [v for k, v in headers if k == "x-forwarded-proto"],
        )

    # a client the forwarding server does not trust (any address but a configured proxy's)
    with follower(url, mark=False, proxy_headers=False) as front:
        answer = httpx.get(f"{front}/api/agent/interactions", headers=claim)
        assert seen(answer) == (["127.0.0.1"], ["http"])  # the connection's, not the claim
    # a proxy the forwarding server trusts (loopback, uvicorn's default): its word is passed on
    with follower(url, mark=False) as front:
        answer = httpx.get(f"{front}/api/agent/interactions", headers=claim)
        assert seen(answer) == (["203.0.113.9"], ["https"])


def test_a_forwarded_answer_has_one_date_and_one_server_header_the_forwarding_servers(
    leader: tuple[Leader, str],
) -> None:
    """Both servers write `date` (and here `server`) into every answer: the leader's are not
    passed back beside the follower's own."""
    _, url = leader
    with follower(url) as front, httpx.Client(base_url=front) as client:
        for answer in (client.get("/api/agent/interactions"), client.head("/anything")):
            assert len(answer.headers.get_list("date")) == 1, answer.headers
            assert answer.headers.get_list("server") == ["uvicorn"], answer.headers
            assert answer.headers["x-echo"] == "yes"  # the leader's own headers still come


def test_a_fronts_hop_to_its_engine_keeps_the_services_mark_and_adds_none(
    leader: tuple[Leader, str],
) -> None:
    """A front passes a request on to its engine process, which may pass it on to the leader
    once: a request another process marked keeps the mark (its engine then passes it on no
    further), a client's gets none (its own header is dropped), and neither is refused."""
    _, url = leader
    with follower(url, mark=False) as front, httpx.Client(base_url=front) as client:

        def marks(headers: dict[str, str]) -> list[str]:
            echoed = _echo(client.get("/api/agent/interactions", headers=headers))["headers"]
            return [v for k, v in echoed if k == FORWARDED.decode()]

        assert marks({}) == []
        assert marks({"X-Flowlang-Forwarded": "forged"}) == []
        assert marks({"X-Flowlang-Forwarded": KEY.decode()}) == [KEY.decode()]


def test_forwarded_requests_share_a_kept_alive_connection_to_the_leader(
    leader: tuple[Leader, str],
) -> None:
    app, url = leader
    with follower(url) as front, httpx.Client(base_url=front) as client:
        before = set(app.clients)
        for number in range(20):
            assert _echo(client.get(f"/api/agent/interactions?n={number}"))["query"] == (
                f"n={number}"
            )
        assert len(app.clients - before) == 1  # 20 requests, one connection


def test_a_live_stream_comes_through_chunk_by_chunk_and_ends_at_the_leader_when_the_client_leaves(
    leader: tuple[Leader, str],
) -> None:
    app, url = leader
    app.left.clear()
    with follower(url) as front, httpx.Client(base_url=front, timeout=10) as client:
        with client.stream("GET", "/stream") as response:
            assert response.headers["content-type"] == "text/event-stream"
            lines = response.iter_lines()
            for number in range(3):
                app.go.set()  # the leader sends the next event only now: nothing is buffered
                assert next(lines) == f"data: {number}"
                assert next(lines) == ""
        assert app.left.wait(10), "the leader's stream went on after the client had left"


def test_a_follower_whose_leader_is_gone_answers_503(leader: tuple[Leader, str]) -> None:
    with follower(f"http://127.0.0.1:{free_port()}") as front:
        answer = httpx.get(front + "/api/agent/presence")
        assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
        assert "did not answer" in answer.json()["detail"]


def test_an_idle_connection_the_leader_closed_is_not_reused_and_a_get_is_answered() -> None:
    app = Leader()
    with serving(app, keep_alive=1) as url:

        async def main() -> list[int]:
            upstream = Upstream(url, idle_seconds=60.0)  # kept longer than the leader keeps it
            statuses = []
            for _ in range(2):
                answer = await upstream.request("GET", "/x", [], b"")
                statuses.append(answer.status)
                assert [chunk async for chunk in answer.body()]
                answer.close()
                await asyncio.sleep(1.5)  # the leader closes the idle connection
            upstream.close()
            return statuses

        assert asyncio.run(main()) == [200, 200]
        assert len(app.clients) == 2


def test_an_upstream_that_is_not_listening_is_an_upstream_error() -> None:
    async def main() -> None:
        upstream = Upstream(f"http://127.0.0.1:{free_port()}")
        with pytest.raises(UpstreamError, match="cannot connect"):
            await upstream.request("GET", "/", [], b"")

    asyncio.run(main())


_token = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-"), min_size=1, max_size=12)
_value = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).map(str.strip)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    path=st.lists(_token, min_size=1, max_size=4),
    query=st.lists(st.tuples(_token, _token), max_size=3),
    headers=st.lists(st.tuples(_token.map(lambda t: "x-" + t), _value), max_size=5),
    body=st.binary(max_size=3000),
)
def test_whatever_is_sent_arrives_unchanged_and_so_does_the_answer(
    leader: tuple[Leader, str],
    method: str,
    path: list[str],
    query: list[tuple[str, str]],
    headers: list[tuple[str, str]],
    body: bytes,
) -> None:
    _, url = leader
    target = "/" + "/".join(path) + ("?" + "&".join(f"{k}={v}" for k, v in query) if query else "")
    sent = [(k.encode(), v.encode()) for k, v in headers if k != "x-status"]
    payload = body.decode("latin-1")

    async def main() -> tuple[int, bytes]:
        upstream = Upstream(url)
        try:
            answer = await upstream.request(method, target, sent, body)
            received = b"".join([chunk async for chunk in answer.body()])
            answer.close()
            return answer.status, received
        finally:
            upstream.close()

    status, received = asyncio.run(main())
    echo = json.loads(received)
    assert status == 200
    assert echo["method"] == method and echo["body"] == payload
    assert echo["raw_path"] + ("?" + echo["query"] if echo["query"] else "") == target
    got = [(k.encode(), v.encode()) for k, v in echo["headers"] if k.startswith("x-")]
    assert got == sent
