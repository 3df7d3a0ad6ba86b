"""The example host service: start it on loopback, post events, read what the engine did."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from examples.host_service import ROOT, build_server


@contextmanager
def serving(store: Path | None = None) -> Iterator[str]:
    server = build_server(0, store=store)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def base_url() -> Iterator[str]:
    with serving() as url:
        yield url


def _answer(request: urllib.request.Request | str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def post(url: str, payload: Any) -> tuple[int, dict[str, Any]]:
    data = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
    return _answer(
        urllib.request.Request(
            url, data=data, method="POST", headers={"Content-Type": "application/json"}
        )
    )


def get(url: str) -> tuple[int, dict[str, Any]]:
    return _answer(url)


def test_health(base_url: str) -> None:
    with urllib.request.urlopen(f"{base_url}/health", timeout=10) as response:
        body = json.loads(response.read())
    assert body["ok"] is True and body["flow"] == "GBank messaging"


def test_a_whatsapp_message_runs_the_messaging_flow(base_url: str) -> None:
    status, body = post(
        f"{base_url}/events",
        {
            "type": "inbound",
            "event_id": "wamid.1",
            "channel": "whatsapp",
            "sender_id": "447700900123",
            "sender_phone": "447700900123",
            "text": "card fees?",
            "timestamp": "2026-03-02T10:00:00Z",
        },
    )
    assert status == 200
    assert body["conversation_id"]
    assert [p["step"] for p in body["path"]][:2] == ["recognize", "call"]
    assert body["deliveries"][0]["content"]["text"].startswith("Welcome to GBank!")
    status, again = post(
        f"{base_url}/events",
        {
            "type": "inbound",
            "event_id": "wamid.1",
            "channel": "whatsapp",
            "sender_id": "447700900123",
            "text": "card fees?",
            "timestamp": "2026-03-02T10:00:00Z",
        },
    )
    assert status == 200 and again["duplicate"] is True


def test_bad_events_get_a_400_naming_the_field(base_url: str) -> None:
    status, body = post(
        f"{base_url}/events", {"type": "inbound", "channel": "whatsapp", "timestamp": "yesterday"}
    )
    assert status == 400
    fields = {p["field"] for p in body["problems"]}
    assert {"inbound.event_id", "inbound.sender_id", "inbound.timestamp"} <= fields
    status, body = post(f"{base_url}/events", b"{not json")
    assert status == 400


def test_tick_fires_due_timers(base_url: str) -> None:
    post(
        f"{base_url}/events",
        {
            "type": "inbound",
            "event_id": "wamid.2",
            "channel": "web",
            "sender_id": "guest-1",
            "text": "hello",
            "timestamp": "2026-03-02T10:00:00Z",
        },
    )
    status, body = post(f"{base_url}/tick", {"now": "2026-03-02T10:11:00"})  # no zone: UTC
    assert status == 200
    resumed = [p for o in body["outcomes"] for p in o["path"]]
    assert any(p["detail"] == "resumed: timeout" for p in resumed)


def test_a_raw_whatsapp_webhook_is_normalised_and_processed(base_url: str) -> None:
    body = (ROOT / "examples/payloads/whatsapp/text.json").read_bytes()
    status, result = post(f"{base_url}/webhooks/whatsapp", body)
    assert status == 200 and result["outcomes"]
    assert all(o["conversation_id"] for o in result["outcomes"])
    status, problem = post(f"{base_url}/webhooks/whatsapp", b"{not json")
    assert status == 400 and problem["error"]
    status, unknown = post(f"{base_url}/webhooks/fax", b"{}")
    assert status == 404 and "whatsapp" in unknown["channels"]


def _web(event_id: str, text: str, minute: int) -> dict[str, Any]:
    return {
        "type": "inbound",
        "event_id": event_id,
        "channel": "web",
        "account": "gbank-web",
        "sender_id": "guest-7",
        "text": text,
        "timestamp": f"2026-03-02T10:{minute:02d}:00Z",
    }


def _escalate_to_an_agent(base_url: str) -> None:
    """A web visitor with no account number: the bot escalates, alice takes it at once."""
    _, first = post(f"{base_url}/events", _web("w1", "hello", 0))
    post(f"{base_url}/events", _web("w2", "no account, sorry", 1))  # handed to the bot
    bot = {
        "type": "bot",
        "event_id": "b1",
        "conversation_id": first["conversation_id"],
        "outcome": "escalate",
        "intent": "fees",
        "timestamp": "2026-03-02T10:02:00Z",
    }
    post(f"{base_url}/events", bot)


def test_an_agent_action_on_another_agents_conversation_is_a_409_with_the_refusal(
    base_url: str,
) -> None:
    _escalate_to_an_agent(base_url)  # alice has it
    _, first = post(f"{base_url}/events", _web("w3", "are you there?", 3))
    conversation = first["conversation_id"]
    action = {
        "type": "agent",
        "event_id": "a1",
        "conversation_id": conversation,
        "action": "reply",
        "text": "Bob here",
        "timestamp": "2026-03-02T10:04:00Z",
    }
    status, body = post(f"{base_url}/events", {**action, "agent_id": "bob"})
    assert status == 409 and body["deliveries"] == []
    assert body["refusal"] == {
        "agent": "bob",
        "action": "reply",
        "conversation_id": conversation,
        "code": "not_holder",
        "reason": f"bob does not hold {conversation}: it is with alice",
    }
    status, body = post(f"{base_url}/events", {**action, "agent_id": "alice", "event_id": "a2"})
    assert status == 200 and body["refusal"] is None
    assert [d["status"] for d in body["deliveries"]] == ["sent"]


def test_realtime_follows_the_engine_without_reading_the_log(base_url: str) -> None:
    _escalate_to_an_agent(base_url)
    status, view = get(f"{base_url}/realtime?at=2026-03-02T10:05:00Z")
    assert status == 200 and view["at"] == "2026-03-02T10:05:00+00:00"
    retail = {row["queue"]: row for row in view["queues"]}["Retail Banking"]
    assert (retail["waiting"], retail["in_progress"]) == (0, 1)  # alice took it at once
    assert {row["agent"]: row["conversations"] for row in view["agents"]}["alice"] == 1
    messages = {row["media"]: row for row in view["media"]}["Messages"]
    assert (messages["active"], messages["longest"]) == (1, 300)  # since 10:00
    assert get(f"{base_url}/realtime?at=2026-03-02T10:05:00")[1] == view  # no zone: UTC
    status, problem = get(f"{base_url}/realtime?at=yesterday")
    assert status == 400 and "not an ISO time" in problem["error"]


def test_a_host_on_a_store_file_restarts_with_its_real_time_view(tmp_path: Path) -> None:
    store = tmp_path / "cc.sqlite"
    with serving(store) as url:
        _escalate_to_an_agent(url)
        before = get(f"{url}/realtime?at=2026-03-02T10:05:00Z")[1]
    with serving(store) as url:  # a new process: the live view is folded from the store
        status, after = get(f"{url}/realtime?at=2026-03-02T10:05:00Z")
        assert status == 200 and after == before
        alice = {row["agent"]: row["conversations"] for row in after["agents"]}["alice"]
        assert alice == 1
        _, again = post(f"{url}/events", _web("w1", "hello", 0))
        assert again["duplicate"]  # the store remembers what it processed
