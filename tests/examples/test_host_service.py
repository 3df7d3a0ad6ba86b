"""The example host service: start it on loopback, post events, read what the engine did."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from examples.host_service import build_server


@pytest.fixture
def base_url() -> Iterator[str]:
    server = build_server(0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def post(url: str, payload: Any) -> tuple[int, dict[str, Any]]:
    data = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


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
    status, body = post(f"{base_url}/tick", {"now": "2026-03-02T10:11:00Z"})
    assert status == 200
    resumed = [p for o in body["outcomes"] for p in o["path"]]
    assert any(p["detail"] == "resumed: timeout" for p in resumed)
