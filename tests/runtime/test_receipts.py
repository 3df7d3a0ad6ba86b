"""Vendor status webhooks: the vendor's id of each message it accepted is kept, and its
statuses (delivered, read, failed with a reason) find the message and its conversation; a
WhatsApp 131047 failure closes the window; a status of an id never sent here is recorded and
counted, never an error or a dead letter."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowlang.channels.inbound import normalise
from flowlang.project import load_project
from flowlang.runtime.engine import Engine
from flowlang.runtime.memory import MemoryStore, ScriptedDataActions
from flowlang.runtime.ports import (
    SENT_STATUSES,
    DataResult,
    OutboundMessage,
    status_advances,
)
from flowlang.store import open_store
from tests.store.helpers import ROOT

PAYLOADS = ROOT / "examples" / "payloads"


class Vendor:
    """Accepts every message and answers with an id of its own, as the vendors do."""

    name = "vendor"

    def __init__(self, prefix: str) -> None:
        self.ids = (f"{prefix}{n}" for n in itertools.count(1))
        self.sent: list[tuple[str, OutboundMessage]] = []

    def send(self, message: OutboundMessage) -> str:
        vendor_id = next(self.ids)
        self.sent.append((vendor_id, message))
        return vendor_id


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
        return
    location = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    db = open_store(location or tmp_path / "s.db")
    yield db
    db.close()


def _engine(store: Any, vendor: Vendor) -> Engine:
    project, ws = load_project(ROOT / "flows/messaging.flow", ROOT / "examples/deployment.yaml")
    assert project is not None, ws.diagnostics
    crm = ScriptedDataActions(
        {"CRM Lookup": DataResult("not_found"), "CRM Send Code": DataResult("not_found")}
    )
    return project.engine(store=store, data_actions=crm, adapters=[vendor])


def _events(channel: str, payload: Any) -> Any:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()

    return normalise(channel, body, received_at=datetime(2026, 1, 5, 10, 30, tzinfo=UTC))


def _whatsapp_status(vendor_id: str, status: str, timestamp: int, failed: bool = False) -> Any:
    name = "status_failed.json" if failed else "status.json"
    payload = json.loads((PAYLOADS / "whatsapp" / name).read_text())
    item = payload["entry"][0]["changes"][0]["value"]["statuses"][0]
    item.update(id=vendor_id, status=status, timestamp=str(timestamp))
    return payload


def _statuses(store: Any) -> list[dict[str, Any]]:
    return [e for e in store.iter_events() if e["kind"] == "delivery_status"]


def _log(store: Any) -> list[dict[str, Any]]:
    return list(store.iter_events())


def test_a_status_finds_the_sent_message_by_the_vendors_id_and_never_goes_back(
    store: Any,
) -> None:
    vendor = Vendor("wamid.OUT")
    engine = _engine(store, vendor)
    (hello,) = _events("whatsapp", (PAYLOADS / "whatsapp/text.json").read_bytes())
    outcome = engine.handle(hello)
    first_id, first = vendor.sent[0]
    assert first.message_id and first.conversation_id == outcome.conversation_id
    kept = store.sent_messages([first.message_id])[first.message_id]
    assert (kept.vendor_id, kept.status) == (first_id, "accepted")

    at = int(hello.timestamp.timestamp())
    for status, seconds in (("delivered", 5), ("read", 6), ("sent", 7)):
        (event,) = _events("whatsapp", _whatsapp_status(first_id, status, at + seconds))
        done = engine.handle(event)
        assert not done.dead_lettered and done.conversation_id == outcome.conversation_id
    kept = store.sent_messages([first.message_id])[first.message_id]
    assert kept.status == "read"  # a "sent" reported late does not undo "read"
    (again,) = _events("whatsapp", _whatsapp_status(first_id, "read", at + 9))
    assert engine.handle(again).duplicate  # the vendor's retry of a status
    logged = _statuses(store)
    assert [e["status"] for e in logged] == ["delivered", "read", "sent"]
    assert {e["conversation_id"] for e in logged} == {outcome.conversation_id}
    assert all(e["message_id"] == first.message_id for e in logged)


def test_a_131047_failure_is_kept_with_its_reason_and_closes_the_window(store: Any) -> None:
    vendor = Vendor("wamid.OUT")
    engine = _engine(store, vendor)
    (hello,) = _events("whatsapp", (PAYLOADS / "whatsapp/text.json").read_bytes())
    outcome = engine.handle(hello)
    vendor_id, message = vendor.sent[0]
    at = int(hello.timestamp.timestamp()) + 60
    (failed,) = _events("whatsapp", _whatsapp_status(vendor_id, "failed", at, failed=True))
    engine.handle(failed)
    kept = store.sent_messages([message.message_id])[message.message_id]
    assert kept.status == "failed"
    assert kept.error.startswith("131047: Message failed to send because more than 24 hours")
    (logged,) = _statuses(store)
    assert logged | {"error_code": "131047", "closes": "window_closed"} == logged
    assert "window_closed" in [e["kind"] for e in _log(store)]

    conv = store.get_conversation(outcome.conversation_id)
    later = failed.timestamp
    text = OutboundMessage(conv.id, "whatsapp", conv.account, "447700900123", "agent", {})
    free = engine.policy.decide(
        OutboundMessage(**{**vars(text), "content": {"kind": "text", "text": "Any news?"}}),
        conv,
        later,
    )
    assert (free.status, free.reason_code) == ("blocked", "window_closed_template_required")
    assert engine.policy.window_closes_at(conv) == failed.timestamp  # closed, and since when
    assert "error 131047" in free.reason
    template = {
        "kind": "template",
        "name": "whatsapp_followup",
        "parameters": {"name": "Ben"},
        "whatsapp_name": "request_follow_up",
        "language": "en_GB",
        "category": "UTILITY",
        "status": "APPROVED",
    }
    allowed = engine.policy.decide(
        OutboundMessage(**{**vars(text), "content": template}), conv, later
    )
    assert allowed.status == "sent", allowed.reason

    # The customer writes again: the window is open again.
    payload = json.loads((PAYLOADS / "whatsapp/text.json").read_text())
    message_in = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message_in.update(id="wamid.again", timestamp=str(at + 60))
    (again,) = _events("whatsapp", payload)
    engine.handle(again)
    conv = store.get_conversation(outcome.conversation_id)
    assert engine.policy.window_open(conv, again.timestamp)[0]


def test_a_status_of_an_id_never_sent_here_is_recorded_not_an_error(store: Any) -> None:
    engine = _engine(store, Vendor("wamid.OUT"))
    (event,) = _events("whatsapp", (PAYLOADS / "whatsapp/status_failed.json").read_bytes())
    outcome = engine.handle(event)
    assert not outcome.dead_lettered and outcome.conversation_id is None
    assert "which no message sent from here has" in outcome.note
    assert store.dead_letters() == []
    (logged,) = _statuses(store)
    assert logged["unknown"] is True and logged["conversation_id"] is None
    assert logged["vendor_id"] == "wamid.HBgMNDQ3NzAwOTAwMTIzFQIAERgSRkFJTEVEMDEyMzQ1Njc4OQA="
    assert logged["error_code"] == "131047"


def test_messenger_delivery_names_mids_and_read_goes_by_the_watermark(store: Any) -> None:
    vendor = Vendor("m_OUT")
    engine = _engine(store, vendor)
    (hello,) = _events("messenger", (PAYLOADS / "messenger/message.json").read_bytes())
    engine.handle(hello)
    sent = [(vid, m) for vid, m in vendor.sent if m.channel == "messenger"]
    assert sent, "the flow answers on Messenger"
    vendor_id, message = sent[0]
    payload = json.loads((PAYLOADS / "messenger/delivery.json").read_text())
    payload["entry"][0]["messaging"][0]["delivery"]["mids"] = [vendor_id]
    (delivery,) = _events("messenger", payload)
    assert delivery.text == "delivered" and delivery.data["mids"] == [vendor_id]
    engine.handle(delivery)
    assert store.sent_messages([message.message_id])[message.message_id].status == "delivered"

    read = json.loads((PAYLOADS / "messenger/delivery.json").read_text())
    item = read["entry"][0]["messaging"][0]
    del item["delivery"]
    item["read"] = {"watermark": item["timestamp"]}
    item["timestamp"] += 1000
    (read_event,) = _events("messenger", read)
    engine.handle(read_event)
    ids = [m.message_id for _vid, m in sent]
    assert {s.status for s in store.sent_messages(ids).values()} == {"read"}


def test_a_twilio_status_callback_links_back_by_the_message_sid(store: Any) -> None:
    vendor = Vendor("SM")
    engine = _engine(store, vendor)
    body = (PAYLOADS / "sms/incoming.txt").read_bytes()
    (hello,) = _events("sms", body)
    engine.handle(hello)
    vendor_id, message = vendor.sent[0]
    callback = (PAYLOADS / "sms/status_undelivered.txt").read_text()
    callback = callback.replace("SM7c1d9e2f3a4b5c6d7e8f9a0b1c2d3e4f", vendor_id)
    (status,) = _events("sms", callback.encode())
    assert (status.refers_to, status.text) == (vendor_id, "undelivered")
    engine.handle(status)
    kept = store.sent_messages([message.message_id])[message.message_id]
    assert (kept.status, kept.error) == ("failed", "30003")
    (logged,) = _statuses(store)
    assert logged | {"status": "failed", "vendor_status": "undelivered"} == logged


@given(st.lists(st.sampled_from([*SENT_STATUSES, "deleted"]), max_size=8))
def test_statuses_only_move_forward_and_failed_is_final(reported: list[str]) -> None:
    status = "accepted"
    for new in reported:
        if status_advances(status, new):
            assert new in SENT_STATUSES and status != "failed"
            status = new
    ranks = [SENT_STATUSES.index(s) for s in reported if s in SENT_STATUSES]
    if "failed" in reported:
        assert status == "failed"
    elif ranks:
        assert status == SENT_STATUSES[max(ranks)]
    else:
        assert status == "accepted"
