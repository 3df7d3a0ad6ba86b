"""What the agent workspace reads from the API: an interaction's details (the customer's
identities, participant data, flow path, the channel's facts and window in words, templates,
canned responses with the customer's name, wrap-up codes, transfer targets), a draft's length
as the channel counts it, and a template sent as a reply."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowlang.channels.registry import builtin_registry
from flowlang.channels.sms_segments import segments
from flowlang.channels.text_length import text_length
from flowlang.service.workspace_api import measure_text
from tests.service.api_helpers import Api, make_api, under_test_client
from tests.service.helpers import environment

FLOW = """\
flow "Workspace API"
serve messages on web account "gbank-web", whatsapp number "+442079460000"

state start:
    set participant data "intent" to "card_lost"
    set participant data "tries" to 2
    set conversation data "topic" to "cards"
    go to state routing

state routing:
    route to queue "Cards"
"""


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    yield from under_test_client(make_api(tmp_path, flow=FLOW))


def whatsapp_with(api: Api, agent: str, at: datetime) -> str:
    """A WhatsApp customer (Ben) writes at `at`; Cards' auto-answer gives it to `agent`."""
    for other in ("alice", "kenji"):
        state = "available" if other == agent else "away"
        assert api.put(other, "/api/agent/presence", {"state": state}).status_code == 200
    api.whatsapp("447700900123", "I lost my card", at)
    (conv,) = api.work(agent)
    return conv


def test_the_details_say_who_the_customer_is_and_what_the_agent_may_do(api: Api) -> None:
    conv = whatsapp_with(api, "alice", datetime.now(UTC) - timedelta(minutes=6))
    answer = api.get("alice", f"/api/agent/interactions/{conv}/details")
    assert answer.status_code == 200, answer.text
    details = answer.json()
    assert details["customer_name"] == "Ben"
    assert {"kind": "phone", "value": "+447700900123"} in details["identities"]
    # what the flow stored, as the flow reads it back: text
    assert details["participant_data"] == {"intent": "card_lost", "tries": "2"}
    assert details["conversation_data"] == {"topic": "cards"}
    assert details["flow_path"] == ["start", "routing"]
    assert details["queue"] == "Cards"
    channel = details["channel"]
    assert (channel["key"], channel["name"], channel["max_text"]) == (
        "whatsapp",
        "WhatsApp Business",
        4096,
    )
    assert channel["max_quick_replies"] == 3 and channel["public"] is False
    window = details["window"]
    assert window["open"] is True and window["templates_only"] is False
    assert window["text"].startswith("WhatsApp Business 24-hour window closes in 23 h 5")
    assert [t["name"] for t in details["templates"]] == ["whatsapp_followup"]
    assert details["templates"][0]["parameters"] == ["name"]
    canned = {c["name"]: c["text"] for c in details["canned"]}
    assert canned["Greeting"].startswith("Hi Ben, thanks for contacting GBank")
    assert canned["Card blocked"].startswith("Ben, I have blocked your card")
    assert details["wrap_up"]["codes"] == [
        "Resolved",
        "Follow-up",
        "Moved to DM",
        "Not actionable",
        "No response",
    ]  # Cards declares none: the center's list
    assert details["wrap_up"]["required"] is False
    assert "Cards" not in details["queues"] and "Loans" in details["queues"]
    assert "alice" not in details["agents"] and "frank" in details["agents"]


def test_a_closed_whatsapp_window_says_choose_a_template(api: Api) -> None:
    conv = whatsapp_with(api, "alice", datetime.now(UTC) - timedelta(hours=25))
    window = api.get("alice", f"/api/agent/interactions/{conv}/details").json()["window"]
    assert window == {
        "closes_at": window["closes_at"],
        "open": False,
        "text": "WhatsApp Business 24-hour window closed: choose a template",
        "templates_only": True,
    }


def test_a_template_reply_goes_where_text_is_blocked_and_a_bad_one_is_422(api: Api) -> None:
    conv = whatsapp_with(api, "alice", datetime.now(UTC) - timedelta(hours=25))
    path = f"/api/agent/interactions/{conv}/reply"
    sent = len(api.sent.sent)
    blocked = api.post("alice", path, {"text": "Hello Ben"})
    assert blocked.status_code == 409
    assert blocked.json()["detail"]["code"] == "window_closed_template_required"
    missing = api.post("alice", path, {"template": "whatsapp_followup"})
    assert missing.status_code == 422
    assert missing.json()["detail"]["code"] == "template_invalid"
    assert "needs the parameter(s) name" in missing.json()["detail"]["reason"]
    unknown = api.post("alice", path, {"template": "nope", "parameters": {}})
    assert unknown.status_code == 422
    api.settled()
    assert len(api.sent.sent) == sent  # nothing went out
    ok = api.post("alice", path, {"template": "whatsapp_followup", "parameters": {"name": "Ben"}})
    assert ok.status_code == 200, ok.text
    (delivery,) = ok.json()["deliveries"]
    assert delivery["content"]["kind"] == "template"
    assert delivery["content"]["parameters"] == {"name": "Ben"}


def test_details_and_measure_are_only_for_the_agents_own_interactions(api: Api) -> None:
    conv = whatsapp_with(api, "alice", datetime.now(UTC))
    for path, body in (("details", None), ("measure", {"text": "hi"})):
        url = f"/api/agent/interactions/{conv}/{path}"
        answer = api.get("kenji", url) if body is None else api.post("kenji", url, body)
        assert answer.status_code == 403 and answer.json()["detail"]["code"] == "not_yours"


def test_measure_counts_as_the_channel_does(api: Api) -> None:
    conv = whatsapp_with(api, "alice", datetime.now(UTC))
    answer = api.post("alice", f"/api/agent/interactions/{conv}/measure", {"text": "héllo 😀"})
    assert answer.json() == {
        "length": 7,
        "max": 4096,
        "left": 4089,
        "unit": "characters",
        "segments": None,
        "encoding": None,
        "text": "4089 characters left",
    }


def test_x_counts_weighted_characters_and_says_how_much_is_too_long() -> None:
    x = builtin_registry()["x_public"]
    assert measure_text(x, "日本").length == 4  # CJK weighs 2
    over = measure_text(x, "a" * 290)
    assert (over.left, over.text) == (-10, "10 weighted characters too long")


def test_sms_shows_its_segments() -> None:
    sms = builtin_registry()["sms"]
    one = measure_text(sms, "x" * 160)
    assert (one.segments, one.encoding, one.text) == (
        1,
        "GSM-7",
        "1 segment (GSM-7) · 1440 characters left",
    )
    assert measure_text(sms, "x" * 161).segments == 2
    assert measure_text(sms, "é" * 10 + "ж").encoding == "UCS-2"


@given(st.text(max_size=400), st.sampled_from(["sms", "x_public", "line", "whatsapp"]))
def test_measure_agrees_with_the_policys_count(text: str, channel: str) -> None:
    rules = builtin_registry()[channel]
    measured = measure_text(rules, text)
    assert measured.length == text_length(text, rules)
    assert measured.left == rules.max_text - measured.length
    if rules.segmented:
        assert measured.segments == segments(text).count
    else:
        assert measured.segments is None


def test_an_agent_cannot_send_template_content_of_their_own(api: Api) -> None:
    """Outside the window only the deployment's approved templates go out: an agent's own
    `content` of kind template (a WhatsApp name of their choosing, parameters, a link) is
    refused before anything is queued; templates are sent by their deployment name."""
    conv = whatsapp_with(api, "alice", datetime.now(UTC) - timedelta(hours=25))
    sent = len(api.sent.sent)
    forged = {
        "kind": "template",
        "name": "whatsapp_followup",
        "whatsapp_name": "black_friday_marketing_promo",
        "parameters": {"1": "https://evil.example/x"},
    }
    answer = api.post("alice", f"/api/agent/interactions/{conv}/reply", {"content": forged})
    assert answer.status_code == 422
    assert 'a template is sent with "template"' in answer.json()["detail"][0]["msg"]
    api.settled()
    assert len(api.sent.sent) == sent


def test_a_template_reply_to_another_agents_conversation_reveals_nothing(api: Api) -> None:
    """The same refusal for a conversation that is someone else's and for one that does not
    exist, so ids cannot be probed; the template is not rendered for another's customer."""
    conv = whatsapp_with(api, "alice", datetime.now(UTC))
    answers = [
        api.post("kenji", f"/api/agent/interactions/{t}/reply", {"template": "whatsapp_followup"})
        for t in (conv, "conv999")
    ]
    assert [a.status_code for a in answers] == [403, 403]
    assert [a.json()["detail"]["code"] for a in answers] == ["not_yours", "not_yours"]


def test_a_reply_with_a_broken_character_or_a_cursor_out_of_range_is_a_422_not_a_500(
    api: Api,
) -> None:
    conv = whatsapp_with(api, "alice", datetime.now(UTC))
    for body, says in (
        (b'{"text": "hello \\ud800"}', "unable to parse raw data as a unicode string"),
        (b'{"content": {"kind": "image", "caption": "\\ud800"}}', "unpaired surrogate"),
    ):
        broken = api.client.post(
            f"/api/agent/interactions/{conv}/reply",
            content=body,
            headers={**api.auth("alice"), "Content-Type": "application/json"},
        )
        assert broken.status_code == 422, broken.text
        assert says in broken.json()["detail"][0]["msg"]
    page = api.get("alice", f"/api/agent/interactions/{conv}/history?before=10000000000000000000")
    assert page.status_code == 422, page.text
    assert api.get("alice", f"/api/agent/interactions/{conv}/history").status_code == 200


def test_the_flow_path_reads_only_the_conversations_own_events(api: Api) -> None:
    """Other conversations' events since this one started are not read (an index, not a scan
    of the log on the engine's thread); the path is this conversation's alone."""
    conv = whatsapp_with(api, "alice", datetime.now(UTC) - timedelta(minutes=5))
    api.web("v-other", "Hello")  # another conversation's flow path, after this one started
    store = api.app.state.service.store
    events = store.conversation_events(conv, "flow_path")
    assert events and {e["conversation_id"] for e in events} == {conv}
    details = api.get("alice", f"/api/agent/interactions/{conv}/details").json()
    assert details["flow_path"] == ["start", "routing"]
