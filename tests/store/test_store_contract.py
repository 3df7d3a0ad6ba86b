"""What every ConversationStore does, checked on the in-memory, SQLite and PostgreSQL stores
alike."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import cast

import pytest

from flowlang.errors import InputError
from flowlang.events import EventKind, InboundEvent
from flowlang.runtime.memory import MemoryStore
from flowlang.runtime.ports import (
    ConversationStore,
    PolicyLedger,
    SentLedger,
    SentMessage,
    UserDirectory,
)
from flowlang.runtime.users import authenticate, new_token, token_hash
from flowlang.store import SqliteStore, Store
from flowlang.store.postgres import PostgresStore
from flowlang.store.sessions import StoredSession
from tests.store.helpers import ROOT, T0

WINDOW = timedelta(hours=72)
HOUR = timedelta(hours=1)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ConversationStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "postgres":
        with PostgresStore(request.getfixturevalue("postgres_url")) as pg:
            yield pg
        return
    with SqliteStore(tmp_path / "contract.db") as db:
        yield db


def test_an_event_id_is_accepted_once_per_channel(store: ConversationStore) -> None:
    assert store.accept_inbound("whatsapp", "wamid.1", {"text": "hi"})
    assert not store.accept_inbound("whatsapp", "wamid.1", {"text": "hi"})
    assert store.accept_inbound("sms", "wamid.1", {"text": "hi"})


@pytest.mark.parametrize(
    ("gap", "same"),
    [
        (timedelta(0), True),
        (WINDOW - timedelta(seconds=1), True),
        (WINDOW, False),
        (WINDOW + timedelta(days=30), False),
    ],
)
def test_threading_window_boundary(store: ConversationStore, gap: timedelta, same: bool) -> None:
    customer = store.resolve_customer("web", "v1", None, "Ana")
    first = store.conversation_for(customer.id, "web", "gbank-web", T0, WINDOW)
    store.save_conversation(first)
    later = store.conversation_for(customer.id, "web", "gbank-web", T0 + gap, WINDOW)
    assert (later.id == first.id) is same


def test_phone_numbers_meet_in_e164(store: ConversationStore) -> None:
    wa = store.resolve_customer("whatsapp", "447700900123", "447700900123", "Ben")
    sms = store.resolve_customer("sms", "+44 (0)7700 900123", "+44 7700-900-123", None)
    assert sms.id == wa.id and not sms.new and "phone" in sms.known_by


def test_linking_an_identity_another_customer_has_merges_them(store: ConversationStore) -> None:
    web = store.resolve_customer("web", "v1", None, "Ana")
    line = store.resolve_customer("line", "U1", None, None)
    assert web.id != line.id
    store.link_identity(web.id, "account_number", "12345678")
    merged = store.link_identity(line.id, "account_number", "12345678")
    assert merged.id == web.id and "account_number" in merged.known_by
    assert store.resolve_customer("line", "U1", None, None).id == web.id


def test_moving_an_identity_takes_it_from_its_owner_and_merges_no_one(
    store: ConversationStore,
) -> None:
    zoe = store.resolve_customer("whatsapp", "447700900999", "447700900999", "Zoe")
    ben = store.resolve_customer("whatsapp", "447700900123", "447700900123", "Ben")
    moved = store.move_identity(ben.id, "phone", "+447700900999")
    assert moved.id == ben.id and store.get_customer(zoe.id) is not None
    assert store.resolve_customer("sms", "+447700900999", "+447700900999", None).id == ben.id
    assert store.resolve_customer("whatsapp", "447700900999", None, None).id == zoe.id


def test_a_claim_joins_no_one_and_identifies_no_one(store: ConversationStore) -> None:
    owner = store.resolve_customer("whatsapp", "447700900123", "447700900123", "Ben")
    store.link_identity(owner.id, "account_number", "12345678")
    stranger = store.resolve_customer("messenger", "psid-1", None, None)
    assert store.claim_identity(stranger.id, "account_number", "12345678", "conv9", T0)
    assert [(c.kind, c.value, c.conversation_id) for c in store.claims_of(stranger.id)] == [
        ("account_number", "12345678", "conv9")
    ]
    assert "account_number" not in (store.get_customer(stranger.id) or stranger).known_by
    assert store.resolve_customer("messenger", "psid-1", None, None).id == stranger.id
    assert store.claims_of(owner.id) == []


def test_a_claim_made_first_does_not_catch_the_customer_who_proves_it(
    store: ConversationStore,
) -> None:
    stranger = store.resolve_customer("messenger", "psid-1", None, None)
    store.claim_identity(stranger.id, "account_number", "12345678", "conv1", T0)
    owner = store.resolve_customer("whatsapp", "447700900123", "447700900123", "Ben")
    linked = store.link_identity(owner.id, "account_number", "12345678")
    assert linked.id == owner.id != stranger.id
    assert store.resolve_customer("messenger", "psid-1", None, None).id == stranger.id


def test_claiming_ones_own_identity_records_nothing_and_proof_settles_a_claim(
    store: ConversationStore,
) -> None:
    ana = store.resolve_customer("web", "v1", None, "Ana")
    assert store.claim_identity(ana.id, "account_number", "12345678", "conv1", T0)
    store.link_identity(ana.id, "account_number", "12345678")
    assert store.claims_of(ana.id) == []
    assert not store.claim_identity(ana.id, "account_number", "12345678", "conv2", T0)
    assert store.claims_of(ana.id) == []


def test_a_merge_keeps_the_claims_of_both_customers(store: ConversationStore) -> None:
    web = store.resolve_customer("web", "v1", None, "Ana")
    line = store.resolve_customer("line", "U1", None, None)
    store.link_identity(web.id, "account_number", "12345678")
    store.claim_identity(line.id, "loyalty_card", "LC-77", "conv2", T0)
    merged = store.link_identity(line.id, "account_number", "12345678")
    assert [(c.kind, c.value) for c in store.claims_of(merged.id)] == [("loyalty_card", "LC-77")]


def test_a_merge_fills_what_the_kept_record_lacks_and_goes_on_with_the_absorbed_conversation(
    store: ConversationStore,
) -> None:
    web = store.resolve_customer("web", "v1", None, "Ana")
    wa = store.resolve_customer("whatsapp", "447700900123", "447700900123", "Ben")
    on_web = store.conversation_for(web.id, "web", "gbank-web", T0, WINDOW)
    on_whatsapp = store.conversation_for(wa.id, "whatsapp", "gbank-wa", T0, WINDOW)
    store.link_identity(web.id, "account_number", "12345678")
    merged = store.link_identity(wa.id, "account_number", "12345678")
    assert merged.id == web.id and store.get_customer(wa.id) is None
    kept = store.get_customer(web.id)
    assert kept is not None and (kept.name, kept.phone) == ("Ana", "+447700900123")
    later = T0 + timedelta(minutes=1)
    # The absorbed customer's WhatsApp conversation goes on under the kept one; the kept
    # one's own web conversation stays.
    again = store.conversation_for(web.id, "whatsapp", "gbank-wa", later, WINDOW)
    assert again.id == on_whatsapp.id and again.customer_id == web.id
    assert store.conversation_for(web.id, "web", "gbank-web", later, WINDOW).id == on_web.id


def test_x_dms_and_x_posts_of_one_user_are_one_customer() -> None:
    from flowlang.project import load_project

    project, _ = load_project(ROOT / "flows/social.flow", ROOT / "examples/deployment.yaml")
    assert project is not None
    engine = project.engine()

    def event(channel: str, kind: EventKind, text: str) -> InboundEvent:
        return InboundEvent(
            event_id=f"{channel}-{text}",
            channel=channel,
            kind=kind,
            account="@GbankSocial",
            sender_id="4470011",
            sender_name="Dana",
            text=text,
            timestamp=T0,
        )

    post = engine.handle(event("x_public", EventKind.POST, "@GbankSocial why the new fees?"))
    dm = engine.handle(event("x_dm", EventKind.MESSAGE, "Here are my details"))
    assert post.conversation_id and dm.conversation_id
    post_conv = engine.store.get_conversation(post.conversation_id)
    dm_conv = engine.store.get_conversation(dm.conversation_id)
    assert post_conv is not None and dm_conv is not None
    assert post_conv.customer_id == dm_conv.customer_id
    assert post_conv.id != dm_conv.id  # one customer, a thread per channel


def test_dead_letters_are_listed_oldest_first_until_replayed(store: ConversationStore) -> None:
    assert isinstance(store, MemoryStore | SqliteStore | PostgresStore)
    store.dead_letter("inbound:web", {"text": "hi"}, "ValueError: boom", T0)
    store.dead_letter("outbound:sms", {"text": "bye"}, "DeliveryError: 400", T0)
    letters = store.dead_letters()
    assert [(d["id"], d["source"], d["payload"], d["replayed_at"]) for d in letters] == [
        (1, "inbound:web", {"text": "hi"}, None),
        (2, "outbound:sms", {"text": "bye"}, None),
    ]
    store.mark_replayed(1, T0 + timedelta(hours=1))
    assert [d["id"] for d in store.dead_letters()] == [2]
    assert [d["replayed_at"] for d in store.dead_letters(include_replayed=True)] == [
        (T0 + timedelta(hours=1)).isoformat(),
        None,
    ]


def test_the_policy_ledger_keeps_opt_outs_until_withdrawn(store: ConversationStore) -> None:
    ledger: PolicyLedger = store  # type: ignore[assignment]
    ledger.set_opted_out("sms", "+447480000000", "+447700900999", True, T0)
    assert ledger.opted_out("sms", "+447480000000", "+447700900999")
    assert not ledger.opted_out("sms", "+447480000001", "+447700900999")
    assert not ledger.opted_out("whatsapp", "+447480000000", "+447700900999")
    ledger.set_opted_out("sms", "+447480000000", "+447700900999", False, T0)
    assert not ledger.opted_out("sms", "+447480000000", "+447700900999")


def test_the_policy_ledger_counts_distinct_customers_reached_since(
    store: ConversationStore,
) -> None:
    ledger: PolicyLedger = store  # type: ignore[assignment]
    ledger.record_reach("whatsapp:portfolio:GBank", "+1", T0)
    ledger.record_reach("whatsapp:portfolio:GBank", "+2", T0 + timedelta(hours=1))
    ledger.record_reach("whatsapp:portfolio:GBank", "+1", T0 + timedelta(hours=2))
    ledger.record_reach("whatsapp:portfolio:Other", "+3", T0)
    assert ledger.reached("whatsapp:portfolio:GBank", T0, "+1") == (2, True)
    assert ledger.reached("whatsapp:portfolio:GBank", T0 + timedelta(minutes=90), "+2") == (
        1,
        False,
    )
    assert ledger.reached("whatsapp:portfolio:GBank", T0 + timedelta(hours=3), "+1") == (0, False)


def test_users_are_kept_with_the_hash_of_their_token_only(store: ConversationStore) -> None:
    users: UserDirectory = store  # type: ignore[assignment]
    token = new_token()
    added = users.add_user("alice", "agent", token_hash(token), T0)
    assert added.token_hash != token and token not in repr(users.users())
    assert users.user("alice") == added and users.users() == [added]
    assert authenticate(users, token, T0) == added
    assert authenticate(users, token[:-1], T0) is None
    assert authenticate(users, "", T0) is None


def test_a_revoked_token_authenticates_no_one_and_a_new_one_replaces_it(
    store: ConversationStore,
) -> None:
    users: UserDirectory = store  # type: ignore[assignment]
    old = new_token()
    users.add_user("sam", "supervisor", token_hash(old), T0)
    assert users.revoke_user("sam", T0 + timedelta(hours=1))
    assert not users.revoke_user("sam", T0 + timedelta(hours=2))  # already revoked
    assert not users.revoke_user("nobody", T0)
    assert authenticate(users, old, T0) is None
    revoked = users.user("sam")
    assert revoked is not None and revoked.revoked_at == T0 + timedelta(hours=1)
    new = new_token()
    users.add_user("sam", "admin", token_hash(new), T0 + timedelta(hours=3))
    again = authenticate(users, new, T0)
    assert again is not None and again.role == "admin" and again.revoked_at is None
    assert authenticate(users, old, T0) is None


@pytest.mark.parametrize(
    ("name", "role", "problem"),
    [
        ("alice", "agent", "already has a token"),
        ("bob", "root", "not one of agent, supervisor, admin"),
        ("", "agent", "is not allowed"),
        (" bob", "agent", "is not allowed"),
        ("bob\n", "agent", "is not allowed"),
    ],
)
def test_a_user_a_store_must_not_take_is_refused_and_nothing_changes(
    store: ConversationStore, name: str, role: str, problem: str
) -> None:
    users: UserDirectory = store  # type: ignore[assignment]
    token = new_token()
    users.add_user("alice", "agent", token_hash(token), T0)
    with pytest.raises(InputError, match=problem):
        users.add_user(name, role, token_hash(new_token()), T0)
    assert [u.name for u in users.users()] == ["alice"]
    assert authenticate(users, token, T0) is not None


@pytest.fixture(params=["sqlite", "postgres"])
def durable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "postgres":
        with PostgresStore(request.getfixturevalue("postgres_url")) as pg:
            yield pg
        return
    with SqliteStore(tmp_path / "durable.db") as db:
        yield db


def test_flow_versions_come_in_the_order_first_run_or_published(durable: Store) -> None:
    for version in ("b-second", "a-first", "c-never-run"):
        durable.save_flow_version(version, {"name": f"Flow {version}"})
    with durable.transaction():
        durable.append_event("flow_path", T0, "conv1", {"version": "a-first", "nodes": []})
        durable.append_event("flow_path", T0, "conv2", {"version": "a-first", "nodes": []})
        published = {"version": "b-second", "flow": "Flow b-second", "by": "ada"}
        durable.append_event("flow_published", T0 + timedelta(hours=1), None, published)
    assert durable.flow_versions() == [
        ("c-never-run", "Flow c-never-run"),
        ("a-first", "Flow a-first"),
        ("b-second", "Flow b-second"),
    ]
    assert durable.flow_publications() == [published | {"at": T0 + timedelta(hours=1)}]


def test_each_agents_last_state_is_read_back_from_the_event_log(store: ConversationStore) -> None:
    store.append_event("agent_state", T0, None, {"agent": "alice", "state": "available"})
    store.append_event("agent_state", T0, None, {"agent": "bob", "state": "away"})
    store.append_event("offered", T0, "conv1", {"agent": "bob", "queue": "Retail"})
    store.append_event("agent_state", T0, None, {"agent": "alice", "state": "offline"})
    assert store.agent_states() == {"alice": "offline", "bob": "away"}


def test_a_message_given_up_on_then_sent_reads_as_its_latest_attempt(
    store: ConversationStore,
) -> None:
    """A reply given up on (`unsent:` id, failed) and later replayed and accepted is read back
    as sent, whichever row the store happens to keep first."""
    ledger = cast(SentLedger, store)
    accepted = SentMessage("whatsapp", "wamid.1", "m1", "conv1", "447700900123", T0 + HOUR)
    given_up = SentMessage(
        "whatsapp", "unsent:m1", "m1", "conv1", "447700900123", T0, "failed", T0, "timeout"
    )
    ledger.record_sent(accepted)
    ledger.record_sent(given_up)
    assert ledger.sent_messages(["m1"])["m1"].vendor_id == "wamid.1"


def test_a_conversations_events_of_one_kind_come_alone_in_time_order(durable: Store) -> None:
    durable.append_event("flow_path", T0 + HOUR, "conv1", {"nodes": ["routing/0"]})
    durable.append_event("flow_path", T0, "conv1", {"nodes": ["start/0"]})
    durable.append_event("flow_path", T0, "conv2", {"nodes": ["other/0"]})
    durable.append_event("offered", T0, "conv1", {"agent": "ana"})
    events = durable.conversation_events("conv1", "flow_path")
    assert [(e["nodes"], e["at"], e["conversation_id"]) for e in events] == [
        (["start/0"], T0, "conv1"),
        (["routing/0"], T0 + HOUR, "conv1"),
    ]


def test_a_token_may_expire_and_a_new_one_need_not(durable: Store) -> None:
    token = new_token()
    added = durable.add_user("crm", "supervisor", token_hash(token), T0, T0 + HOUR)
    assert added.expires_at == T0 + HOUR
    kept = durable.user("crm")
    assert kept is not None and kept.expires_at == T0 + HOUR
    assert authenticate(durable, token, T0 + HOUR - timedelta(seconds=1)) == kept
    assert authenticate(durable, token, T0 + HOUR) is None  # expired: nobody's
    durable.revoke_user("crm", T0 + HOUR)
    again = new_token()
    durable.add_user("crm", "supervisor", token_hash(again), T0 + HOUR)
    renewed = authenticate(durable, again, T0 + 1000 * HOUR)
    assert renewed is not None and renewed.expires_at is None


def test_sessions_are_kept_by_hash_touched_and_ended(durable: Store) -> None:
    first = StoredSession("h1", "frank", "t1", T0, T0, T0 + HOUR)
    durable.add_session(first)
    assert durable.session("h1") == first
    durable.touch_session("h1", T0 + timedelta(minutes=5))
    touched = durable.session("h1")
    assert touched is not None and touched.last_seen_at == T0 + timedelta(minutes=5)
    assert durable.end_session("h1") and not durable.end_session("h1")
    assert durable.session("h1") is None


def test_a_new_session_drops_those_past_their_end(durable: Store) -> None:
    durable.add_session(StoredSession("old", "frank", "t1", T0, T0, T0 + HOUR))
    durable.add_session(StoredSession("new", "frank", "t1", T0 + HOUR, T0 + HOUR, T0 + 2 * HOUR))
    assert durable.session("old") is None and durable.session("new") is not None


def test_where_an_agents_interaction_ended_is_kept_until_forgotten(durable: Store) -> None:
    customer = durable.resolve_customer("web", "v1", None, "Ana")
    conv = durable.conversation_for(customer.id, "web", "gbank-web", T0, WINDOW)
    durable.save_conversation(conv)
    with durable.transaction():
        durable.append_message(conv, "in", {"text": "hello"}, T0, "v1")
        durable.append_message(conv, "out", {"text": "hi"}, T0, "kenji")
    (last,) = durable.history(customer.id, limit=1).messages
    durable.set_work_end(conv.id, "kenji")
    assert durable.work_end(conv.id, "kenji") == last["seq"]
    assert durable.work_end(conv.id, "alice") is None
    with durable.transaction():
        durable.append_message(conv, "in", {"text": "again"}, T0 + HOUR, "v1")
    assert durable.work_end(conv.id, "kenji") == last["seq"]  # it stays where it was
    durable.forget_work_end(conv.id, "kenji")
    assert durable.work_end(conv.id, "kenji") is None
