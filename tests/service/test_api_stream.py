"""Each agent's live stream, against the service as a real uvicorn server: offers, customer
messages, withdrawals, reply-window warnings; tickets for EventSource; a revoked token closes
the stream."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from flowlang.service.stream import CLOSED, STREAMS_PER_AGENT, AgentFeed, events
from flowlang.service.worker import WorkerStopped
from tests.fake_vendor import FakeVendor
from tests.service.api_helpers import (
    DIRECT,
    WA_TOKEN_ENV,
    Api,
    Stream,
    live_server,
    make_api,
    revoke,
)
from tests.service.helpers import environment


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    service = make_api(tmp_path)
    service.app.state.agent_feed.recheck = 0.2  # seconds between two checks of the token
    yield from live_server(service)


@contextmanager
def stream_of(api: Api, agent: str, **kw: object) -> Iterator[Stream]:
    headers = kw.pop("headers", api.auth(agent))
    with api.client.stream("GET", "/api/agent/stream", headers=headers, **kw) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Stream(response)


def test_an_agent_session_on_the_stream(api: Api) -> None:
    api.put("frank", "/api/agent/presence", {"state": "available"})
    with stream_of(api, "frank") as stream:
        hello = stream.until("hello")
        assert hello == {"agent": "frank", "presence": "available", "work": []}
        api.web("v-9", "Hello")
        api.web("v-9", "Eve")
        offer = stream.until("offer")
        conv = offer["conversation_id"]
        assert offer["channel"] == "web" and offer["queue"] == "Overflow"
        assert offer["offer_ends_at"] is not None
        assert api.post("frank", f"/api/agent/interactions/{conv}/accept").status_code == 200
        assert stream.until("assigned")["conversation_id"] == conv
        api.web("v-9", "My card was charged twice")
        message = stream.until("message")
        assert message["conversation_id"] == conv
        assert message["text"] == "My card was charged twice"
        transfer = api.post("frank", f"/api/agent/interactions/{conv}/transfer", {"queue": "Cards"})
        assert transfer.status_code == 200
        assert stream.until("withdrawn") == {"conversation_id": conv, "reason": "transferred"}


def test_another_agents_offer_never_reaches_the_stream(api: Api) -> None:
    api.put("frank", "/api/agent/presence", {"state": "available"})
    with stream_of(api, "alice") as alice:
        alice.until("hello")
        api.web("v-3", "Hello")
        api.web("v-3", "Eve")  # offered to frank
        api.put("alice", "/api/agent/presence", {"state": "away"})
        kind, data = alice.next()
        assert (kind, data) == ("presence", {"state": "away"})  # nothing of frank's came first


def test_a_decline_withdraws_the_offer_from_the_stream(api: Api) -> None:
    api.put("frank", "/api/agent/presence", {"state": "available"})
    with stream_of(api, "frank") as stream:
        stream.until("hello")
        api.web("v-4", "Hello")
        api.web("v-4", "Eve")
        conv = stream.until("offer")["conversation_id"]
        api.post("frank", f"/api/agent/interactions/{conv}/decline")
        assert stream.until("withdrawn") == {"conversation_id": conv, "reason": "declined"}


def test_the_stream_warns_before_the_whatsapp_window_closes(api: Api) -> None:
    api.put("sam", "/api/supervisor/agents/kenji/presence", {"state": "away"})
    with stream_of(api, "alice") as stream:
        stream.until("hello")
        # The customer wrote 23 h 55 min ago: the 24-hour window closes in about 5 minutes.
        api.whatsapp(
            "447700900555",
            "Is my card blocked?",
            datetime.now(UTC) - timedelta(hours=23, minutes=55),
        )
        conv = stream.until("assigned")["conversation_id"]
        window = stream.until("window")
        assert window["conversation_id"] == conv and window["channel"] == "whatsapp"
        assert re.fullmatch(r"WhatsApp Business reply window closes in \d+ min", window["text"])
        assert 0 < window["minutes_left"] <= 10


def test_revoking_the_token_closes_the_open_stream(api: Api) -> None:
    with stream_of(api, "frank") as stream:
        stream.until("hello")
        revoke(api, "frank")
        assert stream.until("closed") == {"reason": CLOSED}
        with pytest.raises(AssertionError, match="the stream ended"):
            stream.next()
    again = api.client.get("/api/agent/stream", headers=api.auth("frank"))
    assert again.status_code == 401


def test_a_browser_opens_the_stream_with_a_one_use_ticket(api: Api) -> None:
    ticket = api.post("frank", "/api/agent/stream-ticket")
    assert ticket.status_code == 200, ticket.text
    value = ticket.json()["ticket"]
    assert api.tokens["frank"] not in value
    with stream_of(api, "frank", headers={}, params={"ticket": value}) as stream:
        assert stream.until("hello")["agent"] == "frank"
    used = api.client.get("/api/agent/stream", params={"ticket": value})
    assert used.status_code == 401
    token_in_url = api.client.get("/api/agent/stream", params={"token": api.tokens["frank"]})
    assert token_in_url.status_code == 401


def test_a_ticket_of_a_revoked_token_opens_nothing(api: Api) -> None:
    value = api.post("frank", "/api/agent/stream-ticket").json()["ticket"]
    revoke(api, "frank")
    answer = api.client.get("/api/agent/stream", params={"ticket": value})
    assert answer.status_code == 401
    assert "revoked" in answer.json()["detail"]["reason"]


def test_an_agent_session_end_to_end_reaches_the_vendor_and_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_vendor: FakeVendor
) -> None:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(WA_TOKEN_ENV, "wa-access-token")
    service = make_api(tmp_path, DIRECT, vendor=fake_vendor.base_url)
    for api in live_server(service):
        api.put("frank", "/api/agent/presence", {"state": "available"})
        with stream_of(api, "frank") as stream:
            stream.until("hello")
            api.whatsapp("447700900777", "A payment I did not make", datetime.now(UTC))
            offer = stream.until("offer")
            conv = offer["conversation_id"]
            assert offer["channel"] == "whatsapp" and offer["window_closes_at"] is not None
            assert api.post("frank", f"/api/agent/interactions/{conv}/accept").status_code == 200
            stream.until("assigned")
            reply = {"text": "Hello Ben, I am looking at it now."}
            answer = api.post("frank", f"/api/agent/interactions/{conv}/reply", reply)
            assert answer.status_code == 200, answer.text
            for _ in range(500):  # delivery follows the commit, on the engine's worker
                if fake_vendor.requests:
                    break
                time.sleep(0.01)
            (request,) = [r for r in fake_vendor.requests if r.path.endswith("/messages")]
            assert request.path == "/106540352242922/messages"
            assert request.headers["authorization"] == "Bearer wa-access-token"
            assert request.json()["to"] == "447700900777"
            assert request.json()["text"]["body"] == "Hello Ben, I am looking at it now."
            done = api.post(
                "frank", f"/api/agent/interactions/{conv}/complete", {"wrap_up": "Resolved"}
            )
            assert done.status_code == 200, done.text
        report = api.get(
            "sam", "/api/supervisor/reports/interactions", params={"from": "2020-01-01"}
        )
        (row,) = report.json()["reports"][0]["rows"]
        assert row["conversation"] == conv and row["channel"] == "whatsapp"
        assert row["agents"] == ["frank"] and row["wrap_up"] == "Resolved"


def test_a_stream_opened_later_still_hears_the_customer_of_a_conversation_it_has(
    api: Api,
) -> None:
    api.put("frank", "/api/agent/presence", {"state": "available"})
    api.web("v-7", "Hello")
    api.web("v-7", "Eve")  # offered to frank while no stream was open
    (conv,) = api.work("frank")
    with stream_of(api, "frank") as stream:
        assert [w["conversation_id"] for w in stream.until("hello")["work"]] == [conv]
        api.web("v-7", "Are you there?")
        message = stream.until("message")
        assert message == message | {"conversation_id": conv, "text": "Are you there?"}


def test_a_reply_given_up_on_reaches_the_agent_who_wrote_it_until_their_wrap_up_ends() -> None:
    """The outbox's `delivery_failed` (on its own thread) goes to the agent who has the
    conversation or, once completed, to the one who last replied in it, through after-call
    work; a failure still to be retried, or after the wrap-up, tells no one."""
    feed = AgentFeed(cast(Any, None), cast(Any, None))
    pushed: list[tuple[str, dict[str, Any]]] = []
    feed.push = lambda agent, item: pushed.append((agent, item))  # type: ignore[method-assign]
    at = datetime.now(UTC)
    failure = {
        "kind": "delivery_failed",
        "at": at,
        "conversation_id": "conv1",
        "channel": "whatsapp",
        "message_id": "m1",
        "error": "whatsapp: HTTP 400, error 131026 (message undeliverable ...): (#131026)",
        "given_up": True,
        "permanent": True,
    }
    for kind in ("accepted", "message_out", "completed"):
        feed({"kind": kind, "at": at, "conversation_id": "conv1", "agent": "frank"})
    feed.delivery_failed({**failure, "given_up": False})  # to be retried: nothing yet
    assert pushed == []
    feed.delivery_failed(failure)
    ((agent, item),) = pushed
    assert agent == "frank"
    assert item == {
        "type": "delivery_failed",
        "conversation_id": "conv1",
        "message_id": "m1",
        "channel": "whatsapp",
        "error": failure["error"],
        "permanent": True,
        "text": "Not delivered on WhatsApp Business: HTTP 400, error 131026 "
        "(message undeliverable ...): (#131026)",
    }
    feed({"kind": "wrap_up_ended", "at": at, "conversation_id": "conv1", "agent": "frank"})
    pushed.clear()
    feed.delivery_failed(failure)
    assert pushed == []


def test_a_stream_ends_quietly_when_the_service_stops() -> None:
    """Shutting down while an agent's stream is open ends it without an error in the log and
    without `closed` (which would sign the browser out; its EventSource reconnects instead)."""

    async def read_all() -> list[str]:
        feed = AgentFeed(cast(Any, None), cast(Any, None), recheck=0.0, heartbeat=60.0)
        opened = feed.open("frank")
        assert opened is not None

        async def stopped() -> bool:
            raise WorkerStopped("the engine worker is not running")

        hello = {"type": "hello", "agent": "frank", "work": []}
        texts = [t async for t in events(feed, "frank", opened, hello, stopped, now)]
        assert feed._streams == {}  # the stream was closed
        return texts

    def now() -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC)

    texts = asyncio.run(read_all())
    assert len(texts) == 1 and texts[0].startswith("event: hello")


def test_an_agent_holds_at_most_so_many_streams_and_others_are_not_concerned(api: Api) -> None:
    """One token holding streams by the hundred would take every connection the server
    admits (webhooks included): beyond STREAMS_PER_AGENT, a stream is 429 and opens nothing."""
    with ExitStack() as stack:
        held = [stack.enter_context(stream_of(api, "frank")) for _ in range(STREAMS_PER_AGENT)]
        for stream in held:  # (kept: a Stream let go of closes its response)
            stream.until("hello")
        refused = api.client.get("/api/agent/stream", headers=api.auth("frank"))
        assert refused.status_code == 429, refused.text
        assert refused.json()["detail"]["code"] == "too_many_streams"
        with stream_of(api, "alice") as alice:
            assert alice.until("hello")["agent"] == "alice"
    with stream_of(api, "frank") as again:  # closed ones count no more
        assert again.until("hello")["agent"] == "frank"
