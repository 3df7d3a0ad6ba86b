"""What the SQLite store asks of its tables on the hot path: every statement a customer's
message runs finds its rows through an index, so a message costs the same with a thousand
customers as with a million (the bench's lookup; no timing here, SQLite's own query plans)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flowlang import load_project
from flowlang.events import InboundEvent
from flowlang.runtime.memory import ScriptedDataActions
from flowlang.runtime.ports import DataResult
from flowlang.store import SqliteStore

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _scans(store: SqliteStore, statements: list[str]) -> dict[str, str]:
    """Each statement whose plan reads a table whole, with that step of its plan."""
    found = {}
    for sql in set(statements):
        if not re.match(r"\s*(SELECT|UPDATE|DELETE|INSERT)", sql, re.IGNORECASE):
            continue
        for _id, _parent, _unused, detail in store.db.execute("EXPLAIN QUERY PLAN " + sql):
            if detail.startswith("SCAN") and "CONSTANT" not in detail:
                found[sql] = detail
    return found


def test_a_customer_with_a_phone_is_found_through_the_identities_key(tmp_path: Path) -> None:
    """A WhatsApp customer comes with two identities (their number on WhatsApp, their phone):
    both are looked up in the identities' primary key, not by reading every identity."""
    with SqliteStore(tmp_path / "cc.db") as store:
        first = store.resolve_customer("whatsapp", "447700900001", "+447700900001", "Ana")
        statements: list[str] = []
        store.db.set_trace_callback(statements.append)
        again = store.resolve_customer("whatsapp", "447700900001", "+447700900001", "Ana")
        store.db.set_trace_callback(None)
        assert again.id == first.id and not again.new
        assert any("FROM identities" in sql for sql in statements)
        assert _scans(store, statements) == {}


def test_a_returning_customer_is_one_key_search_per_table(tmp_path: Path) -> None:
    """The identities and the customers are stored in their keys (WITHOUT ROWID): the lookup
    searches each table's own key, never an index that then leads to a row stored apart (two
    searches per table, on pages a million customers' cache rarely holds)."""
    with SqliteStore(tmp_path / "cc.db") as store:
        store.resolve_customer("whatsapp", "447700900001", "+447700900001", "Ana")
        statements: list[str] = []
        store.db.set_trace_callback(statements.append)
        store.resolve_customer("whatsapp", "447700900001", "+447700900001", "Ana")
        store.db.set_trace_callback(None)
        (lookup,) = [sql for sql in statements if "FROM identities" in sql]
        plan = [row[3] for row in store.db.execute("EXPLAIN QUERY PLAN " + lookup)]
        searches = [step for step in plan if step.startswith("SEARCH")]
        assert searches == [
            "SEARCH i USING PRIMARY KEY (kind=? AND value=?)",
            "SEARCH i USING PRIMARY KEY (kind=? AND value=?)",
            "SEARCH c USING PRIMARY KEY (id=?)",
        ]


def test_no_statement_of_a_message_reads_a_table_whole(tmp_path: Path) -> None:
    """WhatsApp messages (with phones) through the shipped flow, new and returning customers,
    answers and routing: every statement they run uses an index or a key."""
    project, _ = load_project(ROOT / "flows/messaging.flow", ROOT / "examples/deployment.yaml")
    assert project is not None
    texts = ["Hi, I have a question about my loan", "12345678", "agent please", "thanks"]
    with SqliteStore(tmp_path / "cc.db") as store:
        crm = ScriptedDataActions({"CRM Lookup": DataResult("not_found")})
        engine = project.engine(store=store, data_actions=crm)
        statements: list[str] = []
        store.db.set_trace_callback(statements.append)
        for n in range(60):
            number = f"4477009{n % 20:05d}"
            engine.handle(
                InboundEvent(
                    event_id=f"w{n}",
                    channel="whatsapp",
                    sender_id=number,
                    sender_phone=f"+{number}",
                    text=texts[n % len(texts)],
                    timestamp=T0 + timedelta(minutes=n),
                )
            )
        store.db.set_trace_callback(None)
        assert any("FROM identities" in sql for sql in statements)
        assert _scans(store, statements) == {}
