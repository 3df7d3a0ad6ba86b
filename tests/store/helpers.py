"""An Engine over a durable store (SQLite or PostgreSQL), as a host would build one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from flowlang.events import BotEvent, InboundEvent
from flowlang.project import load_project
from flowlang.runtime.engine import Engine
from flowlang.runtime.memory import ScriptedDataActions
from flowlang.runtime.ports import DataResult
from flowlang.store import Store, open_store

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def engine_on(
    path: str | Path,
    flow: str = "flows/messaging.flow",
    actions: dict[str, DataResult] | None = None,
) -> tuple[Engine, Store]:
    """An engine on the store at `path` (a SQLite file or a postgresql:// URL); the CRM knows
    no one unless `actions` says otherwise."""
    project, ws = load_project(ROOT / flow, ROOT / "examples" / "deployment.yaml")
    assert project is not None, [d.message for d in ws.diagnostics]
    store = open_store(path)
    crm = ScriptedDataActions(actions or {"CRM Lookup": DataResult("not_found")})
    return project.engine(store=store, data_actions=crm), store


def inbound(
    text: str,
    minutes: float = 0,
    *,
    sender: str = "web-visitor-1",
    channel: str = "web",
    account: str = "gbank-web",
    event_id: str | None = None,
    phone: str | None = None,
) -> InboundEvent:
    return InboundEvent(
        event_id=event_id or f"{sender}-{minutes}-{text}",
        channel=channel,
        account=account,
        sender_id=sender,
        sender_phone=phone,
        text=text,
        timestamp=T0 + timedelta(minutes=minutes),
    )


def with_an_agent(engine: Engine, sender: str, minutes: float = 0) -> tuple[str, str]:
    """A web conversation the messaging flow gives to an agent: (conversation id, agent)."""
    engine.handle(inbound("Hello", minutes, sender=sender))
    asked = engine.handle(inbound("12345678", minutes + 1, sender=sender))
    escalated = engine.handle(
        BotEvent(
            event_id=f"bot-{sender}-{minutes}",
            conversation_id=asked.conversation_id or "",
            outcome="escalate",
            intent="loan_enquiry",
            timestamp=T0 + timedelta(minutes=minutes + 2),
        )
    )
    (accepted,) = [n for n in escalated.notices if n.kind == "accepted"]
    return accepted.conversation_id, accepted.agent or ""
