"""A stranger who types another customer's account number gets none of their record.

End to end: vendor-shaped WhatsApp and Messenger webhooks through the engine on a SQLite store
running flows/messaging.flow, then what `flowlang store customer` and `store history` show.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from flowlang.channels.ingest import ingest
from flowlang.cli import main
from flowlang.project import load_project
from flowlang.runtime.engine import Engine
from flowlang.runtime.memory import ScriptedDataActions
from flowlang.runtime.ports import DataResult
from flowlang.store import SqliteStore

ROOT = Path(__file__).resolve().parents[2]
PAYLOADS = ROOT / "examples" / "payloads"
BEN_WA_ID, STRANGER_PSID = "447700900123", "7654321098765432"
ACCOUNT = "12345678"
CODE_SENT = DataResult("success", {"sent_to": "+44******123"})
BENS_ACCOUNT = {"account_number": ACCOUNT, "customer_id": "C-7", "name": "Ben", "segment": "gold"}


def whatsapp(text: str, n: int, at: datetime) -> str:
    """The Cloud API's webhook for one text message from Ben."""
    body: dict[str, Any] = json.loads((PAYLOADS / "whatsapp/text.json").read_text("utf-8"))
    message = body["entry"][0]["changes"][0]["value"]["messages"][0]
    message.update(id=f"wamid.ben-{n}", timestamp=str(int(at.timestamp())), text={"body": text})
    return json.dumps(body)


def messenger(text: str, n: int, at: datetime) -> str:
    """The Messenger Platform's webhook for one text message from the stranger's PSID."""
    body: dict[str, Any] = json.loads((PAYLOADS / "messenger/message.json").read_text("utf-8"))
    event = body["entry"][0]["messaging"][0]
    millis = int(at.timestamp() * 1000)
    event.update(sender={"id": STRANGER_PSID}, timestamp=millis)
    event["message"] = {"mid": f"m_stranger-{n}", "text": text}
    return json.dumps(body)


def at(hour: int, minute: int) -> datetime:
    return datetime(2026, 1, 5, hour, minute, tzinfo=UTC)


def _engine(store: SqliteStore, crm: ScriptedDataActions) -> Engine:
    project, ws = load_project(ROOT / "flows/messaging.flow", ROOT / "examples/deployment.yaml")
    assert project is not None, [d.message for d in ws.diagnostics]
    return project.engine(store=store, data_actions=crm)


def _send(engine: Engine, channel: str, body: str, received: datetime) -> Any:
    result = ingest(engine, channel, body, received_at=received)
    assert result.error is None and len(result.outcomes) == 1
    return result.outcomes[0]


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_a_stranger_who_types_another_customers_account_number_gets_none_of_their_record(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cc.db"
    crm = ScriptedDataActions(
        {
            "CRM Lookup": DataResult("not_found"),
            "CRM Send Code": CODE_SENT,
            "CRM Check Code": DataResult("success", BENS_ACCOUNT),
        }
    )
    with SqliteStore(path) as store:
        engine = _engine(store, crm)
        # Ben proves his account number on WhatsApp with the code texted to his phone.
        _send(engine, "whatsapp", whatsapp("Hi, a fee on my card", 1, at(9, 0)), at(9, 0))
        _send(engine, "whatsapp", whatsapp(ACCOUNT, 2, at(9, 1)), at(9, 1))
        proved = _send(engine, "whatsapp", whatsapp("493817", 3, at(9, 2)), at(9, 2))
        ben = store.find_customer("account_number", ACCOUNT)
        assert ben is not None and ben.id == store.find_customer("whatsapp", BEN_WA_ID).id  # type: ignore[union-attr]
        ben_conv = store.get_conversation(proved.conversation_id)
        assert ben_conv is not None
        assert ben_conv.data["identity.account_number"] == {"value": ACCOUNT, "verified": True}

        # A new Messenger user types Ben's account number, but cannot give the code.
        crm.results["CRM Check Code"] = DataResult("not_found")
        _send(engine, "messenger", messenger("Hello, can you help me?", 1, at(10, 0)), at(10, 0))
        claimed = _send(engine, "messenger", messenger(ACCOUNT, 2, at(10, 1)), at(10, 1))
        wrong = _send(engine, "messenger", messenger("000000", 3, at(10, 2)), at(10, 2))
        texts = [d.message.content.get("text") for d in claimed.deliveries + wrong.deliveries]
        assert texts == [
            "Thanks! We have texted a code to the phone number on that account. What is it?",
            "That code does not match, but an agent will help you.",
        ]
        stranger = store.find_customer("messenger", STRANGER_PSID)
        assert stranger is not None and stranger.id != ben.id
        assert store.find_customer("account_number", ACCOUNT).id == ben.id  # type: ignore[union-attr]
        # What the agent is given with the stranger's conversation: the number, unverified.
        conv = store.get_conversation(wrong.conversation_id)
        assert conv is not None and conv.customer_id == stranger.id
        assert conv.data["identity.account_number"] == {"value": ACCOUNT, "verified": False}
        assert "participant.segment" not in conv.data  # nothing of Ben's CRM record either

    shown = cli("store", "customer", "--store", str(path), f"messenger:{STRANGER_PSID}")
    lines = shown.splitlines()
    assert f"  messenger: {STRANGER_PSID}" in lines
    claim = f"  account_number: {ACCOUNT} (unverified: claimed in {conv.id} on 2026-01-05 10:01)"
    assert claim in lines
    assert f"whatsapp: {BEN_WA_ID}" not in shown and "whatsapp," not in shown
    assert [line for line in lines if line.strip().startswith("conv")] == [
        line for line in lines if line.strip().startswith(f"{conv.id}:")
    ]
    history = cli("store", "history", "--store", str(path), f"messenger:{STRANGER_PSID}")
    assert "Hello, can you help me?" in history and "a fee on my card" not in history

    # Ben's own record is untouched: his identities, his one conversation, his history.
    bens = cli("store", "customer", "--store", str(path), f"account_number:{ACCOUNT}")
    assert f"  whatsapp: {BEN_WA_ID}" in bens and STRANGER_PSID not in bens
    assert "unverified" not in bens
    bens_history = cli("store", "history", "--store", str(path), f"whatsapp:{BEN_WA_ID}")
    assert "a fee on my card" in bens_history and "Hello, can you help me?" not in bens_history


def test_the_stranger_who_has_the_texted_code_is_the_customer(tmp_path: Path) -> None:
    """The code reaches only the phone on the account: whoever types it back is its customer,
    so their Messenger conversation joins Ben's record and history."""
    crm = ScriptedDataActions(
        {
            "CRM Lookup": DataResult("not_found"),
            "CRM Send Code": CODE_SENT,
            "CRM Check Code": DataResult("success", BENS_ACCOUNT),
        }
    )
    with SqliteStore(tmp_path / "cc.db") as store:
        engine = _engine(store, crm)
        _send(engine, "whatsapp", whatsapp("Hi, a fee on my card", 1, at(9, 0)), at(9, 0))
        _send(engine, "whatsapp", whatsapp(ACCOUNT, 2, at(9, 1)), at(9, 1))
        _send(engine, "whatsapp", whatsapp("493817", 3, at(9, 2)), at(9, 2))
        _send(engine, "messenger", messenger("Hello from Messenger", 1, at(10, 0)), at(10, 0))
        _send(engine, "messenger", messenger(ACCOUNT, 2, at(10, 1)), at(10, 1))
        _send(engine, "messenger", messenger("731904", 3, at(10, 2)), at(10, 2))
        ben = store.find_customer("whatsapp", BEN_WA_ID)
        assert ben is not None
        assert store.find_customer("messenger", STRANGER_PSID).id == ben.id  # type: ignore[union-attr]
        texts = [m["content"].get("text") for m in store.history(ben.id).messages]
        assert "Hi, a fee on my card" in texts and "Hello from Messenger" in texts
        assert store.claims_of(ben.id) == []
