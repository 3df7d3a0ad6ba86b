"""Vendor message ids and delivery statuses through the service: an agent's reply goes to the
(fake) WhatsApp Cloud API, which answers with its wamid; WhatsApp's signed status webhooks then
show in the agent's history and in /metrics; a 131047 failure closes the window, so the next
free-form reply is refused and a template is asked for; a status of an unknown id is counted,
not dead-lettered; an unsigned status is refused."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.fake_vendor import FakeVendor, Reply
from tests.service.api_helpers import DIRECT, WA_TOKEN_ENV, Api, Stream, live_server, make_api
from tests.service.helpers import METRICS_AUTH, environment, signed_headers

PAYLOADS = Path(__file__).resolve().parents[2] / "examples" / "payloads"


def _accepted(wamid: str) -> Reply:
    """The Cloud API's answer to a send it accepted (its documented shape)."""
    return Reply(
        body={
            "messaging_product": "whatsapp",
            "contacts": [{"input": "447700900777", "wa_id": "447700900777"}],
            "messages": [{"id": wamid}],
        }
    )


def _status(wamid: str, status: str, at: datetime, failed: bool = False) -> bytes:
    name = "status_failed.json" if failed else "status.json"
    payload = json.loads((PAYLOADS / "whatsapp" / name).read_text())
    item = payload["entry"][0]["changes"][0]["value"]["statuses"][0]
    item.update(id=wamid, status=status, timestamp=str(int(at.timestamp())))
    return json.dumps(payload).encode()


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_vendor: FakeVendor) -> Iterator[Api]:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(WA_TOKEN_ENV, "wa-access-token")
    yield from live_server(make_api(tmp_path, DIRECT, vendor=fake_vendor.base_url))


def _post_status(api: Api, body: bytes) -> dict[str, Any]:
    answer = api.client.post(
        "/webhooks/whatsapp", content=body, headers=signed_headers("whatsapp", body)
    )
    assert answer.status_code == 200, answer.text
    api.settled()
    result: dict[str, Any] = answer.json()
    return result


def _outbound(api: Api, conv: str) -> list[dict[str, Any]]:
    page = api.get("frank", f"/api/agent/interactions/{conv}/history")
    assert page.status_code == 200, page.text
    return [m for m in page.json()["messages"] if m["direction"] == "out"]


def _until_accepted(api: Api, conv: str, count: int) -> list[dict[str, Any]]:
    for _ in range(500):  # delivery follows the commit, on the engine's worker
        sent = _outbound(api, conv)
        if len(sent) == count and all(m["delivery"] for m in sent):
            return sent
        time.sleep(0.01)
    raise AssertionError(f"not delivered: {_outbound(api, conv)}")


def _metric(api: Api, name: str, **labels: str) -> float:
    text = api.client.get("/metrics", headers=METRICS_AUTH).text
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_the_wamid_and_its_statuses_show_in_the_history_and_the_metrics(
    api: Api, fake_vendor: FakeVendor
) -> None:
    fake_vendor.script(_accepted("wamid.HBgLRklSU1Q="), _accepted("wamid.HBgMU0VDT05E"))
    api.put("frank", "/api/agent/presence", {"state": "available"})
    api.whatsapp("447700900777", "A payment I did not make", datetime.now(UTC))
    (conv,) = api.work("frank")
    assert api.post("frank", f"/api/agent/interactions/{conv}/accept").status_code == 200
    for text in ("Looking at it now.", "Could you confirm the amount?"):
        answer = api.post("frank", f"/api/agent/interactions/{conv}/reply", {"text": text})
        assert answer.status_code == 200, answer.text
    first, second = _until_accepted(api, conv, 2)
    assert (
        first["delivery"] | {"vendor_id": "wamid.HBgLRklSU1Q=", "status": "accepted"}
        == (first["delivery"])
    )
    assert first["message_id"] and "message_id" not in first["content"]

    now = datetime.now(UTC)
    _post_status(api, _status("wamid.HBgLRklSU1Q=", "delivered", now))
    _post_status(api, _status("wamid.HBgLRklSU1Q=", "read", now))
    with api.client.stream("GET", "/api/agent/stream", headers=api.auth("frank")) as response:
        stream = Stream(response)
        stream.until("hello")
        ack = _post_status(api, _status("wamid.HBgMU0VDT05E", "failed", now, failed=True))
        window = stream.until("window")
    assert window | {"conversation_id": conv, "minutes_left": 0, "error_code": "131047"} == window
    assert "refused a message (error 131047)" in window["text"]
    assert ack == {"accepted": 1, "duplicates": 0, "dead_letters": 0}
    first, second = _outbound(api, conv)
    assert first["delivery"]["status"] == "read"
    assert second["delivery"]["status"] == "failed"
    assert second["delivery"]["error"].startswith("131047: Message failed to send because")
    assert _metric(api, "flowlang_delivery_statuses_total", status="read", known="true") == 1
    failed = _metric(api, "flowlang_delivery_statuses_total", status="failed", error_code="131047")
    assert failed == 1

    # WhatsApp counts the window as closed: a free-form reply is refused, a template asked for.
    sends = len(fake_vendor.requests)
    refused = api.post("frank", f"/api/agent/interactions/{conv}/reply", {"text": "Hello?"})
    assert refused.status_code == 409, refused.text
    assert "template" in refused.text and "131047" in refused.text
    time.sleep(0.2)
    assert len(fake_vendor.requests) == sends  # nothing went to the vendor


def test_a_status_of_an_unknown_id_is_counted_and_an_unsigned_one_refused(api: Api) -> None:
    body = _status("wamid.NOT-FROM-HERE", "delivered", datetime.now(UTC))
    assert _post_status(api, body) == {"accepted": 1, "duplicates": 0, "dead_letters": 0}
    assert _metric(api, "flowlang_delivery_statuses_total", known="false") == 1
    assert _metric(api, "flowlang_dead_letters_total") == 0
    unsigned = api.client.post(
        "/webhooks/whatsapp",
        content=_status("wamid.X", "read", datetime.now(UTC)),
        headers={"Content-Type": "application/json"},
    )
    assert unsigned.status_code == 401
    assert _metric(api, "flowlang_delivery_statuses_total", status="read") == 0


# The Cloud API's answer to a send outside the customer service window (its documented shape).
RE_ENGAGEMENT = {
    "error": {
        "message": "(#131047) Re-engagement message",
        "type": "OAuthException",
        "code": 131047,
        "error_data": {
            "messaging_product": "whatsapp",
            "details": "Message failed to send because more than 24 hours have passed since "
            "the customer last replied to this number.",
        },
        "fbtrace_id": "AbCdEfGhIjK",
    }
}


def test_a_reply_the_vendor_refuses_for_good_is_queued_then_shown_failed_with_the_reason(
    api: Api, fake_vendor: FakeVendor
) -> None:
    """Issue 21: the reply API said "sent", the history `delivery: null`, and the agent was
    never told. Now: "queued", then the history says failed and why, and the stream tells."""
    fake_vendor.script(Reply.error(400, RE_ENGAGEMENT))
    api.put("frank", "/api/agent/presence", {"state": "available"})
    api.whatsapp("447700900778", "Are you there?", datetime.now(UTC))
    (conv,) = api.work("frank")
    assert api.post("frank", f"/api/agent/interactions/{conv}/accept").status_code == 200
    with api.client.stream("GET", "/api/agent/stream", headers=api.auth("frank")) as response:
        stream = Stream(response)
        stream.until("hello")
        answer = api.post("frank", f"/api/agent/interactions/{conv}/reply", {"text": "Yes!"})
        assert answer.status_code == 200, answer.text
        (queued,) = answer.json()["deliveries"]
        assert queued["status"] == "queued" and queued["message_id"]  # not "sent": not yet
        failed = stream.until("delivery_failed")
    assert failed["conversation_id"] == conv and failed["message_id"] == queued["message_id"]
    assert failed["permanent"] is True
    assert "error 131047 (re-engagement message" in failed["error"]
    assert failed["text"].startswith("Not delivered on WhatsApp Business: HTTP 400, error 131047")
    api.settled()
    (sent,) = _outbound(api, conv)
    assert sent["message_id"] == queued["message_id"]
    assert sent["delivery"]["status"] == "failed" and sent["delivery"]["vendor_id"] is None
    assert sent["delivery"]["error"] == failed["error"]
    assert len(fake_vendor.requests) == 1  # refused for good: not retried
    assert _metric(api, "flowlang_deliveries_total", status="failed_permanent") == 1


def test_a_reply_the_vendor_accepts_is_queued_then_shows_the_vendors_id(
    api: Api, fake_vendor: FakeVendor
) -> None:
    """A reply the vendor accepts: "queued", then the vendor's id; no failure on the stream."""
    fake_vendor.script(_accepted("wamid.HBgLQUNDRVBURUQ="))
    api.put("frank", "/api/agent/presence", {"state": "available"})
    api.whatsapp("447700900779", "Hello", datetime.now(UTC))
    (conv,) = api.work("frank")
    assert api.post("frank", f"/api/agent/interactions/{conv}/accept").status_code == 200
    answer = api.post("frank", f"/api/agent/interactions/{conv}/reply", {"text": "Hi"})
    assert [d["status"] for d in answer.json()["deliveries"]] == ["queued"]
    schemas = api.client.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["DeliveryView"]["properties"]["status"]["enum"] == ["queued", "degraded"]
    (sent,) = _until_accepted(api, conv, 1)
    assert sent["delivery"]["status"] == "accepted"
    assert sent["delivery"]["vendor_id"] == "wamid.HBgLQUNDRVBURUQ="
