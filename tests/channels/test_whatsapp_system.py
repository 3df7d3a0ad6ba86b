"""WhatsApp system messages through ingest on SQLite: a changed number or user id is linked to
the customer and kept as a notice; it never runs the flow or sends anything."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flowlang.channels.ingest import IngestResult, ingest
from flowlang.project import load_project
from flowlang.runtime.engine import Engine
from flowlang.runtime.memory import RecordingAdapter
from flowlang.store import SqliteStore

ROOT = Path(__file__).resolve().parents[2]
PAYLOADS = ROOT / "examples" / "payloads" / "whatsapp"
RECEIVED = datetime(2026, 1, 5, 17, 0, tzinfo=UTC)
FIRST = "Hi, there is a fee on my card I don't recognise"  # text.json
FLOW = """flow "Auto"
serve messages on whatsapp

state start:
    reply "Thanks, an agent will answer shortly."
    route to queue "Retail Banking"
"""


def _engine(tmp_path: Path, store: SqliteStore) -> tuple[Engine, RecordingAdapter]:
    flow = tmp_path / "auto.flow"
    flow.write_text(FLOW, "utf-8")
    project, ws = load_project(flow, ROOT / "examples" / "deployment.yaml")
    assert project is not None, [d.message for d in ws.diagnostics]
    sent = RecordingAdapter()
    return project.engine(store=store, adapters=[sent]), sent


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PAYLOADS / name).read_text())
    return data


def _system(index: int) -> dict[str, Any]:
    """system.json with only its `index`th message."""
    payload = _load("system.json")
    value = payload["entry"][0]["changes"][0]["value"]
    value["messages"] = [value["messages"][index]]
    return payload


def _text(sender: dict[str, str], body: str, message_id: str) -> dict[str, Any]:
    payload = copy.deepcopy(_load("text.json"))
    value = payload["entry"][0]["changes"][0]["value"]
    value.pop("contacts", None)
    message = value["messages"][0]
    message.pop("from", None)
    message.update(sender, id=message_id, timestamp="1767606000", text={"body": body})
    return payload


def _ingest(engine: Engine, payload: dict[str, Any]) -> IngestResult:
    result = ingest(engine, "whatsapp", json.dumps(payload), received_at=RECEIVED)
    assert result.dead_letters == []
    return result


def test_a_number_change_links_the_new_number_and_runs_nothing(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "s.db") as store:
        engine, sent = _engine(tmp_path, store)
        _ingest(engine, _load("text.json"))  # Ben writes from +447700900123
        ben = store.find_customer("phone", "+447700900123")
        assert ben is not None and len(sent.sent) == 1
        before = store.get_conversation("conv1")
        assert before is not None
        (outcome,) = _ingest(engine, _system(0)).outcomes
        assert len(sent.sent) == 1  # was: "[system]" ran the flow and the auto-reply went out
        conv = store.get_conversation(outcome.conversation_id or "")
        assert conv is not None and conv.id == before.id and conv.customer_id == ben.id
        assert (conv.status, conv.agent, conv.last_inbound_at) == (
            before.status,
            before.agent,
            before.last_inbound_at,
        )
        notice = store.history(ben.id).messages[-1]["content"]
        assert notice["kind"] == "system"
        assert notice["text"] == "User Ben Carter changed from 447700900123 to 447700900999"
        (logged,) = [e for e in store.iter_events() if e["kind"] == "identity_changed"]
        assert logged["customer"] == ben.id and logged["new_phone"] == "+447700900999"
        assert not [e for e in store.iter_events() if e["kind"] == "message_in"][1:]
        # Ben writes from the new number: the same customer, with their history.
        _ingest(engine, _text({"from": "447700900999"}, "New phone, same me", "wamid.NEW-1"))
        assert store.find_customer("phone", "+447700900999") == store.get_customer(ben.id)
        texts = [m["content"]["text"] for m in store.history(ben.id).messages]
        assert texts[0] == FIRST and texts[-1] == "New phone, same me"


def test_a_changed_user_id_reaches_the_customer_known_by_the_old_one(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "s.db") as store:
        engine, sent = _engine(tmp_path, store)
        old = {"from_user_id": "US.29471028365019283745"}
        _ingest(engine, _text(old, "Hello", "wamid.OLD-1"))
        dana = store.find_customer("whatsapp", "US.29471028365019283745")
        assert dana is not None and len(sent.sent) == 1
        _ingest(engine, _system(1))
        assert len(sent.sent) == 1
        new = {"from_user_id": "US.29471028365019283746"}
        _ingest(engine, _text(new, "Still me", "wamid.NEW-2"))
        assert store.find_customer("whatsapp", "US.29471028365019283746") == store.get_customer(
            dana.id
        )
        assert [m["content"]["text"] for m in store.history(dana.id).messages][-1] == "Still me"


def test_other_system_messages_are_ignored_with_their_reason(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "s.db") as store:
        engine, sent = _engine(tmp_path, store)
        result = _ingest(engine, _system(2))
        assert result.outcomes == [] and sent.sent == []
        assert result.ignored == [
            "a WhatsApp system message of type customer_identity_changed changes no identity"
        ]
        assert store.find_customer("phone", "+447700900456") is None


def test_a_number_change_without_the_new_number_is_a_dead_letter_naming_the_field(
    tmp_path: Path,
) -> None:
    with SqliteStore(tmp_path / "s.db") as store:
        engine, sent = _engine(tmp_path, store)
        payload = _system(0)
        system = payload["entry"][0]["changes"][0]["value"]["messages"][0]["system"]
        del system["wa_id"], system["user_id"]
        result = ingest(engine, "whatsapp", json.dumps(payload), received_at=RECEIVED)
        (reason,) = result.dead_letters
        assert "messages[0].system.wa_id: missing" in reason
        assert result.outcomes == [] and sent.sent == []


def test_a_number_that_was_someone_elses_moves_to_the_customer_and_joins_no_records(
    tmp_path: Path,
) -> None:
    # Carriers recycle numbers: the number Ben moves to was Zoe's. It is Ben's from now on,
    # but Zoe's record and history stay hers, and Ben's are not joined to them.
    with SqliteStore(tmp_path / "s.db") as store:
        engine, _sent = _engine(tmp_path, store)
        _ingest(engine, _text({"from": "447700900999"}, "Zoe here", "wamid.ZOE-1"))
        zoe = store.find_customer("phone", "+447700900999")
        _ingest(engine, _load("text.json"))
        ben = store.find_customer("phone", "+447700900123")
        assert zoe is not None and ben is not None and zoe.id != ben.id
        _ingest(engine, _system(0))
        assert store.find_customer("phone", "+447700900999") == store.get_customer(ben.id)
        assert store.get_customer(zoe.id) is not None  # not merged away
        assert "Zoe here" not in _texts(store, ben.id) and _texts(store, zoe.id) == ["Zoe here"]
        _ingest(engine, _text({"from": "447700900999"}, "New phone, same me", "wamid.NEW-1"))
        assert store.history(ben.id).messages[-1]["content"]["text"] == "New phone, same me"
        assert _texts(store, zoe.id) == ["Zoe here"]


def _texts(store: SqliteStore, customer_id: str) -> list[str]:
    """What the customer wrote, in order."""
    messages = store.history(customer_id).messages
    return [m["content"]["text"] for m in messages if m["direction"] == "in"]
