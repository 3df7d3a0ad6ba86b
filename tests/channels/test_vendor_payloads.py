"""Payloads as the vendors send them, through ingest and the engine, as a host sees them."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flowlang.channels.ingest import ingest
from flowlang.channels.outbound import send_request
from flowlang.project import load_project
from flowlang.runtime.engine import Engine
from flowlang.runtime.memory import RecordingAdapter
from flowlang.store import SqliteStore

ROOT = Path(__file__).resolve().parents[2]
PAYLOADS = ROOT / "examples" / "payloads"
RECEIVED = datetime(2026, 1, 5, 17, 0, tzinfo=UTC)
FLOW = """flow "Vendors"
serve messages on whatsapp, instagram, line
serve posts and comments and mentions on facebook_page page "GBank", x_public handle "@GbankSocial"

state start:
    if message.postback == "address_change":
        reply "Thanks, we will write to you in {{ message.data.city }}."
        end
    reply "Thanks, an agent will answer shortly."
    route to queue "Retail Banking"
"""


def _engine(tmp_path: Path, store: SqliteStore) -> tuple[Engine, RecordingAdapter]:
    flow = tmp_path / "vendors.flow"
    flow.write_text(FLOW, "utf-8")
    project, ws = load_project(flow, ROOT / "examples" / "deployment.yaml")
    assert project is not None, [d.message for d in ws.diagnostics]
    sent = RecordingAdapter()
    return project.engine(store=store, adapters=[sent]), sent


def _payload(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PAYLOADS / name).read_text())
    return data


def _ingest(engine: Engine, channel: str, payload: dict[str, Any]) -> Any:
    result = ingest(engine, channel, json.dumps(payload), received_at=RECEIVED)
    assert result.dead_letters == []
    return result


def _texts(store: SqliteStore, customer_id: str) -> list[dict[str, Any]]:
    return [m["content"] for m in store.history(customer_id).messages]


def test_a_whatsapp_username_user_is_keyed_on_their_bsuid_and_answered_there(
    tmp_path: Path,
) -> None:
    with SqliteStore(tmp_path / "s.db") as store:
        engine, sent = _engine(tmp_path, store)
        (outcome,) = _ingest(engine, "whatsapp", _payload("whatsapp/username_user.json")).outcomes
        assert not outcome.dead_lettered  # was: contacts[0].wa_id: missing
        customer = store.find_customer("whatsapp", "US.13491208655302741918")
        assert customer is not None and customer.name == "Maria Lopez" and customer.phone is None
        (reply,) = sent.sent
        assert reply.recipient == "US.13491208655302741918"
        body = send_request(reply).body
        assert body["recipient"] == "US.13491208655302741918" and "to" not in body


def test_a_bsuid_arriving_with_a_known_phone_is_linked_to_that_customer(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "s.db") as store:
        engine, _ = _engine(tmp_path, store)
        _ingest(engine, "whatsapp", _payload("whatsapp/text.json"))  # known by phone only
        known = store.find_customer("phone", "+447700900123")
        assert known is not None
        _ingest(engine, "whatsapp", _payload("whatsapp/phone_and_bsuid.json"))
        assert ("whatsapp", "GB.88213409876543210") in store.identities_of(known.id)
        # Later the customer hides their number: the BSUID alone reaches the same customer.
        hidden = _payload("whatsapp/phone_and_bsuid.json")
        value = hidden["entry"][0]["changes"][0]["value"]
        del value["messages"][0]["from"], value["contacts"][0]["wa_id"]
        value["messages"][0]["id"] = "wamid.hidden-number-1"
        value["messages"][0]["text"]["body"] = "It's me again"
        _ingest(engine, "whatsapp", hidden)
        texts = [c["text"] for c in _texts(store, known.id)]
        assert texts[-2:] == ["Any news on my fee?", "It's me again"]
        assert store.find_customer("whatsapp", "GB.88213409876543210") == store.get_customer(
            known.id
        )


def test_a_whatsapp_flows_response_reaches_the_flow_as_data(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "s.db") as store:
        engine, sent = _engine(tmp_path, store)
        (outcome,) = _ingest(engine, "whatsapp", _payload("whatsapp/flow_response.json")).outcomes
        assert not outcome.dead_lettered
        assert [m.content["text"] for m in sent.sent] == ["Thanks, we will write to you in Leeds."]
        customer = store.find_customer("whatsapp", "447700900123")
        assert customer is not None
        (kept,) = _texts(store, customer.id)[:1]
        assert kept["data"] == {
            "flow_token": "address_change",
            "street": "1 High St",
            "city": "Leeds",
        }


def test_an_instagram_unsend_is_recorded_and_does_not_run_the_flow(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "s.db") as store:
        engine, sent = _engine(tmp_path, store)
        first = _ingest(engine, "instagram", _payload("instagram/message.json")).outcomes[0]
        assert len(sent.sent) == 1
        unsend = _ingest(engine, "instagram", _payload("instagram/unsend.json")).outcomes[0]
        assert unsend.conversation_id == first.conversation_id
        assert "unsent a message" in unsend.note and unsend.trace == []
        assert len(sent.sent) == 1  # no second acknowledgement
        conv = store.get_conversation(first.conversation_id)
        assert conv is not None and conv.status == "with_agent"  # the interaction goes on
        customer = store.find_customer("instagram", "6285613998186716")
        assert customer is not None
        last = _texts(store, customer.id)[-1]
        mid = _payload("instagram/unsend.json")["entry"][0]["messaging"][0]["message"]["mid"]
        assert (last["kind"], last["refers_to"], last["text"]) == ("unsend", mid, "")
        kinds = [e["kind"] for e in store.iter_events()]
        assert "unsent" in kinds and "abandoned" not in kinds


def test_a_comment_removed_without_its_author_withdraws_that_authors_interaction(
    tmp_path: Path,
) -> None:
    with SqliteStore(tmp_path / "s.db") as store:
        engine, _ = _engine(tmp_path, store)
        comment = _payload("facebook_page/comment.json")
        first = _ingest(engine, "facebook_page", comment).outcomes[0]
        removal = _ingest(
            engine, "facebook_page", _payload("facebook_page/remove_without_author.json")
        )
        (outcome,) = removal.outcomes
        assert outcome.conversation_id == first.conversation_id  # was: dropped as the page's own
        conv = store.get_conversation(first.conversation_id)
        assert conv is not None and conv.status == "closed"
        assert ("abandoned", first.conversation_id) in [
            (e["kind"], e["conversation_id"]) for e in store.iter_events()
        ]


def test_a_removal_of_a_comment_never_received_is_kept_and_changes_nothing(
    tmp_path: Path,
) -> None:
    with SqliteStore(tmp_path / "s.db") as store:
        engine, _ = _engine(tmp_path, store)
        removal = _ingest(
            engine, "facebook_page", _payload("facebook_page/remove_without_author.json")
        )
        (outcome,) = removal.outcomes
        assert "whose it was is not known" in outcome.note and outcome.conversation_id is None
        assert store.pending_inbound() == []  # stored, and settled
        (count,) = store.db.execute("SELECT count(*) FROM inbound").fetchone()
        assert count == 1


def test_a_line_sticker_keeps_the_text_typed_on_it(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "s.db") as store:
        engine, _ = _engine(tmp_path, store)
        _ingest(engine, "line", _payload("line/sticker_with_text.json"))
        customer = store.find_customer("line", "U4af4980629aaaaaaaaaaaaaaaaaaaaaa")
        assert customer is not None
        assert _texts(store, customer.id)[0]["text"] == "Thanks for the quick help!"


def test_a_repost_of_the_business_post_is_ignored_with_its_reason(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "s.db") as store:
        engine, sent = _engine(tmp_path, store)
        result = _ingest(engine, "x_public", _payload("x/retweet_of_own_post.json"))
        assert result.outcomes == [] and sent.sent == []
        assert result.ignored == [
            "a repost of the business's own post: the customer wrote nothing to answer"
        ]
        assert store.db.execute("SELECT count(*) FROM customers").fetchone() == (0,)


def test_an_edited_post_is_an_edit_of_the_first_not_a_new_message(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "s.db") as store:
        engine, sent = _engine(tmp_path, store)
        first = _ingest(engine, "x_public", _payload("x/mention.json")).outcomes[0]
        assert len(sent.sent) == 1
        edit = _ingest(engine, "x_public", _payload("x/edited.json")).outcomes[0]
        assert edit.conversation_id == first.conversation_id
        assert "edited" in edit.note and edit.trace == []
        assert len(sent.sent) == 1  # the one automated reply X allows is not spent again
        conv = store.get_conversation(first.conversation_id)
        assert conv is not None
        last = _texts(store, conv.customer_id)[-1]
        assert (last["kind"], last["refers_to"]) == ("edit", "1877000000000000201")
        assert "fraud" in last["text"]


def test_one_event_without_a_sender_no_longer_loses_the_others_of_its_batch(
    tmp_path: Path,
) -> None:
    batch = _payload("x/dm.json")
    stray = copy.deepcopy(batch["direct_message_events"][0])
    stray["id"] = "1877000000000000199"
    del stray["message_create"]["sender_id"]
    good = copy.deepcopy(batch["direct_message_events"][0])
    good["id"], good["message_create"]["message_data"]["text"] = "1877000000000000103", "Hello?"
    batch["direct_message_events"] = [batch["direct_message_events"][0], stray, good]
    with SqliteStore(tmp_path / "s.db") as store:
        engine, _ = _engine(tmp_path, store)
        result = ingest(engine, "x_dm", json.dumps(batch), received_at=RECEIVED)
        assert len(result.outcomes) == 2 and all(not o.dead_lettered for o in result.outcomes)
        assert result.dead_letters == [
            "x_dm payload: direct_message_events[1].message_create.sender_id: missing"
        ]
