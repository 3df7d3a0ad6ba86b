"""Issue 19's channel rules through the engine and the policy, as a customer, an agent and a
host see them: LINE's reply token, X's automated replies, how long a Meta interaction may wait
for a human."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from flowlang.acd import AgentProfile, QueueSettings, SkillsAcd
from flowlang.channels.outbound import send_request
from flowlang.channels.policy import ChannelPolicy
from flowlang.channels.registry import load_registry
from flowlang.events import AgentAction, AgentEvent, InboundEvent
from flowlang.project import load_project
from flowlang.runtime.engine import Engine
from flowlang.runtime.memory import MemoryStore, RecordingAdapter
from flowlang.runtime.ports import ConversationView, Delivery, OutboundMessage
from tests.runtime.helpers import engine_of, program

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TOKEN = "38ef843bde154d9b91c21320ffd17a0f"


def _engine(tmp_path: Path, source: str) -> tuple[Engine, RecordingAdapter]:
    flow = tmp_path / "rules.flow"
    flow.write_text(source, "utf-8")
    project, ws = load_project(flow, ROOT / "examples" / "deployment.yaml")
    assert project is not None, [d.message for d in ws.diagnostics]
    sent = RecordingAdapter()
    return project.engine(adapters=[sent]), sent


def _agent_reply(conv: str, text: str, at: datetime, agent: str = "alice") -> AgentEvent:
    return AgentEvent(
        event_id=f"a-{text}",
        conversation_id=conv,
        agent_id=agent,
        action=AgentAction.REPLY,
        text=text,
        timestamp=at,
    )


# ---------------------------------------------------------------- LINE: reply token, then push
LINE_FLOW = """\
flow "LINE"
serve messages on line

state start:
    reply "ありがとうございます"
    reply "担当者におつなぎします"
    route to queue "Retail Banking"
"""


def _line(text: str, at: datetime, token: str | None = TOKEN) -> InboundEvent:
    return InboundEvent(
        event_id=f"l-{text}",
        channel="line",
        account="U4af4980629",
        sender_id="U4af4980629a8a8b0f0e1b2c3d4e5f6a7",
        text=text,
        reply_token=token,
        timestamp=at,
    )


def test_line_answers_with_the_reply_token_then_pushes_with_the_reason(tmp_path: Path) -> None:
    engine, sent = _engine(tmp_path, LINE_FLOW)
    first = engine.handle(_line("ローンについて", T0))
    assert [d.reason_code for d in first.deliveries] == ["reply_token", "push_message"]
    assert "used by an earlier reply" in first.deliveries[1].reason
    requests = [send_request(m) for m in sent.sent]
    assert [r.path for r in requests] == ["/v2/bot/message/reply", "/v2/bot/message/push"]
    assert requests[0].body["replyToken"] == TOKEN and "replyToken" not in requests[1].body
    # The agent answering later cannot use the token: it is a push, and says why.
    late = engine.handle(
        _agent_reply(first.conversation_id or "", "はい", T0 + timedelta(minutes=2))
    )
    assert [d.reason_code for d in late.deliveries] == ["push_message"]
    assert "used" in late.deliveries[0].reason and "quota" in late.deliveries[0].reason
    assert send_request(sent.sent[-1]).path == "/v2/bot/message/push"


def _line_policy(**rules: object) -> tuple[ChannelPolicy, ConversationView]:
    policy = ChannelPolicy(load_registry({"line": dict(rules)}) if rules else None)
    conv = ConversationView("c1", "cu1", "line", "acct", T0, T0, last_inbound_at=T0)
    policy.observe_inbound(conv, _line("hi", T0), T0)
    return policy, conv


def _to_line(body: str, sender: str = "flow") -> OutboundMessage:
    return OutboundMessage("c1", "line", "acct", "cu1", sender, {"kind": "text", "text": body})


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 59), st.integers(60, 86_400))
def test_the_reply_token_answers_within_its_seconds_and_not_after(
    inside: int, outside: int
) -> None:
    policy, conv = _line_policy()
    ok = policy.decide(_to_line("a"), conv, T0 + timedelta(seconds=inside))
    assert (ok.reason_code, ok.message.content.get("reply_token")) == ("reply_token", TOKEN)
    policy, conv = _line_policy()
    late = policy.decide(_to_line("a"), conv, T0 + timedelta(seconds=outside))
    assert (late.status, late.reason_code) == ("sent", "push_message")
    assert f"wrote {outside} s ago" in late.reason and "60 s" in late.reason
    assert "reply_token" not in late.message.content


def test_a_deployment_without_push_blocks_once_the_token_is_gone() -> None:
    policy, conv = _line_policy(push_allowed=False)
    assert policy.decide(_to_line("first"), conv, T0).reason_code == "reply_token"
    second = policy.decide(_to_line("second"), conv, T0 + timedelta(seconds=1))
    assert (second.status, second.reason_code) == ("blocked", "reply_token_expired")
    assert "push_allowed" in second.suggestion
    # The customer's next message brings a new token.
    policy.observe_inbound(conv, _line("more", T0, token="ffff"), T0 + timedelta(seconds=5))
    again = policy.decide(_to_line("third"), conv, T0 + timedelta(seconds=6))
    assert again.message.content["reply_token"] == "ffff"


def test_a_blocked_reply_does_not_use_up_the_token() -> None:
    policy, conv = _line_policy()
    assert policy.decide(_to_line("x" * 5001), conv, T0).reason_code == "text_too_long"
    assert policy.decide(_to_line("short"), conv, T0).reason_code == "reply_token"


# ---------------------------------------------------------------- X public: automated vs person
X_FLOW = """\
flow "X"
serve posts and mentions on x_public handle "@GbankSocial"

state start:
    reply "Thanks, an agent will be with you shortly."
    route to queue "Social Public"
"""


def test_x_the_flows_acknowledgement_leaves_the_agents_reply_free(tmp_path: Path) -> None:
    engine, _sent = _engine(tmp_path, X_FLOW)
    post = InboundEvent(
        event_id="t1",
        channel="x_public",
        account="@GbankSocial",
        sender_id="7654321098765432",
        text="@GbankSocial my card was declined",
        post_id="1877",
        timestamp=T0,
    )
    first = engine.handle(post)
    assert [d.status for d in first.deliveries] == ["sent"]
    conv = first.conversation_id or ""
    holder = engine.store.get_conversation(conv).agent or ""  # type: ignore[union-attr]
    reply = _agent_reply(conv, "Sorry! Please DM us.", T0 + timedelta(minutes=5), holder)
    agent = engine.handle(reply)
    assert [d.status for d in agent.deliveries] == ["sent"]


def test_x_allows_one_automated_reply_per_post_however_many_agents_send() -> None:
    policy = ChannelPolicy()
    conv = ConversationView("c1", "cu1", "x_public", "acct", T0, T0, last_inbound_at=T0)

    def post(sender: str, body: str) -> str:
        message = OutboundMessage("c1", "x_public", "acct", "cu1", sender, {"text": body})
        delivery = policy.decide(message, conv, T0)
        return delivery.reason_code or delivery.status

    assert post("flow", "Thanks!") == "sent"
    assert post("agent", "Sorry to hear that") == "sent"
    assert post("bot", "Anything else?") == "automated_reply_limit"
    assert post("agent", "Please DM us") == "sent"


# ---------------------------------------------------------------- Meta: a human may answer 7 days
QUEUE_FLOW = """\
route to queue "Retail"
"""


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(["messenger", "instagram"]), st.integers(1, 3600))
def test_a_meta_interaction_waits_for_a_human_until_the_tag_ends(channel: str, s: int) -> None:
    store = MemoryStore()
    acd = SkillsAcd([QueueSettings("Retail")], [])
    engine = engine_of(program(QUEUE_FLOW), store=store, acd=acd, policy=ChannelPolicy())
    message = InboundEvent(
        event_id="m1", channel=channel, sender_id="psid", text="hi", timestamp=T0
    )
    conv = engine.handle(message).conversation_id or ""
    engine.advance(T0 + timedelta(days=7) - timedelta(seconds=s))
    waiting = store.get_conversation(conv)
    assert waiting is not None and waiting.status == "queued"  # past 24 h, still answerable
    engine.advance(T0 + timedelta(days=7))
    expired = store.get_conversation(conv)
    assert expired is not None and expired.status == "closed"
    assert "expired" in [e["kind"] for e in store.events]


def test_whatsapp_still_expires_with_its_24_hour_window() -> None:
    conv = ConversationView("c1", "cu1", "whatsapp", "acct", T0, T0, last_inbound_at=T0)
    assert ChannelPolicy().window_closes_at(conv) == T0 + timedelta(hours=24)
    conv.channel = "messenger"
    assert ChannelPolicy().window_closes_at(conv) == T0 + timedelta(days=7)


def test_a_resend_does_not_reuse_the_reply_token() -> None:
    policy, conv = _line_policy()
    first = policy.decide(_to_line("hello"), conv, T0)
    assert first.reason_code == "reply_token"
    again = policy.recheck(first.message, conv, T0 + timedelta(seconds=90))
    assert (again.status, again.reason_code) == ("sent", "push_message")
    assert "reply_token" not in again.message.content


# ---------------------------------------------------------------- stickers, as channels name them
def _sticker(channel: str, ref: str, caption: str | None = None) -> OutboundMessage:
    content: dict[str, object] = {"kind": "sticker", "url": ref, "caption": caption}
    return OutboundMessage("c1", channel, "acct", "cu1", "flow", content)


def _decide(channel: str, message: OutboundMessage) -> Delivery:
    conv = ConversationView("c1", "cu1", channel, "acct", T0, T0, last_inbound_at=T0)
    return ChannelPolicy().decide(message, conv, T0)


def test_a_line_sticker_goes_as_lines_sticker_object(tmp_path: Path) -> None:
    flow = 'flow "S"\nserve messages on line\n\nstate start:\n    reply sticker "11537/52002734"\n'
    engine, sent = _engine(tmp_path, flow)
    engine.handle(_line("ありがとう", T0))
    body = send_request(sent.sent[0]).body
    assert body["messages"] == [{"type": "sticker", "packageId": "11537", "stickerId": "52002734"}]


def test_messenger_sends_a_catalog_sticker_and_never_empty_text() -> None:
    ok = _decide("messenger", _sticker("messenger", "369239263222822"))
    assert ok.status == "sent"
    assert send_request(ok.message).body["message"] == {
        "attachment": {"type": "sticker", "payload": {"sticker_id": "369239263222822"}}
    }
    # A LINE sticker means nothing on Messenger: its caption goes instead, with the reason.
    captioned = _decide("messenger", _sticker("messenger", "11537/52002734", "Thanks!"))
    assert captioned.status == "degraded" and "'11537/52002734' is not one" in captioned.reason
    assert send_request(captioned.message).body["message"] == {"text": "Thanks!"}
    bare = _decide("messenger", _sticker("messenger", "11537/52002734"))
    assert (bare.status, bare.reason_code) == ("blocked", "content_not_supported")
    assert "sticker id of Meta's sticker catalog" in bare.reason


def test_a_sticker_url_is_not_a_line_sticker() -> None:
    url = "https://cdn.gbank.example/thanks.webp"
    line = _decide("line", _sticker("line", url))
    assert (line.status, line.reason_code) == ("blocked", "content_not_supported")
    whatsapp = _decide("whatsapp", _sticker("whatsapp", url))
    assert send_request(whatsapp.message).body["sticker"] == {"link": url}
    heart = _decide("instagram", _sticker("instagram", "like_heart"))
    assert send_request(heart.message).body["message"] == {"attachment": {"type": "like_heart"}}


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["line", "messenger", "instagram", "whatsapp"]), st.text(max_size=30))
def test_a_sticker_is_sent_as_one_or_said_why_not(channel: str, ref: str) -> None:
    delivery = _decide(channel, _sticker(channel, ref, "Thanks!"))
    if delivery.status == "sent":
        assert delivery.message.content["sticker_id"] == ref
    else:
        assert delivery.status == "degraded" and delivery.message.content == {
            "kind": "text",
            "text": "Thanks!",
        }
        assert delivery.reason


# ---------------------------------------------------------------- WhatsApp: the window moves
def _whatsapp(event_id: str, text: str, at: datetime) -> InboundEvent:
    return InboundEvent(
        event_id=event_id, channel="whatsapp", sender_id="447700900001", text=text, timestamp=at
    )


def _queued_engine(store: MemoryStore) -> Engine:
    acd = SkillsAcd([QueueSettings("Retail")], [])  # nobody answers: the customer waits
    return engine_of(program(QUEUE_FLOW), store=store, acd=acd, policy=ChannelPolicy())


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 23 * 60))
def test_a_queued_whatsapp_customer_who_writes_again_waits_by_the_window_it_opened(
    minutes: int,
) -> None:
    """The window is 24 h from the customer's latest message: writing again while queued moves
    the expiry (and the restarted engine's ACD keeps the moved one); it still comes, 24 h on."""
    store = MemoryStore()
    engine = _queued_engine(store)
    conv = engine.handle(_whatsapp("w1", "hi", T0)).conversation_id or ""
    again = T0 + timedelta(minutes=minutes)
    engine.handle(_whatsapp("w2", "still there?", again))
    engine.advance(T0 + timedelta(hours=24))  # the first message's window ends
    waiting = store.get_conversation(conv)
    assert waiting is not None and waiting.status == "queued"
    assert "expired" not in [e["kind"] for e in store.events]
    restarted = _queued_engine(store)  # a restart: the ACD is rebuilt from the store
    restarted.recover(T0 + timedelta(hours=24))
    restarted.advance(again + timedelta(hours=24) - timedelta(seconds=1))
    assert "expired" not in [e["kind"] for e in store.events]
    restarted.advance(again + timedelta(hours=24))
    closed = store.get_conversation(conv)
    assert closed is not None and closed.status == "closed"
    (expired,) = [e for e in store.events if e["kind"] == "expired"]
    assert expired["at"] == again + timedelta(hours=24)


class _Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


ASK_FLOW = """\
ask "Your order number?" into order wait 1h:
    on timeout:
        reply "We did not hear back: write again any time."
"""


def test_a_timeout_that_runs_after_downtime_is_judged_when_it_runs_not_when_it_was_due() -> None:
    """The engine was down from 30 minutes to 25 hours: the question's timeout (due at 1 h) runs
    at 25 h, when the WhatsApp window has closed, so its free-form reply is held back (the
    channel forbids it now), where on time it would have gone out."""
    clock = _Clock(T0)
    sent = RecordingAdapter()
    engine = engine_of(program(ASK_FLOW), adapters=[sent], policy=ChannelPolicy(), clock=clock)
    engine.handle(_whatsapp("w1", "hi", T0))
    clock.at = T0 + timedelta(hours=25)
    (outcome,) = engine.advance(clock.at)
    assert [m.content.get("text") for m in sent.sent] == ["Your order number?"]
    (held,) = outcome.deliveries
    assert held.status != "sent" and held.message.content["text"].startswith("We did not hear")
    assert outcome.note is not None and "ran 24 h 0 min late" in outcome.note


DISCONNECTED = """\
on agent disconnected:
    reply "We closed this chat as you went quiet: write again any time."
"""


def test_an_acd_deadline_that_runs_after_downtime_runs_its_flow_block_when_it_runs() -> None:
    """The ACD's deadlines follow the flows' timers' rule: the customer's inactivity
    disconnect (due at 10 minutes) runs at 25 h, after the engine was down, so the flow's
    `on agent disconnected` reply is judged then, when the WhatsApp window has closed, and held
    back, where on time it would have gone out."""
    clock = _Clock(T0)
    sent = RecordingAdapter()
    queue = QueueSettings("Retail", frozenset({"ana"}), inactivity_after=timedelta(minutes=10))
    acd = SkillsAcd([queue], [AgentProfile("ana", auto_answer=True)])
    engine = engine_of(
        program('route to queue "Retail"', header=DISCONNECTED),
        adapters=[sent],
        policy=ChannelPolicy(),
        clock=clock,
        acd=acd,
    )
    engine.handle(_whatsapp("w1", "hi", T0))
    clock.at = T0 + timedelta(hours=25)
    outcomes = engine.advance(clock.at)
    (disconnect,) = [o for o in outcomes if any(n.kind == "disconnected" for n in o.notices)]
    assert sent.sent == []
    (held,) = disconnect.deliveries
    assert held.status != "sent" and held.message.content["text"].startswith("We closed")
    assert disconnect.note is not None and "ran 24 h 50 min late" in disconnect.note
