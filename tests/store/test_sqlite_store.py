"""The SQLite store: identity, threading at its boundaries, history, idempotency, durability,
dead letters and schema migrations."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from flowlang.events import AgentAction, AgentEvent, InboundEvent
from flowlang.runtime.engine import Engine
from flowlang.runtime.memory import RecordingAdapter
from flowlang.runtime.ports import DataResult
from flowlang.store import StoreError
from flowlang.store.migrations import MIGRATIONS, migrate
from flowlang.store.sqlite import SqliteDialect, SqliteStore
from tests.store.helpers import T0, engine_on, inbound, with_an_agent


def test_a_webhook_retry_is_not_processed_twice(tmp_path: Path) -> None:
    engine, store = engine_on(tmp_path / "s.db")
    first = engine.handle(inbound("Hello", event_id="wamid.1"))
    again = engine.handle(inbound("Hello", event_id="wamid.1"))
    assert not first.duplicate and again.duplicate
    page = store.history(store.find_customer("web", "web-visitor-1").id)  # type: ignore[union-attr]
    assert [m["content"]["text"] for m in page.messages if m["direction"] == "in"] == ["Hello"]


@pytest.mark.parametrize(
    ("gap", "same"),
    [(timedelta(hours=72) - timedelta(seconds=1), True), (timedelta(hours=72), False)],
)
def test_threading_continues_within_72_hours_of_the_last_activity(
    tmp_path: Path, gap: timedelta, same: bool
) -> None:
    store = SqliteStore(tmp_path / "s.db")
    customer = store.resolve_customer("web", "v1", None, "Ana")
    window = timedelta(hours=72)
    first = store.conversation_for(customer.id, "web", "gbank-web", T0, window)
    store.save_conversation(first)
    later = store.conversation_for(customer.id, "web", "gbank-web", T0 + gap, window)
    assert (later.id == first.id) is same
    assert later.ongoing is same


def test_a_lower_threading_window_and_zero(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    customer = store.resolve_customer("web", "v1", None, None)
    one_hour = timedelta(hours=1)
    first = store.conversation_for(customer.id, "web", "a", T0, one_hour)
    assert (
        store.conversation_for(customer.id, "web", "a", T0 + timedelta(minutes=59), one_hour).id
        == first.id
    )
    assert (
        store.conversation_for(customer.id, "web", "a", T0 + timedelta(hours=2), one_hour).id
        != first.id
    )
    fresh = store.conversation_for(customer.id, "web", "a", T0 + timedelta(hours=3), timedelta(0))
    assert (
        store.conversation_for(customer.id, "web", "a", T0 + timedelta(hours=3), timedelta(0)).id
        != fresh.id
    )


def test_whatsapp_and_sms_numbers_of_one_person_meet(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    wa = store.resolve_customer("whatsapp", "447700900123", "447700900123", "Ben")
    sms = store.resolve_customer("sms", "+44 7700 900123", "+44 7700 900123", None)
    assert sms.id == wa.id and "phone" in sms.known_by and not sms.new
    assert store.find_customer("phone", "07700 900123") is None  # no country code: not E.164
    assert store.find_customer("phone", "+447700900123").id == wa.id  # type: ignore[union-attr]


LINE_USER = "U" + "a" * 32
# The CRM texts a code to the phone number on the account, and the customer types it back.
PROVEN = {
    "CRM Send Code": DataResult("success", {"sent_to": "+44******123"}),
    "CRM Check Code": DataResult("success", {"account_number": "12345678", "segment": "premier"}),
}


def _account_number_on_web_and_line(engine: Engine, *, code: str | None = None) -> None:
    engine.handle(inbound("Hi from the web", sender="web-1"))
    engine.handle(inbound("12345678", 1, sender="web-1"))
    if code:
        engine.handle(inbound(code, 2, sender="web-1"))
    engine.handle(inbound("Hi on LINE", 10, sender=LINE_USER, channel="line", account="GBank LINE"))
    engine.handle(inbound("12345678", 11, sender=LINE_USER, channel="line", account="GBank LINE"))
    if code:
        engine.handle(inbound(code, 12, sender=LINE_USER, channel="line", account="GBank LINE"))


def test_a_typed_account_number_is_a_claim_that_joins_no_one(tmp_path: Path) -> None:
    engine, store = engine_on(tmp_path / "s.db")
    _account_number_on_web_and_line(engine)
    web = store.find_customer("web", "web-1")
    line = store.find_customer("line", LINE_USER)
    assert web is not None and line is not None and web.id != line.id
    assert store.find_customer("account_number", "12345678") is None
    for customer in (web, line):
        assert [(c.kind, c.value) for c in store.claims_of(customer.id)] == [
            ("account_number", "12345678")
        ]
    line_texts = [m["content"].get("text") for m in store.history(line.id).messages]
    assert "Hi from the web" not in line_texts


def test_an_account_number_proven_by_a_texted_code_merges_two_customers(tmp_path: Path) -> None:
    engine, store = engine_on(tmp_path / "s.db", actions=PROVEN)
    _account_number_on_web_and_line(engine, code="493817")
    web = store.find_customer("web", "web-1")
    line = store.find_customer("line", LINE_USER)
    assert web is not None and line is not None and web.id == line.id
    texts = [m["content"].get("text") for m in store.history(web.id).messages]
    assert texts[0] == "Hi from the web" and "Hi on LINE" in texts
    assert ("account_number", "12345678") in store.identities_of(web.id)
    assert store.claims_of(web.id) == []


def test_history_pages_back_to_the_very_first_message(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    customer = store.resolve_customer("web", "v1", None, None)
    conv = store.conversation_for(customer.id, "web", "a", T0, timedelta(hours=72))
    for n in range(23):
        store.append_message(conv, "in", {"text": f"m{n}"}, T0 + timedelta(minutes=n), "v1")
    seen: list[str] = []
    before = None
    pages = 0
    while True:
        page = store.history(customer.id, before=before, limit=10)
        seen = [m["content"]["text"] for m in page.messages] + seen
        pages += 1
        if page.before is None:
            break
        before = page.before
    assert pages == 3 and seen == [f"m{n}" for n in range(23)]


def test_a_second_engine_on_the_same_file_continues_the_conversation(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    engine, store = engine_on(path)
    conversation_id, agent = with_an_agent(engine, "web-9")
    engine.handle(
        AgentEvent(
            event_id="a1",
            conversation_id=conversation_id,
            agent_id=agent,
            action=AgentAction.COMPLETE,
            wrap_up="Resolved",
            timestamp=T0 + timedelta(minutes=5),
        )
    )
    store.close()
    engine2, store2 = engine_on(path)
    again = engine2.handle(inbound("Me again", 60, sender="web-9"))
    assert again.conversation_id == conversation_id
    conv = store2.get_conversation(conversation_id)
    assert conv is not None and conv.last_agent == agent and conv.wrap_up == "Resolved"


def test_an_event_stored_but_not_processed_is_processed_once_on_recovery(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _engine, store = engine_on(path)
    event = inbound("Stored just before the crash", sender="web-5")
    assert store.accept_inbound(event.channel, event.event_id, event.model_dump(mode="json"))
    store.close()  # the process died here
    engine2, store2 = engine_on(path)
    (outcome,) = engine2.recover()
    assert outcome.conversation_id is not None
    assert engine2.recover() == []
    assert engine2.handle(event).duplicate  # the channel's retry
    customer = store2.find_customer("web", "web-5")
    assert customer is not None
    texts = [m["content"]["text"] for m in store2.history(customer.id).messages]
    assert texts.count("Stored just before the crash") == 1


def _break_policy(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object) -> None:
        raise ConnectionError("the policy service is down")

    monkeypatch.setattr(engine.policy, "decide", broken)


def test_a_failing_event_goes_to_the_dead_letters_and_can_be_replayed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, store = engine_on(tmp_path / "s.db")
    recorder = RecordingAdapter()
    engine.adapters = [recorder]
    with monkeypatch.context() as patch:
        _break_policy(engine, patch)
        outcome = engine.handle(inbound("Hello", sender="web-7"))
    assert "dead letters" in outcome.note and "the policy service is down" in outcome.note
    (letter,) = store.dead_letters()
    assert letter["source"] == "inbound:web" and "ConnectionError" in letter["reason"]
    assert store.find_customer("web", "web-7") is None  # nothing half-done was kept
    assert recorder.sent == [] and store.pending_outbound() == []

    replayed = engine.process_inbound(InboundEvent.model_validate(letter["payload"]))
    store.mark_replayed(letter["id"], T0)
    assert replayed.conversation_id is not None and store.dead_letters() == []
    assert [m.content["text"][:10] for m in recorder.sent] == ["Welcome to"]


def test_the_event_log_reads_back_in_time_order(tmp_path: Path) -> None:
    engine, store = engine_on(tmp_path / "s.db")
    engine.handle(inbound("Hello", 0, sender="a"))
    engine.handle(inbound("Hello", 30, sender="b"))
    kinds = [(e["kind"], e["conversation_id"]) for e in store.iter_events()]
    assert kinds[0][0] == "message_in"
    window = list(store.iter_events(T0 + timedelta(minutes=10), T0 + timedelta(hours=1)))
    assert window and all(e["at"] >= T0 + timedelta(minutes=10) for e in window)


def test_migrations_bring_an_old_file_forward_and_refuse_a_newer_one(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    assert migrate(SqliteDialect(db), MIGRATIONS[:1]) == 1
    db.execute("INSERT INTO customers (id, name) VALUES ('c1', 'Ana')")
    extra = ("ALTER TABLE customers ADD COLUMN segment TEXT",)
    assert migrate(SqliteDialect(db), MIGRATIONS + extra) == len(MIGRATIONS) + 1
    assert db.execute("SELECT name, segment FROM customers").fetchone() == ("Ana", None)
    db.close()
    with pytest.raises(StoreError, match="newer than this flowlang"):
        SqliteStore(path)


def test_customers_of_an_older_file_are_kept_in_their_keys_with_every_row(
    tmp_path: Path,
) -> None:
    """Migration 15 rebuilds the customers and identities tables keyed (WITHOUT ROWID): every
    customer, identity and claim is still there, a returning customer is found, and the
    identities' reference to their customer is enforced again once the file is open."""
    path = tmp_path / "v14.db"
    db = sqlite3.connect(path, isolation_level=None)
    assert migrate(SqliteDialect(db), MIGRATIONS[:14]) == 14
    db.execute(
        "INSERT INTO customers (id, name, phone, volunteered) VALUES "
        "('c1', 'Ana', '+447700900001', '[\"account\"]'), ('c2', NULL, NULL, '[]')"
    )
    db.execute(
        "INSERT INTO identities (kind, value, customer_id) VALUES "
        "('whatsapp', '447700900001', 'c1'), ('phone', '+447700900001', 'c1'), "
        "('web', 'v-2', 'c2')"
    )
    db.execute(
        "INSERT INTO identity_claims VALUES ('c1', 'account', '12345678', 'conv1', ?)",
        (T0.isoformat(),),
    )
    db.close()
    with SqliteStore(path) as store:
        tables = dict(store.db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))
        assert tables["customers"].endswith("WITHOUT ROWID")
        assert tables["identities"].endswith("WITHOUT ROWID")
        assert not {"customers_keyed", "identities_keyed"} & set(tables)
        rows = store.db.execute("SELECT * FROM customers ORDER BY id").fetchall()
        assert rows == [("c1", "Ana", "+447700900001", '["account"]'), ("c2", None, None, "[]")]
        ana = store.resolve_customer("whatsapp", "447700900001", "+447700900001", None)
        assert (ana.id, ana.name, ana.new) == ("c1", "Ana", False)
        assert store.find_customer("web", "v-2").id == "c2"  # type: ignore[union-attr]
        assert store.db.execute("SELECT count(*) FROM identity_claims").fetchone() == (1,)
        assert store.db.execute("PRAGMA foreign_key_check").fetchall() == []
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            store.db.execute("INSERT INTO identities VALUES ('web', 'v-9', 'nobody')")


def test_a_file_that_is_not_a_store_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(StoreError, match=r"notes\.db: cannot open as a flowlang store"):
        SqliteStore(path)
    assert path.read_text().startswith("these are my notes")


def test_a_failing_agent_event_is_kept_too_and_replays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, store = engine_on(tmp_path / "s.db")
    conversation_id, agent = with_an_agent(engine, "web-8")
    recorder = RecordingAdapter()
    engine.adapters = [recorder]
    reply = AgentEvent(
        event_id="a-1",
        conversation_id=conversation_id,
        agent_id=agent,
        action=AgentAction.REPLY,
        text="Hi, Bob here",
        timestamp=T0 + timedelta(minutes=3),
    )
    with monkeypatch.context() as patch:
        _break_policy(engine, patch)
        outcome = engine.handle(reply)
    assert outcome.dead_lettered and "the policy service is down" in outcome.note
    (letter,) = store.dead_letters()
    assert letter["source"] == f"agent:{conversation_id}"
    again = engine.handle(AgentEvent.model_validate(letter["payload"]))
    assert not again.dead_lettered
    assert [(m.sender, m.content.get("text")) for m in recorder.sent] == [("agent", "Hi, Bob here")]


def test_messages_waiting_in_an_outbox_from_before_delivered_to_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    db = sqlite3.connect(path, isolation_level=None)
    assert migrate(SqliteDialect(db), MIGRATIONS[:2]) == 2
    db.execute(
        "INSERT INTO outbox (conversation_id, message, queued_at) VALUES (?, ?, ?)",
        ("conv-1", '{"text": "hi"}', T0.isoformat()),
    )
    db.close()
    with SqliteStore(path) as store:
        (waiting,) = store.pending_outbound()
        assert (waiting.message, waiting.delivered_to) == ({"text": "hi"}, [])


def test_event_times_in_any_zone_are_logged_in_utc_and_read_back_in_time_order(
    tmp_path: Path,
) -> None:
    engine, store = engine_on(tmp_path / "zones.db")
    sent = [
        ("paris", "2026-01-05T10:00:00+01:00"),  # 09:00 UTC
        ("london", "2026-01-05T09:30:00Z"),
        ("no-zone", "2026-01-05T09:45:00"),  # taken as UTC, like the command line's times
    ]
    for sender, stamp in sent:
        event = InboundEvent.model_validate(
            {
                "event_id": sender,
                "channel": "web",
                "account": "gbank-web",
                "sender_id": sender,
                "text": "hi",
                "timestamp": stamp,
            }
        )
        assert event.timestamp.utcoffset() == timedelta(0)
        assert not engine.handle(event).dead_lettered
    arrivals = [e["at"] for e in store.iter_events() if e["kind"] == "message_in"]
    assert [a.strftime("%H:%M") for a in arrivals] == ["09:00", "09:30", "09:45"]
    window = store.iter_events(datetime(2026, 1, 5, 10, 15, tzinfo=timezone(timedelta(hours=1))))
    assert {e["at"].strftime("%H:%M") for e in window if e["kind"] == "message_in"} == {
        "09:30",
        "09:45",
    }
    store.close()


def test_event_times_an_older_file_kept_with_their_offsets_are_rewritten_in_utc(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v4.db"
    db = sqlite3.connect(path, isolation_level=None)
    assert migrate(SqliteDialect(db), MIGRATIONS[:4]) == 4
    written = [  # as flowlang before the UTC change logged what hosts sent
        "2026-01-05T10:00:00+01:00",  # 09:00 UTC
        "2026-01-05T09:30:00.250000+00:00",
        "2026-01-05T01:15:00.5-09:00",  # 10:15 UTC
        "2026-01-05T00:30:00.123456+02:00",  # 22:30 UTC the day before
        "2026-01-05T09:45:00",  # no zone: UTC
        "2026-01-05T09:50:00.000001",
    ]
    for n, at in enumerate(written):
        db.execute(
            "INSERT INTO events (kind, at, conversation_id, data) "
            "VALUES ('message_in', ?, ?, '{}')",
            (at, f"c{n}"),
        )
    db.close()
    with SqliteStore(path) as store:
        logged = [(e["conversation_id"], e["at"].isoformat()) for e in store.iter_events()]
        assert logged == [
            ("c3", "2026-01-04T22:30:00.123456+00:00"),
            ("c0", "2026-01-05T09:00:00+00:00"),
            ("c1", "2026-01-05T09:30:00.250000+00:00"),
            ("c4", "2026-01-05T09:45:00+00:00"),
            ("c5", "2026-01-05T09:50:00.000001+00:00"),
            ("c2", "2026-01-05T10:15:00.500000+00:00"),
        ]
        texts = [row[0] for row in store.db.execute("SELECT at FROM events ORDER BY seq")]
        assert texts[0] == "2026-01-05T09:00:00+00:00" and all(t.endswith("+00:00") for t in texts)
        after = store.iter_events(datetime(2026, 1, 5, 9, 45, tzinfo=UTC))
        assert [e["conversation_id"] for e in after] == ["c4", "c5", "c2"]


def test_an_opt_out_an_older_file_kept_on_a_conversation_is_carried_over(tmp_path: Path) -> None:
    path = tmp_path / "v5.db"
    db = sqlite3.connect(path, isolation_level=None)
    assert migrate(SqliteDialect(db), MIGRATIONS[:5]) == 5
    for conv_id, sender, state in [
        ("conv1", "+447700900999", {"opted_out": True}),
        ("conv2", "+447700900111", {}),
    ]:
        body = {
            "id": conv_id,
            "customer_id": "c1",
            "channel": "sms",
            "account": "+447480000000",
            "started_at": T0.isoformat(),
            "last_activity_at": T0.isoformat(),
            "last_sender_id": sender,
            "channel_state": state,
        }
        db.execute(
            "INSERT INTO conversations VALUES (?, 'c1', 'sms', ?, ?, ?)",
            (conv_id, T0.isoformat(), T0.isoformat(), json.dumps(body)),
        )
    db.close()
    with SqliteStore(path) as store:
        assert store.opted_out("sms", "+447480000000", "+447700900999")
        assert not store.opted_out("sms", "+447480000000", "+447700900111")
